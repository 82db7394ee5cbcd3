/**
 * Figures out of the process: SVG text rasterised to PNG bytes or files through resvg, and shown
 * as a cell output in the Deno Jupyter kernel.
 *
 * SVG output needs no permissions. PNG output has two renderers, the same resvg 2.6.2 drawing
 * the same pixels up to anti-aliasing:
 * - `"native"`, the `@resvg/resvg-js` addon: faster, needs `--allow-read`, `--allow-ffi` and
 *   `--allow-sys`, and the fonts as files. It loads on the first PNG, only when those are
 *   granted, so importing this module never prompts;
 * - `"wasm"`, resvg's WebAssembly build (png_wasm.ts): needs only `--allow-read` (the `.wasm`
 *   file and a `file:` font; an `https:` font needs `--allow-net`), for runs without the native
 *   flags and for the package imported from JSR. It loads asynchronously, once.
 *
 * {@link savePng} picks and loads one itself. {@link toPng} is synchronous: it uses the native
 * renderer when that is allowed, else the wasm one once {@link preparePng} has loaded it.
 *
 * @example
 * ```ts
 * import { plotLoss } from "./figures_curves.ts";
 * import { preparePng, toPng } from "./output.ts";
 * const svg = plotLoss([{ step: 0, loss: 1 }, { step: 1, loss: 0.5 }, { step: 2, loss: 0.3 }]);
 * if (!svg.startsWith("<svg")) throw new Error("expected SVG text");
 * await preparePng(); // "native" with --allow-ffi --allow-sys, else "wasm"
 * const png = toPng(svg);
 * if (png[1] !== 0x50) throw new Error("expected a PNG signature"); // "\x89PNG"
 * ```
 * @module
 */

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { DEFAULTS } from "./defaults.ts";
import { bundledFont, loadBundledFont, loadWasmRenderer, renderWasm, wasmRenderer } from "./png_wasm.ts";

/** Which resvg draws a PNG: the native addon (`@resvg/resvg-js`) or its WebAssembly build. */
export type PngRenderer = "native" | "wasm";

/** Options for {@link toPng} and {@link savePng}. */
export interface PngOptions {
  /** Zoom factor: the PNG is `scale` times the SVG's width and height. Default 2. */
  scale?: number;
  /** Font files to load; default the bundled DejaVu Sans. `[]` draws no text (used by tests). */
  fontFiles?: string[];
  /**
   * Fonts as bytes (e.g. fetched from a URL), used instead of `fontFiles`. Only the wasm renderer
   * takes bytes (resvg-js 2.6.2 reads font files by path), so these PNGs are drawn by it.
   */
  fontBuffers?: Uint8Array[];
  /** Which renderer draws: default the native one when it may load and the fonts are files, else wasm. */
  renderer?: PngRenderer;
}

/** Options for {@link preparePng}. */
export interface PreparePngOptions {
  /**
   * The renderer to load: `"wasm"` even where the native one would do, `"native"` or an error
   * naming the missing permissions. Default: native when allowed, else wasm.
   */
  renderer?: PngRenderer;
  /** resvg's `.wasm` file, as bytes or a URL; default the one inside the `@resvg/resvg-wasm` package. */
  wasm?: Uint8Array | URL;
}

// resvg is a native addon: loading it needs read, ffi and sys permissions (its loader inspects
// the platform). Load it on the first PNG, and only when those are already granted, so importing
// this module runs nothing and never prompts, and SVG output works with no permissions at all.
type ResvgModule = typeof import("@resvg/resvg-js");
function pngAllowed(): boolean {
  try {
    const granted = (d: Deno.PermissionDescriptor) => Deno.permissions.querySync(d).state === "granted";
    const font = DEFAULTS.fontUrl.protocol === "file:" ? fileURLToPath(DEFAULTS.fontUrl) : undefined;
    return granted({ name: "ffi" }) && granted({ name: "sys" }) &&
      granted({ name: "read", path: font });
  } catch {
    return false;
  }
}
let resvgModule: ResvgModule | null = null;
/** resvg, loaded once; null while the permissions it needs are not granted (nothing cached then). */
function loadResvg(): ResvgModule | null {
  // `toPng` is synchronous, so this is a (lazy, cached) `require`, not a dynamic `import()`.
  if (resvgModule === null && pngAllowed()) {
    resvgModule = createRequire(import.meta.url)("@resvg/resvg-js") as ResvgModule;
  }
  return resvgModule;
}

