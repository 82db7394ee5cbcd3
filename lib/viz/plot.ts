/**
 * Figures for I-JEPA experiments: Observable Plot rendered to standalone SVG (for Jupyter and the
 * web) and to PNG through resvg (for reports and CI), with no browser.
 *
 * Observable Plot wants a DOM; we hand it a fresh `linkedom` document per figure, with a tiny
 * canvas stand-in so continuous colour legends (and `raster` marks) work. Plot returns an HTML
 * `<figure>` when a figure has a title or a legend; {@link render} flattens that into one `<svg>`
 * (title, subtitle, legends and caption become SVG text), because both Jupyter's
 * `image/svg+xml` output and resvg need pure SVG.
 *
 * Text uses DejaVu Sans, bundled in `data/fonts/` (Bitstream Vera licence, see the licence file
 * beside it): resvg draws no text at all without a font file, and the same font on every machine
 * keeps PNGs identical across machines.
 *
 * The figure factories (`plotMasks`, `plotLoss`, `plotLines`, `plotBars`, `plotConfusion`,
 * `plotScatter`, `plotImages`) each return SVG text with a title, axis labels and a legend where
 * colour carries meaning. SVG output needs no permissions; PNG output needs `--allow-read`,
 * `--allow-ffi` and `--allow-sys` (resvg is a native addon), and resvg is loaded at import only
 * when those are already granted.
 *
 * @example
 * ```ts
 * import { plotLoss, toPng } from "./plot.ts";
 * const svg = plotLoss([{ step: 0, loss: 1 }, { step: 1, loss: 0.5 }, { step: 2, loss: 0.3 }]);
 * if (!svg.startsWith("<svg")) throw new Error("expected SVG text");
 * const png = toPng(svg);
 * if (png[1] !== 0x50) throw new Error("expected a PNG signature"); // "\x89PNG"
 * ```
 * @module
 */

import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { PNG } from "pngjs";
import { fileURLToPath } from "node:url";

// ---------------------------------------------------------------------------------------------
// Defaults (one place)
// ---------------------------------------------------------------------------------------------

/** Layout and style defaults shared by every figure. */
const DEFAULTS = {
  /** The font family written into every SVG; resvg resolves it to the bundled file. */
  fontFamily: "DejaVu Sans",
  /** Bundled font, relative to this module. */
  fontUrl: new URL("../../data/fonts/DejaVuSans.ttf", import.meta.url),
  /** White margin around the whole figure, px. */
  pad: 12,
  /** Title / subtitle / caption / legend font sizes, px. */
  titleSize: 15,
  subtitleSize: 11.5,
  captionSize: 10.5,
  legendSize: 10,
  /** Swatch legend geometry, px. */
  swatchSize: 13,
  swatchRow: 19,
  /** A figure narrower than this widens (up to it) to keep its title and legend on one line. */
  minTextWidth: 440,
  /** PNG zoom: 2 gives crisp text when the image is shown at the SVG's size on a 2x screen. */
  pngScale: 2,
  /** Colours for mask panels: context, then one per target block (cycled), then unused patches. */
  contextColor: "#4269d0",
  targetColors: ["#ff725c", "#efb118", "#3ca951", "#a463f2", "#ff8ab7", "#9c6b4e", "#6cc5b0"],
  unusedColor: "#dcdcdc",
};

// ---------------------------------------------------------------------------------------------
// Text measurement (for wrapping titles and legends without a browser)
// ---------------------------------------------------------------------------------------------

// Advance widths of DejaVu Sans for ASCII 32..126, in font units (2048 per em), read from the
// bundled TTF's hmtx table. Other characters are estimated at 0.7 em.
const ASCII_ADVANCE = [
  651,
  821,
  942,
  1716,
  1303,
  1946,
  1597,
  563,
  799,
  799,
  1024,
  1716,
  651,
  739,
  651,
  690,
  1303,
  1303,
  1303,
  1303,
  1303,
  1303,
  1303,
  1303,
  1303,
  1303,
  690,
  690,
  1716,
  1716,
  1716,
  1087,
  2048,
  1401,
  1405,
  1430,
  1577,
  1294,
  1178,
  1587,
  1540,
  604,
  604,
  1343,
  1141,
  1767,
  1532,
  1612,
  1235,
  1612,
  1423,
  1300,
  1251,
  1499,
  1401,
  2025,
  1403,
  1251,
  1403,
  799,
  690,
  799,
  1716,
  1024,
  1024,
  1255,
  1300,
  1126,
  1300,
  1260,
  721,
  1300,
  1298,
  569,
  569,
  1186,
  569,
  1995,
  1298,
  1253,
  1300,
  1300,
  842,
  1067,
  803,
  1298,
  1212,
  1675,
  1212,
  1212,
  1075,
  1303,
  690,
  1303,
  1716,
];

/**
 * Width in px of `text` set in DejaVu Sans at `fontSize` px (exact for ASCII, estimated beyond).
 *
 * @example
 * ```ts
 * import { textWidth } from "./plot.ts";
 * const w = textWidth("loss", 10);
 * if (Math.abs(w - 19.3) > 0.1) throw new Error(`expected about 19.3 px, got ${w}`);
 * ```
 */
export function textWidth(text: string, fontSize: number): number {
  let units = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    units += c >= 32 && c < 127 ? ASCII_ADVANCE[c - 32] : 1434;
  }
  return (units / 2048) * fontSize;
}

