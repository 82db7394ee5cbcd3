/**
 * resvg's WebAssembly build: the PNG renderer that needs no native addon, so no `--allow-ffi` or
 * `--allow-sys`. output.ts prefers the native addon where it may load it (it is faster) and falls
 * back to this one, e.g. when the package is imported from JSR without those flags.
 *
 * Both of its assets load by URL, so they work whether this module is a local file or served over
 * https:, and both can be passed in instead:
 * - the `.wasm` file inside the `@resvg/resvg-wasm` npm package: `import.meta.resolve` maps it to a
 *   `file:` URL in Deno's npm cache (or `node_modules/`) without touching the disk, and reading it
 *   needs `--allow-read`. The import map names the package; `deno publish` rewrites a literal
 *   `import.meta.resolve` argument to its `npm:` specifier as it does imports, so the same line
 *   resolves in the copy on JSR;
 * - the bundled font, fetched from `DEFAULTS.fontUrl` (`file:` needs `--allow-read`, `https:`
 *   needs `--allow-net`). resvg-wasm takes font bytes, never paths.
 *
 * Nothing here runs on import: the package is imported, and the wasm compiled, on the first
 * {@link loadWasmRenderer}.
 *
 * @module
 */

import { DEFAULTS } from "./defaults.ts";

/** The resvg-wasm package, once its wasm is initialised. */
export type WasmResvg = typeof import("@resvg/resvg-wasm");

let ready: WasmResvg | null = null;
let loading: Promise<WasmResvg> | null = null;

/** The wasm renderer if {@link loadWasmRenderer} has finished, else null. */
export function wasmRenderer(): WasmResvg | null {
  return ready;
}

/** Where the package's `.wasm` file is; a `file:` URL under Deno. */
export function wasmFileUrl(): URL {
  try {
    return new URL(import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm"));
  } catch (e) {
    throw new Error(
      `could not find index_bg.wasm in the @resvg/resvg-wasm package (${(e as Error).message}); ` +
        `pass its bytes: preparePng({ wasm })`,
    );
  }
}

/**
 * Load and initialise the wasm renderer once (later and concurrent calls share the first); `wasm`
 * is the `.wasm` file's bytes or URL, default {@link wasmFileUrl}. A failed load can be retried.
 */
export function loadWasmRenderer(wasm?: Uint8Array | URL): Promise<WasmResvg> {
  if (ready !== null) return Promise.resolve(ready);
  loading ??= init(wasm).then(
    (m) => (ready = m),
    (e) => {
      loading = null;
      throw e;
    },
  );
  return loading;
}

async function init(wasm?: Uint8Array | URL): Promise<WasmResvg> {
  // The package first: once it is loaded, its .wasm file resolves to a path on disk.
  const mod = await import("@resvg/resvg-wasm");
  const bytes = wasm instanceof Uint8Array ? wasm : await readUrl(wasm ?? wasmFileUrl(), "resvg's wasm file");
  try {
    await mod.initWasm(bytes);
  } catch (e) {
    // The package allows one initWasm per process; another caller may have done it already.
    if (!/Already initialized/.test(String((e as Error)?.message))) throw e;
  }
  return mod;
}

/** The bytes at a `file:` or `https:` URL; an error naming the URL and the permission it needs. */
export async function readUrl(url: URL, what: string): Promise<Uint8Array> {
  try {
    if (url.protocol === "file:") return await Deno.readFile(url);
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new Error(`expected a file: or https: URL, got ${url.protocol}`);
    }
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    return new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new Error(
      `could not load ${what} from ${url.href} (a file: URL needs --allow-read, https: needs ` +
        `--allow-net): ${(e as Error).message}`,
    );
  }
}

let fontBytes: Uint8Array | null = null;
let fontError: Error | null = null;

/**
 * Fetch the bundled font (`DEFAULTS.fontUrl`) once and keep its bytes. A failure is kept too, and
 * reported by {@link bundledFont} when a PNG needs the font, so that callers who pass their own
 * font bytes are not stopped by it.
 */
export async function loadBundledFont(): Promise<void> {
  if (fontBytes !== null) return;
  try {
    fontBytes = await readUrl(DEFAULTS.fontUrl, "the bundled font");
    fontError = null;
  } catch (e) {
    fontError = e as Error;
  }
}

/** The bundled font's bytes, loaded by {@link loadBundledFont}; throws why they are missing. */
export function bundledFont(): Uint8Array {
  if (fontBytes !== null) return fontBytes;
  throw new Error(
    `toPng: ${fontError?.message ?? "the bundled font is not loaded yet; await preparePng() first"}; ` +
      `or pass the font yourself: { fontBuffers: [bytes] }`,
  );
}

/** Render with the wasm renderer: same options as the native one, fonts as bytes. */
export function renderWasm(
  resvg: WasmResvg,
  svg: string,
  fonts: Uint8Array[],
  scale: number,
): Uint8Array {
  const renderer = new resvg.Resvg(svg, {
    font: {
      fontBuffers: fonts,
      defaultFontFamily: DEFAULTS.fontFamily,
      sansSerifFamily: DEFAULTS.fontFamily,
    },
    fitTo: { mode: "zoom", value: scale },
    background: "white",
  });
  // wasm objects live in the module's own memory, which JS's collector does not see: free them.
  try {
    const image = renderer.render();
    try {
      return image.asPng();
    } finally {
      image.free();
    }
  } finally {
    renderer.free();
  }
}
