/**
 * Figures out of the process: SVG text rasterised to PNG bytes or files through resvg, and shown
 * as a cell output in the Deno Jupyter kernel.
 *
 * SVG output needs no permissions; PNG output needs `--allow-read`, `--allow-ffi` and
 * `--allow-sys` (resvg is a native addon), and resvg is loaded on the first PNG, only when those
 * are granted, so importing this module never prompts.
 *
 * @example
 * ```ts
 * import { plotLoss } from "./figures_curves.ts";
 * import { toPng } from "./output.ts";
 * const svg = plotLoss([{ step: 0, loss: 1 }, { step: 1, loss: 0.5 }, { step: 2, loss: 0.3 }]);
 * if (!svg.startsWith("<svg")) throw new Error("expected SVG text");
 * const png = toPng(svg);
 * if (png[1] !== 0x50) throw new Error("expected a PNG signature"); // "\x89PNG"
 * ```
 * @module
 */

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { DEFAULTS } from "./defaults.ts";

/** Options for {@link toPng} and {@link savePng}. */
export interface PngOptions {
  /** Zoom factor: the PNG is `scale` times the SVG's width and height. Default 2. */
  scale?: number;
  /** Font files to load; default the bundled DejaVu Sans. `[]` draws no text (used by tests). */
  fontFiles?: string[];
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

function bundledFontPath(): string {
  if (DEFAULTS.fontUrl.protocol !== "file:") {
    throw new Error(
      `toPng: expected the bundled font as a local file, got ${DEFAULTS.fontUrl.href}; ` +
        `pass fontFiles: ["/path/to/DejaVuSans.ttf"]`,
    );
  }
  return fileURLToPath(DEFAULTS.fontUrl);
}

/**
 * Rasterise SVG text to PNG bytes with resvg (bundled font, white background).
 *
 * @example
 * ```ts
 * import { toPng } from "./output.ts";
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
  const resvg = loadResvg();
  if (resvg === null) {
    throw new Error(
      "toPng: PNG output needs --allow-read, --allow-ffi and --allow-sys (resvg is a native addon), " +
        "got fewer; run with those flags or -A (SVG output needs no permissions)",
    );
  }
  const fontFiles = opts.fontFiles ?? [bundledFontPath()];
  // resvg smooths images unless told optimizeSpeed; browsers want "pixelated" for the same thing.
  const text = svg.replace(/image-rendering="pixelated"/g, 'image-rendering="optimizeSpeed"');
  const renderer = new resvg.Resvg(text, {
    font: {
      fontFiles,
      loadSystemFonts: false,
      defaultFontFamily: DEFAULTS.fontFamily,
      sansSerifFamily: DEFAULTS.fontFamily,
    },
    fitTo: { mode: "zoom", value: scale },
    background: "white",
  });
  const png = renderer.render().asPng();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

/**
 * Write SVG text as a PNG file (see {@link toPng}).
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