/** Greedy word wrap to `maxWidth` px; a single word longer than a line stays whole. */
function wrapText(text: string, fontSize: number, maxWidth: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "";
    for (const word of paragraph.split(/\s+/).filter((w) => w !== "")) {
      const next = line === "" ? word : `${line} ${word}`;
      if (line !== "" && textWidth(next, fontSize) > maxWidth) {
        lines.push(line);
        line = word;
      } else line = next;
    }
    lines.push(line);
  }
  return lines;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** Round to 2 decimals for compact SVG coordinates. */
function r2(v: number): string {
  return String(Math.round(v * 100) / 100);
}

// ---------------------------------------------------------------------------------------------
// A DOM for Plot: linkedom plus a minimal 2-D canvas (enough for ramp legends and raster marks)
// ---------------------------------------------------------------------------------------------

/** Parse the CSS colours d3 interpolators emit: `rgb(...)`, `rgba(...)`, `#rgb`, `#rrggbb`. */
function parseColor(css: string): [number, number, number, number] {
  const s = css.trim().toLowerCase();
  let m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:[\s,/]+([\d.]+))?\s*\)$/.exec(s);
  if (m) return [+m[1], +m[2], +m[3], m[4] === undefined ? 255 : Math.round(+m[4] * 255)];
  m = /^#([0-9a-f]{6})$/.exec(s);
  if (m) {
    const v = parseInt(m[1], 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255, 255];
  }
  m = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/.exec(s);
  if (m) {
    return [parseInt(m[1] + m[1], 16), parseInt(m[2] + m[2], 16), parseInt(m[3] + m[3], 16), 255];
  }
  if (s === "white") return [255, 255, 255, 255];
  if (s === "none" || s === "transparent") return [0, 0, 0, 0];
  return [0, 0, 0, 255]; // Unknown named colours draw black; d3 interpolators never emit them.
}

/** Encode RGBA pixels as a PNG data URI (deterministic: same pixels, same bytes). */
function pngDataUri(rgba: Uint8Array, width: number, height: number): string {
  const png = new PNG({ width, height });
  png.data.set(rgba);
  const bytes: Uint8Array = PNG.sync.write(png);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return `data:image/png;base64,${btoa(bin)}`;
}

class CanvasStandIn {
  width = 300;
  height = 150;
  #pixels: Uint8ClampedArray | null = null;
  #pix(): Uint8ClampedArray {
    if (this.#pixels === null || this.#pixels.length !== this.width * this.height * 4) {
      this.#pixels = new Uint8ClampedArray(this.width * this.height * 4);
    }
    return this.#pixels;
  }
  getContext(kind: string) {
    if (kind !== "2d") return null;
    // deno-lint-ignore no-this-alias
    const canvas = this;
    return {
      fillStyle: "#000",
      fillRect(x: number, y: number, w: number, h: number) {
        const [r, g, b, a] = parseColor(String(this.fillStyle));
        const px = canvas.#pix();
        for (let j = Math.max(0, y); j < Math.min(canvas.height, y + h); j++) {
          for (let i = Math.max(0, x); i < Math.min(canvas.width, x + w); i++) {
            px.set([r, g, b, a], (j * canvas.width + i) * 4);
          }
        }
      },
      createImageData(w: number, h: number) {
        return { width: w, height: h, data: new Uint8ClampedArray(w * h * 4) };
      },
      putImageData(img: { width: number; height: number; data: Uint8ClampedArray }) {
        canvas.width = img.width;
        canvas.height = img.height;
        canvas.#pix().set(img.data);
      },
    };
  }
  toDataURL(): string {
    const px = this.#pix();
    return pngDataUri(new Uint8Array(px.buffer, px.byteOffset, px.length), this.width, this.height);
  }
}

// deno-lint-ignore no-explicit-any
type AnyNode = any; // linkedom nodes: DOM-shaped, but not the lib.dom types.

function makeDocument(): AnyNode {
  const { document } = parseHTML("<!doctype html><html><body></body></html>") as AnyNode;
  const create = document.createElement.bind(document);
  document.createElement = (name: string, options?: unknown) =>
    name.toLowerCase() === "canvas" ? new CanvasStandIn() : create(name, options);
  return document;
}

// ---------------------------------------------------------------------------------------------
// render: Plot options -> standalone SVG text
// ---------------------------------------------------------------------------------------------

const PLOT_FONT = /font-family="system-ui, sans-serif"/g;
const OUR_FONT = `font-family="${DEFAULTS.fontFamily}, sans-serif"`;

/** Attributes of an element, as `name="value"` text, minus the ones in `drop`. */
function attrsOf(el: AnyNode, drop: string[]): string {
  const out: string[] = [];
  for (const { name, value } of Array.from(el.attributes as { name: string; value: string }[])) {
    if (!drop.includes(name)) out.push(`${name}="${esc(value)}"`);
  }
  return out.join(" ");
}

/** An SVG element turned into a translated `<g>` (nested <svg> sizes clash with Plot's CSS). */
function svgAsGroup(el: AnyNode, x: number, y: number): string {
  const attrs = attrsOf(el, ["width", "height", "viewBox", "xmlns", "xmlns:xlink"]);
  return `<g transform="translate(${r2(x)},${r2(y)})" ${attrs}>${el.innerHTML}</g>`;
}

function textLines(
  lines: string[],
  x: number,
  y: number,
  size: number,
  extra: string,
): { svg: string; height: number } {
  const lh = size * 1.3;
  const svg = lines.map((line, i) =>
    `<text x="${r2(x)}" y="${r2(y + size + i * lh)}" font-size="${size}" ${extra}>${esc(line)}</text>`
  ).join("");
  return { svg, height: lines.length * lh };
}

