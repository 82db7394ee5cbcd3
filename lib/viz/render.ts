/**
 * Observable Plot rendered to standalone SVG text with no browser, for Jupyter, the web and PNG.
 *
 * Observable Plot wants a DOM; we hand it a fresh `linkedom` document per figure, with a tiny
 * canvas stand-in so continuous colour legends (and `raster` marks) work. Plot returns an HTML
 * `<figure>` when a figure has a title or a legend; {@link render} flattens that into one `<svg>`
 * (title, subtitle, legends and caption become SVG text), because both Jupyter's
 * `image/svg+xml` output and resvg need pure SVG.
 *
 * @module
 */

import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { DEFAULTS } from "./defaults.ts";
import { pngDataUri } from "./image.ts";
import { esc, r2, textWidth, wrapText } from "./text.ts";

/**
 * Observable Plot's options for one plot (`Plot.PlotOptions`: marks, scales, title, size), as
 * {@link render} takes them; an alias, so Plot's own option objects pass unchanged.
 */
export type PlotOptions = Plot.PlotOptions;

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
 * import { render } from "./render.ts";
 * const svg = render({
 *   title: "Two points",
 *   color: { legend: true },
 *   marks: [Plot.dot([{ x: 1, y: 2, c: "a" }, { x: 2, y: 1, c: "b" }], { x: "x", y: "y", fill: "c" })],
 * });
 * if (!svg.includes('xmlns="http://www.w3.org/2000/svg"')) throw new Error("no xmlns");
 * if (svg.includes("<figure") || !svg.includes(">Two points</text>")) throw new Error("not flat SVG");
 * ```
 */
export function render(options: PlotOptions): string {
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