const NATIVE_FLAGS = "--allow-read, --allow-ffi and --allow-sys";

/** The fonts can go to the native renderer: as paths, the bundled one only when it is a local file. */
function fontsAreFiles(opts: PngOptions): boolean {
  return opts.fontBuffers === undefined &&
    (opts.fontFiles !== undefined || DEFAULTS.fontUrl.protocol === "file:");
}

/** The renderer that would draw a PNG with these options now, or null when none is ready. */
function readyRenderer(opts: PngOptions): PngRenderer | null {
  if (opts.renderer !== "wasm" && fontsAreFiles(opts) && loadResvg() !== null) return "native";
  if (opts.renderer !== "native" && wasmRenderer() !== null) return "wasm";
  return null;
}

/** Why no renderer is ready for these options, and what to do about it. */
function notReady(opts: PngOptions): string {
  if (opts.renderer === "native") {
    return `toPng: the native renderer needs ${NATIVE_FLAGS} (granted: ${loadResvg() !== null}) and ` +
      `the fonts as files (fontFiles, or the bundled font at a file: URL; got ${
        opts.fontBuffers ? "fontBuffers" : DEFAULTS.fontUrl.href
      })`;
  }
  if (!fontsAreFiles(opts)) {
    return "toPng: these fonts (fontBuffers, or the bundled font at a non-file URL) are drawn by the wasm " +
      'renderer, which is not loaded: await preparePng({ renderer: "wasm" }) first (savePng does it itself)';
  }
  return `toPng: no PNG renderer is ready: await preparePng() first (it loads resvg's wasm build, which ` +
    `needs --allow-read), or run with ${NATIVE_FLAGS} for the native one; savePng does this itself ` +
    `(SVG output needs no permissions)`;
}

/**
 * Load a PNG renderer so that the synchronous {@link toPng} works, and say which: the native
 * resvg addon when `--allow-read`, `--allow-ffi` and `--allow-sys` are granted (and the bundled
 * font is a local file), otherwise resvg's wasm build with the bundled font, fetched by URL.
 * Loading happens once; calling again is cheap. Not needed before {@link savePng}.
 *
 * @example
 * ```ts
 * import { preparePng, toPng } from "./output.ts";
 * const renderer = await preparePng(); // "native", or "wasm" without --allow-ffi/--allow-sys
 * const png = toPng('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"/>', { scale: 1 });
 * console.log(renderer, png.length);
 * ```
 */
export async function preparePng(opts: PreparePngOptions = {}): Promise<PngRenderer> {
  if (opts.renderer !== "wasm") {
    if (DEFAULTS.fontUrl.protocol === "file:" && loadResvg() !== null) return "native";
    if (opts.renderer === "native") {
      throw new Error(
        `preparePng: the native renderer needs ${NATIVE_FLAGS} and the bundled font at a file: URL, ` +
          `got ${loadResvg() === null ? "fewer permissions" : DEFAULTS.fontUrl.href}; ` +
          `leave renderer unset to fall back to wasm`,
      );
    }
  }
  try {
    await loadWasmRenderer(opts.wasm);
  } catch (e) {
    throw new Error(`preparePng: ${(e as Error).message}`);
  }
  // A font that fails to load is reported by the first PNG that needs it (fontBuffers do not).
  await loadBundledFont();
  return "wasm";
}

/** The fonts as bytes, for the wasm renderer. */
function fontBytes(opts: PngOptions): Uint8Array[] {
  if (opts.fontBuffers !== undefined) return opts.fontBuffers;
  if (opts.fontFiles !== undefined) return opts.fontFiles.map((f) => Deno.readFileSync(f));
  return [bundledFont()];
}