/** The entries of a swatch legend (Plot's HTML `div`): an optional heading, then swatches. */
function swatchItems(
  div: AnyNode,
): { heading: string; items: { swatch: AnyNode; label: string }[] } {
  const items: { swatch: AnyNode; label: string }[] = [];
  let heading = "";
  for (const child of Array.from(div.children as AnyNode[])) {
    const cls = String(child.getAttribute("class") ?? "");
    if (child.localName === "style") continue;
    const swatch = child.querySelector?.("svg");
    if (/-swatch\b/.test(cls) && swatch) items.push({ swatch, label: child.textContent.trim() });
    else if (child.textContent.trim() !== "") heading += child.textContent.trim();
  }
  return { heading, items };
}

/** Width of a swatch legend laid out on one row, px. */
function swatchesWidth(div: AnyNode): number {
  const { heading, items } = swatchItems(div);
  const fs = DEFAULTS.legendSize;
  return (heading ? textWidth(heading, fs) + 10 : 0) +
    items.reduce((a, it) => a + DEFAULTS.swatchSize + 5 + textWidth(it.label, fs) + 14, 0) - 14;
}

/** Lay out a swatch legend as SVG rows that wrap at `maxWidth`. */
function swatchesAsSvg(div: AnyNode, x0: number, y0: number, maxWidth: number) {
  const S = DEFAULTS.swatchSize, row = DEFAULTS.swatchRow, fs = DEFAULTS.legendSize;
  const { heading, items } = swatchItems(div);
  let svg = "", x = x0, y = y0;
  if (heading !== "") {
    svg += `<text x="${r2(x)}" y="${r2(y + S - 2)}" font-size="${fs}" font-weight="bold">${
      esc(heading)
    }</text>`;
    x += textWidth(heading, fs) + 10;
  }
  for (const { swatch, label } of items) {
    const w = S + 5 + textWidth(label, fs);
    if (x > x0 && x + w > x0 + maxWidth) {
      x = x0;
      y += row;
    }
    const attrs = attrsOf(swatch, ["width", "height", "style", "class"]);
    // A swatch keeps Plot's own drawing (a square, a line, or a symbol), sized S x S.
    const inner = String(swatch.innerHTML).replace(/"100%"/g, `"${S}"`);
    svg += `<svg x="${r2(x)}" y="${r2(y)}" width="${S}" height="${S}" overflow="visible" ${attrs}>` +
      `${inner}</svg>`;
    svg += `<text x="${r2(x + S + 5)}" y="${r2(y + S - 2.5)}" font-size="${fs}">${esc(label)}</text>`;
    x += w + 14;
  }
  return { svg, height: y - y0 + row };
}

/**
 * Run `Plot.plot` with a DOM of our own and return standalone SVG text: one `<svg>` root with
 * `xmlns`, a white background, the DejaVu Sans font, and the title, subtitle, legends and caption
 * drawn as SVG (Plot itself would wrap those in an HTML `<figure>`).
 *
 * @example
 * ```ts
 * import * as Plot from "@observablehq/plot";
 * import { render } from "./plot.ts";
 * const svg = render({
 *   title: "Two points",
 *   color: { legend: true },
 *   marks: [Plot.dot([{ x: 1, y: 2, c: "a" }, { x: 2, y: 1, c: "b" }], { x: "x", y: "y", fill: "c" })],
 * });
 * if (!svg.includes('xmlns="http://www.w3.org/2000/svg"')) throw new Error("no xmlns");
 * if (svg.includes("<figure") || !svg.includes(">Two points</text>")) throw new Error("not flat SVG");
 * ```
 */
