/**
 * A figure written to a file whose extension picks the format: `.svg` (the SVG text as it is) or
 * `.png` (rasterised by resvg, see output.ts: the native addon where `--allow-ffi` and
 * `--allow-sys` are granted, its wasm build otherwise). Every task's figure flag goes through here,
 * so a `.svg` name never receives PNG bytes.
 *
 * @example
 * ```ts
 * import { figureFormat } from "./figure_file.ts";
 * if (figureFormat("runs/a/plot.SVG") !== "svg") throw new Error("expected svg");
 * ```
 * @module
 */

/** The extensions a figure file may have, each naming its format. */
export const FIGURE_EXTENSIONS: readonly string[] = [".svg", ".png"];

/** The format a figure file name asks for; an error naming the two for anything else. */
export function figureFormat(path: string): "svg" | "png" {
  const m = /\.(svg|png)$/i.exec(path);
  if (!m) {
    throw new Error(`${path}: expected a figure file name ending in .svg or .png (the format follows it)`);
  }
  return m[1].toLowerCase() as "svg" | "png";
}

/**
 * Write SVG text to `path` as SVG or PNG, by the extension. SVG output needs only `--allow-write`;
 * PNG output also needs `--allow-read` and loads a renderer first when none is ready (the native
 * resvg with `--allow-ffi` and `--allow-sys`, else resvg's wasm build), so it works either way.
 */
export async function saveFigure(svg: string, path: string, opts: { scale?: number } = {}): Promise<void> {
  if (figureFormat(path) === "svg") {
    await Deno.writeTextFile(path, svg.endsWith("\n") ? svg : svg + "\n");
    return;
  }
  const { savePng } = await import("./output.ts");
  await savePng(svg, path, opts);
}