/**
 * Rasterise SVG text to PNG bytes with resvg (bundled font, white background). Synchronous: it
 * needs a renderer ready, i.e. the native permissions or an awaited {@link preparePng}.
 *
 * @example
 * ```ts
 * import { preparePng, toPng } from "./output.ts";
 * await preparePng();
 * const png = toPng('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"/>', { scale: 1 });
 * const width = new DataView(png.buffer, png.byteOffset).getUint32(16);
 * if (width !== 20) throw new Error(`expected width 20, got ${width}`);
 * ```
 */
export function toPng(svg: string, opts: PngOptions = {}): Uint8Array {
  const scale = opts.scale ?? DEFAULTS.pngScale;
  if (!(scale > 0) || !Number.isFinite(scale)) {
    throw new RangeError(`toPng: expected a positive finite scale, got ${scale}`);
  }
  const renderer = readyRenderer(opts);
  if (renderer === null) throw new Error(notReady(opts));
  // resvg smooths images unless told optimizeSpeed; browsers want "pixelated" for the same thing.
  const text = svg.replace(/image-rendering="pixelated"/g, 'image-rendering="optimizeSpeed"');
  if (renderer === "wasm") return renderWasm(wasmRenderer()!, text, fontBytes(opts), scale);
  const resvg = loadResvg()!;
  const png = new resvg.Resvg(text, {
    font: {
      // readyRenderer chose native, so the bundled font, if used, is at a file: URL.
      fontFiles: opts.fontFiles ?? [fileURLToPath(DEFAULTS.fontUrl)],
      loadSystemFonts: false,
      defaultFontFamily: DEFAULTS.fontFamily,
      sansSerifFamily: DEFAULTS.fontFamily,
    },
    fitTo: { mode: "zoom", value: scale },
    background: "white",
  }).render().asPng();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

/**
 * Write SVG text as a PNG file (see {@link toPng}). Works with either renderer: when neither is
 * ready it loads one first, as {@link preparePng} does.
 *
 * @example
 * ```ts
 * import { plotLines } from "./figures_curves.ts";
 * import { savePng } from "./output.ts";
 * const svg = plotLines([{ x: 0, y: 1, series: "a" }, { x: 1, y: 2, series: "a" }], {
 *   x: "x", y: "y", title: "line",
 * });
 * const path = await Deno.makeTempFile({ suffix: ".png" });
 * await savePng(svg, path, { scale: 1 });
 * if ((await Deno.stat(path)).size < 100) throw new Error("PNG too small");
 * await Deno.remove(path);
 * ```
 */
export async function savePng(svg: string, path: string, opts: PngOptions = {}): Promise<void> {
  if (readyRenderer(opts) === null) {
    await preparePng({ renderer: opts.renderer === "native" ? "native" : "wasm" });
  }
  await Deno.writeFile(path, toPng(svg, opts));
}

/** True inside the Deno Jupyter kernel; `Deno.jupyter` throws on access anywhere else. */
function jupyter():
  | { display: (b: Record<string, string>, o: { raw: boolean }) => unknown }
  | null {
  try {
    // deno-lint-ignore no-explicit-any
    const j = (Deno as any).jupyter;
    return typeof j?.display === "function" ? j : null;
  } catch {
    return null;
  }
}

/**
 * Show SVG text as a cell output when running in the Deno Jupyter kernel; elsewhere do nothing.
 *
 * @example
 * ```ts
 * import { plotScatter } from "./figures_results.ts";
 * import { show } from "./output.ts";
 * show(plotScatter([{ x: 0, y: 0, label: "a" }])); // no-op outside Jupyter
 * ```
 */
export function show(svg: string): void {
  const j = jupyter();
  if (j === null) return;
  const done = j.display({ "image/svg+xml": svg }, { raw: true });
  if (done instanceof Promise) done.catch((e) => console.error("show:", e));
}