export function render(options: Plot.PlotOptions): string {
  const document = makeDocument();
  const root: AnyNode = Plot.plot({ ...options, document } as Plot.PlotOptions);
  const pad = DEFAULTS.pad;
  const parts: AnyNode[] = root.localName === "svg" ? [root] : Array.from(root.children);
  const mainSvg = parts.find((p) => p.localName === "svg" && !/-ramp\b/.test(p.getAttribute("class") ?? ""));
  const plotWidth = Number(mainSvg?.getAttribute("width") ?? options.width ?? 640);
  // Legends may be wider than the plot (a ramp legend is 240 px by default), and a narrow plot
  // (one small mask panel) gets room for its title and legend on one line, up to minTextWidth.
  const textParts = parts.map((p) =>
    p.localName === "div"
      ? swatchesWidth(p)
      : p.localName === "h2"
      ? textWidth(String(p.textContent), DEFAULTS.titleSize)
      : p.localName === "h3"
      ? textWidth(String(p.textContent), DEFAULTS.subtitleSize)
      : 0
  );
  const contentWidth = Math.max(
    plotWidth,
    Math.min(DEFAULTS.minTextWidth, Math.ceil(Math.max(0, ...textParts))),
    ...parts.filter((p) => p.localName === "svg").map((p) => Number(p.getAttribute("width") ?? 0)),
  );
  let body = "";
  let y = pad;
  for (const part of parts) {
    const tag = String(part.localName);
    if (tag === "h2" || tag === "h3" || tag === "figcaption") {
      const size = tag === "h2"
        ? DEFAULTS.titleSize
        : tag === "h3"
        ? DEFAULTS.subtitleSize
        : DEFAULTS.captionSize;
      const extra = tag === "h2" ? 'font-weight="bold"' : 'fill="#555"';
      const lines = wrapText(String(part.textContent), size, contentWidth);
      const t = textLines(lines, pad, y, size, extra);
      body += t.svg;
      y += t.height + (tag === "h2" ? 4 : 6);
    } else if (tag === "div") {
      const s = swatchesAsSvg(part, pad, y, contentWidth);
      body += s.svg;
      y += s.height + 4;
    } else if (tag === "svg") {
      const h = Number(part.getAttribute("height") ?? 0);
      body += svgAsGroup(part, pad, y);
      y += h + 4;
    }
  }
  const width = Math.ceil(contentWidth + 2 * pad);
  const height = Math.ceil(y + pad - 4);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ` +
    `width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="${DEFAULTS.fontFamily}, sans-serif" font-size="10">` +
    `<rect width="${width}" height="${height}" fill="white"/>${body}</svg>`;
  return svg.replace(PLOT_FONT, OUR_FONT);
}

// ---------------------------------------------------------------------------------------------
// Output: PNG, files, Jupyter
// ---------------------------------------------------------------------------------------------

/** Options for {@link toPng} and {@link savePng}. */
export interface PngOptions {
  /** Zoom factor: the PNG is `scale` times the SVG's width and height. Default 2. */
  scale?: number;
  /** Font files to load; default the bundled DejaVu Sans. `[]` draws no text (used by tests). */
  fontFiles?: string[];
}

// resvg is a native addon: loading it needs read, ffi and sys permissions (its loader inspects
// the platform). Load it only when those are already granted, so importing this module never
// prompts and SVG output works with no permissions at all.
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
const resvg: ResvgModule | null = pngAllowed() ? await import("@resvg/resvg-js") : null;

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
 * import { toPng } from "./plot.ts";
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
 * import { plotLines, savePng } from "./plot.ts";
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
 * import { plotScatter, show } from "./plot.ts";
 * show(plotScatter([{ x: 0, y: 0, label: "a" }])); // no-op outside Jupyter
 * ```
 */
export function show(svg: string): void {
  const j = jupyter();
  if (j === null) return;
  const done = j.display({ "image/svg+xml": svg }, { raw: true });
  if (done instanceof Promise) done.catch((e) => console.error("show:", e));
}

// ---------------------------------------------------------------------------------------------
// Images as data URIs
// ---------------------------------------------------------------------------------------------

/** An image in row-major HWC layout; floats in [0, 1] or any range (min-max scaled). */
export interface PlotImage {
  data: Float32Array | Uint8Array;
  height: number;
  width: number;
  /** 1 (grey), 3 (RGB) or 4 (RGBA). */
  channels: number;
}

/**
 * RGBA bytes of an image: Uint8 data as is; floats as is when inside [0, 1], else min-max scaled
 * per image (as for normalised network inputs).
 */
function imageToRgba(img: PlotImage, who: string): Uint8Array {
  const { data, height, width, channels } = img;
  if (![1, 3, 4].includes(channels)) {
    throw new RangeError(`${who}: expected channels 1, 3 or 4, got ${channels}`);
  }
  if (!(height > 0 && width > 0) || data.length !== height * width * channels) {
    throw new RangeError(
      `${who}: expected ${height}x${width}x${channels} = ${
        height * width * channels
      } values, got ${data.length}`,
    );
  }
  let lo = 0, hi = 255;
  if (!(data instanceof Uint8Array)) {
    let mn = Infinity, mx = -Infinity;
    for (const v of data) {
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    [lo, hi] = mn >= 0 && mx <= 1 ? [0, 1] : [mn, mx > mn ? mx : mn + 1];
  }
  const out = new Uint8Array(height * width * 4);
  for (let p = 0; p < height * width; p++) {
    for (let k = 0; k < 4; k++) {
      const src = channels === 1 ? (k < 3 ? 0 : -1) : k < channels ? k : -1;
      out[p * 4 + k] = src < 0
        ? 255
        : Math.round(Math.max(0, Math.min(1, (data[p * channels + src] - lo) / (hi - lo))) * 255);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Figure factories
// ---------------------------------------------------------------------------------------------

/** Options common to the figure factories. */
export interface FigureOptions {
  /** Figure title (each factory has a default). */
  title?: string;
  /** A line under the title. */
  subtitle?: string;
  /** Outer width of the plot area, px (masks, confusion and images size themselves). */
  width?: number;
  /** Outer height of the plot area, px (masks, confusion and images size themselves). */
  height?: number;
}

/** One example for {@link plotMasks}: patch indices are row-major on a rows x cols grid. */
export interface MaskExample {
  rows: number;
  cols: number;
  /** Patch indices the context encoder sees. */
  context: Int32Array;
  /** One array of patch indices per target block. */
  targets: Int32Array[];
  /** Optional image drawn under the masks (masks become semi-transparent). */
  image?: PlotImage;
}

function checkIndices(idx: Int32Array, n: number, what: string, ex: MaskExample): void {
  for (const i of idx) {
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new RangeError(
        `plotMasks: ${what} index ${i} is outside the ${ex.rows}x${ex.cols} patch grid (0..${n - 1})`,
      );
    }
  }
}

/**
 * A grid of panels, one per example: each patch coloured by its role, context in blue, each target
 * block in its own colour, unused patches grey. A patch in several sets (targets may overlap each
 * other) is split into vertical stripes, one per set, so nothing is hidden.
 *
 * @example
 * ```ts
 * import { plotMasks } from "./plot.ts";
 * const svg = plotMasks([{
 *   rows: 2, cols: 2, context: Int32Array.from([0, 1]), targets: [Int32Array.from([3])],
 * }]);
 * if (!svg.includes(">target 1</text>")) throw new Error("legend lacks target 1");
 * ```
 */
export function plotMasks(
  examples: MaskExample[],
  opts: FigureOptions & { columns?: number } = {},
): string {
  if (examples.length === 0) {
    throw new RangeError("plotMasks: expected at least one example, got 0");
  }
  const rows = Math.max(...examples.map((e) => e.rows));
  const cols = Math.max(...examples.map((e) => e.cols));
  const nTargets = Math.max(...examples.map((e) => e.targets.length));
  const targetNames = Array.from({ length: nTargets }, (_, k) => `target ${k + 1}`);
  const domain = ["context", ...targetNames, "unused"];
  const range = [
    DEFAULTS.contextColor,
    ...targetNames.map((_, k) => DEFAULTS.targetColors[k % DEFAULTS.targetColors.length]),
    DEFAULTS.unusedColor,
  ];
  const ncol = Math.max(1, Math.min(opts.columns ?? Math.min(examples.length, 4), examples.length));
  const nrow = Math.ceil(examples.length / ncol);

  type Cell = {
    x1: number;
    x2: number;
    y1: number;
    y2: number;
    kind: string;
    op: number;
    fx: number;
    fy: number;
  };
  const cells: Cell[] = [];
  const grid: Omit<Cell, "kind" | "op">[] = [];
  const labels: { fx: number; fy: number; text: string }[] = [];
  const images: { fx: number; fy: number; src: string; x: number; y: number }[] = [];
  const anyImage = examples.some((e) => e.image !== undefined);
  // Panel size: about 130 px across, square patches, at least 8 px a patch.
  const patchPx = Math.max(8, Math.min(28, Math.floor(130 / Math.max(rows, cols))));
  const panelW = cols * patchPx, panelH = rows * patchPx;
  const gapX = 26, gapY = 44;

  examples.forEach((ex, e) => {
    if (!(Number.isInteger(ex.rows) && ex.rows > 0 && Number.isInteger(ex.cols) && ex.cols > 0)) {
      throw new RangeError(
        `plotMasks: example ${e} expected positive integer rows and cols, got ${ex.rows}x${ex.cols}`,
      );
    }
    const n = ex.rows * ex.cols;
    checkIndices(ex.context, n, `example ${e} context`, ex);
    ex.targets.forEach((t, k) => checkIndices(t, n, `example ${e} target ${k + 1}`, ex));
    const fx = e % ncol, fy = Math.floor(e / ncol);
    // Over an image the masks are see-through; without one they are solid.
    const op = ex.image ? 0.55 : 1;
    const member: string[][] = Array.from({ length: n }, () => []);
    for (const p of ex.context) member[p].push("context");
    ex.targets.forEach((t, k) => {
      for (const p of t) if (!member[p].includes(targetNames[k])) member[p].push(targetNames[k]);
    });
    for (let p = 0; p < n; p++) {
      const r = Math.floor(p / ex.cols), c = p % ex.cols;
      const kinds = member[p].length > 0 ? member[p] : ["unused"];
      kinds.forEach((kind, j) => {
        const w = 1 / kinds.length;
        cells.push({ x1: c + j * w, x2: c + (j + 1) * w, y1: r, y2: r + 1, kind, op, fx, fy });
      });
      grid.push({ x1: c, x2: c + 1, y1: r, y2: r + 1, fx, fy });
    }
    // Panel label: context size and target block sizes, shortened to fit the panel's width.
    const sizes = ex.targets.map((t) => t.length).join("/") || "none";
    const long = `#${e + 1}: context ${ex.context.length}, targets ${sizes}`;
    const short = `#${e + 1}: ctx ${ex.context.length}, tgt ${sizes}`;
    const text = [long, short, `#${e + 1}: ctx ${ex.context.length}`].find((t) =>
      textWidth(t, 10) <= panelW + gapX - 6
    )!;
    labels.push({ fx, fy, text });
    if (ex.image) {
      const img = ex.image;
      images.push({
        fx,
        fy,
        x: ex.cols / 2,
        y: ex.rows / 2,
        src: pngDataUri(imageToRgba(img, `plotMasks: example ${e} image`), img.width, img.height),
      });
    }
  });

  const m = { top: 22, right: 8, bottom: 36, left: 48 };
  const tickStep = Math.max(1, Math.ceil(Math.max(rows, cols) / 5));
  const ticks = (n: number) => Array.from({ length: Math.ceil(n / tickStep) }, (_, i) => i * tickStep + 0.5);

  return render({
    title: opts.title ?? "I-JEPA masks: context and target blocks",
    subtitle: opts.subtitle ??
      (anyImage
        ? "Striped patches belong to several sets; images, where given, show through."
        : "Each square is one patch. A patch in several sets is split into stripes."),
    width: m.left + m.right + ncol * panelW + (ncol - 1) * gapX,
    height: m.top + m.bottom + nrow * panelH + (nrow - 1) * gapY,
    marginTop: m.top,
    marginRight: m.right,
    marginBottom: m.bottom,
    marginLeft: m.left,
    fx: {
      axis: null,
      domain: Array.from({ length: ncol }, (_, i) => i),
      paddingInner: ncol > 1 ? gapX / (panelW + gapX) : 0,
      paddingOuter: 0,
    },
    fy: {
      axis: null,
      domain: Array.from({ length: nrow }, (_, i) => i),
      paddingInner: nrow > 1 ? gapY / (panelH + gapY) : 0,
      paddingOuter: 0,
    },
    x: {
      domain: [0, cols],
      label: "patch column",
      labelAnchor: "center",
      labelArrow: "none",
      ticks: ticks(cols),
      tickFormat: (d: number) => String(d - 0.5),
    },
    y: {
      domain: [0, rows],
      reverse: true,
      label: "patch row",
      labelAnchor: "center",
      labelArrow: "none",
      ticks: ticks(rows),
      tickFormat: (d: number) => String(d - 0.5),
    },
    color: { domain, range, legend: true },
    marks: [
      Plot.image(images, {
        fx: "fx",
        fy: "fy",
        x: "x",
        y: "y",
        src: "src",
        width: panelW,
        height: panelH,
        preserveAspectRatio: "none",
        imageRendering: "pixelated",
      }),
      Plot.rect(cells, {
        fx: "fx",
        fy: "fy",
        x1: "x1",
        x2: "x2",
        y1: "y1",
        y2: "y2",
        fill: "kind",
        fillOpacity: "op",
      }),
      // Patch borders, drawn on top so stripes and images keep the patch grid readable.
      Plot.rect(grid, {
        fx: "fx",
        fy: "fy",
        x1: "x1",
        x2: "x2",
        y1: "y1",
        y2: "y2",
        fill: "none",
        stroke: "white",
        strokeWidth: 1,
      }),
      Plot.text(labels, {
        fx: "fx",
        fy: "fy",
        text: "text",
        frameAnchor: "top-left",
        textAnchor: "start",
        lineAnchor: "bottom",
        dy: -5,
        fontSize: 10,
      }),
    ],
  });
}

/** A point of a loss curve; `series` names the run when several are drawn. */
export interface LossPoint {
  step: number;
  loss: number;
  series?: string;
}

/**
 * Loss curve(s) against training step, optionally on a log y axis and with a moving average.
 *
 * @example
 * ```ts
 * import { plotLoss } from "./plot.ts";
 * const pts = Array.from({ length: 50 }, (_, i) => ({ step: i, loss: 1 / (i + 1) }));
 * const svg = plotLoss(pts, { logY: true, smooth: 5 });
 * if (!svg.includes("loss")) throw new Error("missing y label");
 * ```
 */
export function plotLoss(
  points: LossPoint[],
  opts: FigureOptions & { logY?: boolean; smooth?: number; x?: string; y?: string } = {},
): string {
  if (points.length === 0) throw new RangeError("plotLoss: expected at least one point, got 0");
  if (opts.logY) {
    const bad = points.find((p) => !(p.loss > 0));
    if (bad) {
      throw new RangeError(
        `plotLoss: logY needs positive losses, got ${bad.loss} at step ${bad.step}`,
      );
    }
  }
  const data = points.map((p) => ({ step: p.step, loss: p.loss, series: p.series ?? "loss" }))
    .sort((a, b) => a.step - b.step);
  const multi = new Set(data.map((d) => d.series)).size > 1;
  const k = Math.max(1, Math.floor(opts.smooth ?? 1));
  const stroke = multi ? "series" : DEFAULTS.contextColor;
  const lineMarks = k > 1
    ? [
      Plot.line(data, { x: "step", y: "loss", z: "series", stroke, strokeOpacity: 0.25 }),
      Plot.line(
        data,
        Plot.windowY({ k, anchor: "end", reduce: "mean" }, {
          x: "step",
          y: "loss",
          z: "series",
          stroke,
          strokeWidth: 1.8,
        }),
      ),
    ]
    : [Plot.line(data, { x: "step", y: "loss", z: "series", stroke, strokeWidth: 1.5 })];
  return render({
    title: opts.title ?? "Training loss",
    subtitle: opts.subtitle ??
      (k > 1 ? `Faint: every step. Bold: mean of the last ${k}.` : undefined),
    width: opts.width ?? 640,
    height: opts.height ?? 340,
    marginLeft: 56,
    grid: true,
    x: { label: opts.x ?? "step" },
    y: {
      label: opts.y ?? (opts.logY ? "loss (log scale)" : "loss"),
      type: opts.logY ? "log" : "linear",
      tickFormat: opts.logY ? "~g" : undefined,
    },
    color: multi ? { legend: true } : undefined,
    marks: [...(opts.logY ? [] : [Plot.ruleY([0])]), ...lineMarks],
  });
}

/** A point of {@link plotLines}. */
export interface LinePoint {
  x: number;
  y: number;
  series: string;
}

/**
 * Generic lines with dots, one per series (accuracy vs shots, feature std vs step, ...).
 *
 * @example
 * ```ts
 * import { plotLines } from "./plot.ts";
 * const svg = plotLines(
 *   [{ x: 1, y: 40, series: "I-JEPA" }, { x: 10, y: 60, series: "I-JEPA" }],
 *   { x: "labels per class", y: "accuracy (%)", title: "Few-shot probe", logX: true },
 * );
 * if (!svg.includes("accuracy (%)")) throw new Error("missing y label");
 * ```
 */
export function plotLines(
  points: LinePoint[],
  opts: FigureOptions & {
    x: string;
    y: string;
    title: string;
    logX?: boolean;
    logY?: boolean;
    dots?: boolean;
  },
): string {
  if (points.length === 0) throw new RangeError("plotLines: expected at least one point, got 0");
  const data = [...points].sort((a, b) => a.x - b.x);
  return render({
    title: opts.title,
    subtitle: opts.subtitle,
    width: opts.width ?? 640,
    height: opts.height ?? 340,
    marginLeft: 56,
    grid: true,
    x: { label: opts.x, type: opts.logX ? "log" : "linear" },
    y: { label: opts.y, type: opts.logY ? "log" : "linear" },
    color: { legend: true },
    marks: [
      Plot.line(data, { x: "x", y: "y", stroke: "series", strokeWidth: 1.5 }),
      ...(opts.dots === false ? [] : [Plot.dot(data, { x: "x", y: "y", fill: "series", r: 3 })]),
    ],
  });
}

/** A bar of {@link plotBars}: one `label` (a method) within one `group` (a setting). */
export interface BarRow {
  group: string;
  label: string;
  mean: number;
  /** Error bar half-length (e.g. std over seeds). */
  std?: number;
}

/**
 * Grouped bars with error bars and the value written above each bar; optionally a reference value
 * per group (e.g. the paper's number) drawn as a dashed line across the group.
 *
 * @example
 * ```ts
 * import { plotBars } from "./plot.ts";
 * const svg = plotBars([
 *   { group: "1% labels", label: "I-JEPA", mean: 57.7, std: 2.5 },
 *   { group: "1% labels", label: "random init", mean: 53.3 },
 * ], { y: "accuracy (%)", reference: { "1% labels": 60 }, referenceLabel: "target" });
 * if (!svg.includes("57.7")) throw new Error("value label missing");
 * ```
 */
export function plotBars(
  rows: BarRow[],
  opts: FigureOptions & {
    x?: string;
    y?: string;
    reference?: Record<string, number>;
    referenceLabel?: string;
    format?: (v: number) => string;
    yDomain?: [number, number];
  } = {},
): string {
  if (rows.length === 0) throw new RangeError("plotBars: expected at least one row, got 0");
  const groups = [...new Set(rows.map((r) => r.group))];
  const labels = [...new Set(rows.map((r) => r.label))];
  const fmt = opts.format ?? ((v: number) => (Math.abs(v) >= 10 ? v.toFixed(1) : v.toPrecision(3)));
  const withStd = rows.filter((r) => r.std !== undefined && r.std > 0);
  const refLabel = opts.referenceLabel ?? "reference";
  const refs = Object.entries(opts.reference ?? {}).map(([group, value]) => {
    if (!groups.includes(group)) {
      throw new RangeError(
        `plotBars: reference for unknown group "${group}", expected one of ${JSON.stringify(groups)}`,
      );
    }
    return { group, value, text: `${refLabel} ${fmt(value)}` };
  });
  const bandPx = Math.max(18, Math.min(48, 420 / (groups.length * labels.length)));
  const width = opts.width ?? Math.max(420, 70 + groups.length * (labels.length * bandPx + 30));
  return render({
    title: opts.title ?? "Results",
    subtitle: opts.subtitle ??
      (refs.length > 0
        ? `Dashed line: ${refLabel}.${withStd.length > 0 ? " Error bars: \u00b11 std." : ""}`
        : withStd.length > 0
        ? "Error bars: \u00b11 std."
        : undefined),
    width,
    height: opts.height ?? 340,
    marginLeft: 56,
    marginTop: 24,
    marginBottom: opts.x ? 44 : 30,
    fx: {
      label: opts.x ?? null,
      domain: groups,
      padding: 0.12,
      labelOffset: 38,
      labelArrow: "none",
    },
    x: { axis: null, domain: labels, padding: 0.1 },
    y: { label: opts.y ?? "value", grid: true, domain: opts.yDomain, nice: true },
    color: { domain: labels, legend: true },
    marks: [
      Plot.barY(rows, { fx: "group", x: "label", y: "mean", fill: "label" }),
      Plot.ruleX(withStd, {
        fx: "group",
        x: "label",
        y1: (r: BarRow) => r.mean - r.std!,
        y2: (r: BarRow) => r.mean + r.std!,
        stroke: "#333",
        strokeWidth: 1.5,
      }),
      Plot.text(rows, {
        fx: "group",
        x: "label",
        y: (r: BarRow) => r.mean + (r.std ?? 0),
        text: (r: BarRow) => fmt(r.mean),
        lineAnchor: "bottom",
        dy: -3,
        fontSize: 9,
      }),
      Plot.ruleY(refs, { fx: "group", y: "value", stroke: "#222", strokeDasharray: "5,3" }),
      Plot.text(refs, {
        fx: "group",
        y: "value",
        text: "text",
        frameAnchor: "right",
        textAnchor: "end",
        lineAnchor: "bottom",
        dy: -2,
        fontSize: 9,
        stroke: "white", // a halo keeps the label readable where it crosses a bar
        strokeWidth: 3,
        fill: "black",
      }),
      Plot.ruleY([0]),
    ],
  });
}

/**
 * Confusion matrix heat map (rows: true class, columns: predicted), counts written in the cells,
 * colour by count or, with `normalize`, by the fraction of each true class.
 *
 * @example
 * ```ts
 * import { plotConfusion } from "./plot.ts";
 * const svg = plotConfusion([[5, 1], [2, 4]], ["cat", "dog"]);
 * if (!svg.includes("accuracy 75.0%")) throw new Error("accuracy missing from subtitle");
 * ```
 */
export function plotConfusion(
  matrix: number[][],
  classNames: string[],
  opts: FigureOptions & { normalize?: boolean; x?: string; y?: string } = {},
): string {
  const n = classNames.length;
  if (matrix.length !== n || matrix.some((row) => row.length !== n)) {
    throw new RangeError(
      `plotConfusion: expected a ${n}x${n} matrix for ${n} class names, got ${matrix.length}x${
        matrix.map((r) => r.length).join("/")
      }`,
    );
  }
  const total = matrix.flat().reduce((a, b) => a + b, 0);
  const correct = matrix.reduce((a, row, i) => a + row[i], 0);
  const cells = matrix.flatMap((row, i) => {
    const rowSum = row.reduce((a, b) => a + b, 0);
    return row.map((count, j) => ({
      truth: classNames[i],
      predicted: classNames[j],
      count,
      value: opts.normalize ? (rowSum > 0 ? count / rowSum : 0) : count,
    }));
  });
  const max = Math.max(...cells.map((c) => c.value), 1e-12);
  const cellPx = Math.max(24, Math.min(52, Math.floor(440 / n)));
  const longest = Math.max(...classNames.map((c) => textWidth(c, 10)));
  const rotate = longest > cellPx - 4;
  const marginLeft = Math.ceil(longest + 34);
  const marginBottom = rotate ? Math.ceil(longest * 0.65 + 34) : 40;
  return render({
    title: opts.title ?? "Confusion matrix",
    subtitle: opts.subtitle ??
      `accuracy ${(total > 0 ? (100 * correct) / total : 0).toFixed(1)}% (n = ${total})`,
    width: marginLeft + n * cellPx + 10,
    height: 8 + n * cellPx + marginBottom,
    marginLeft,
    marginBottom,
    marginTop: 8,
    marginRight: 10,
    x: {
      domain: classNames,
      label: opts.x ?? "predicted class",
      tickRotate: rotate ? -40 : 0,
      axis: "bottom",
    },
    y: { domain: classNames, label: opts.y ?? "true class" },
    color: {
      type: "linear",
      scheme: "blues",
      domain: [0, opts.normalize ? 1 : max],
      legend: true,
      label: opts.normalize ? "fraction of true class" : "count",
    },
    marks: [
      Plot.cell(cells, { x: "predicted", y: "truth", fill: "value", inset: 0.5 }),
      Plot.text(cells, {
        x: "predicted",
        y: "truth",
        text: (d: { count: number }) => String(d.count),
        fill: (
          d: { value: number },
        ) => (d.value > 0.55 * (opts.normalize ? 1 : max) ? "white" : "black"),
        fontSize: cellPx >= 36 ? 10 : 8,
      }),
    ],
  });
}

/** A point of {@link plotScatter}. */
export interface ScatterPoint {
  x: number;
  y: number;
  label: string;
}

/**
 * A 2-D projection (PCA, t-SNE, ...) coloured by class.
 *
 * @example
 * ```ts
 * import { plotScatter } from "./plot.ts";
 * const svg = plotScatter([{ x: 0, y: 0, label: "a" }, { x: 1, y: 1, label: "b" }], { x: "PC 1", y: "PC 2" });
 * if ((svg.match(/<circle/g) ?? []).length !== 2) throw new Error("expected 2 dots");
 * ```
 */
export function plotScatter(
  points: ScatterPoint[],
  opts: FigureOptions & { x?: string; y?: string; r?: number; domain?: string[] } = {},
): string {
  return render({
    title: opts.title ?? "Embedding projection",
    subtitle: opts.subtitle,
    width: opts.width ?? 560,
    height: opts.height ?? 440,
    marginLeft: 50,
    grid: true,
    x: { label: opts.x ?? "component 1" },
    y: { label: opts.y ?? "component 2" },
    color: { legend: true, domain: opts.domain },
    marks: [
      Plot.dot(points, { x: "x", y: "y", fill: "label", r: opts.r ?? 2.5, fillOpacity: 0.75 }),
    ],
  });
}

/** An image for {@link plotImages}, with an optional caption (use "\n" for two lines). */
export interface CaptionedImage extends PlotImage {
  caption?: string;
}

/**
 * A grid of small images with captions (e.g. a target patch next to its predicted nearest patch).
 * Images are embedded as PNG data URIs and drawn without smoothing.
 *
 * @example
 * ```ts
 * import { plotImages } from "./plot.ts";
 * const img = { data: new Uint8Array(16).fill(128), height: 4, width: 4, channels: 1, caption: "grey" };
 * const svg = plotImages([img, img], { columns: 2 });
 * if ((svg.match(/<image/g) ?? []).length !== 2) throw new Error("expected 2 images");
 * ```
 */
export function plotImages(
  images: CaptionedImage[],
  opts: FigureOptions & { columns: number; size?: number },
): string {
  if (images.length === 0) throw new RangeError("plotImages: expected at least one image, got 0");
  if (!(Number.isInteger(opts.columns) && opts.columns > 0)) {
    throw new RangeError(`plotImages: expected a positive integer columns, got ${opts.columns}`);
  }
  const size = opts.size ?? 72;
  const ncol = Math.min(opts.columns, images.length);
  const nrow = Math.ceil(images.length / ncol);
  const capLines = Math.max(
    0,
    ...images.map((im) => (im.caption ? im.caption.split("\n").length : 0)),
  );
  const capW = Math.max(
    0,
    ...images.flatMap((im) => (im.caption ?? "").split("\n").map((l) => textWidth(l, 10))),
  );
  const cellW = Math.max(size, Math.ceil(capW)) + 12;
  const cellH = size + capLines * 12 + 14;
  const width = ncol * cellW, height = nrow * cellH;
  const data = images.map((im, i) => {
    const c = i % ncol, r = Math.floor(i / ncol);
    return {
      x: c * cellW + cellW / 2,
      y: r * cellH + 4 + size / 2,
      capY: r * cellH + 4 + size + 4,
      caption: im.caption ?? "",
      src: pngDataUri(imageToRgba(im, `plotImages: image ${i}`), im.width, im.height),
    };
  });
  return render({
    title: opts.title ?? "Images",
    subtitle: opts.subtitle,
    width,
    height,
    margin: 0,
    x: { type: "identity", axis: null },
    y: { type: "identity", axis: null },
    marks: [
      Plot.image(data, {
        x: "x",
        y: "y",
        src: "src",
        width: size,
        height: size,
        preserveAspectRatio: "none",
        imageRendering: "pixelated",
      }),
      // A thin frame so dark and light images both show their extent.
      Plot.rect(data, {
        x1: (d: { x: number }) => d.x - size / 2,
        x2: (d: { x: number }) => d.x + size / 2,
        y1: (d: { y: number }) => d.y - size / 2,
        y2: (d: { y: number }) => d.y + size / 2,
        stroke: "#bbb",
        fill: "none",
      }),
      Plot.text(data, { x: "x", y: "capY", text: "caption", lineAnchor: "top", fontSize: 10 }),
    ],
  });
}
