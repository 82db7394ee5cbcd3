/**
 * Figures of pictures: the I-JEPA context and target masks on the patch grid (over the image when
 * given), and a captioned grid of small images.
 *
 * @module
 */

import * as Plot from "@observablehq/plot";
import { DEFAULTS } from "./defaults.ts";
import { imageToRgba, type PlotImage, pngDataUri } from "./image.ts";
import { type FigureOptions, render } from "./render.ts";
import { textWidth } from "./text.ts";

/** One example for {@link plotMasks}: patch indices are row-major on a rows x cols grid. */
export interface MaskExample {
  /** Rows of the patch grid. */
  rows: number;
  /** Columns of the patch grid. */
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
 * import { plotMasks } from "./figures_images.ts";
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

/** An image for {@link plotImages}, with an optional caption (use "\n" for two lines). */
export interface CaptionedImage extends PlotImage {
  /** Caption under the image. */
  caption?: string;
}

/**
 * A grid of small images with captions (e.g. a target patch next to its predicted nearest patch).
 * Images are embedded as PNG data URIs and drawn without smoothing.
 *
 * @example
 * ```ts
 * import { plotImages } from "./figures_images.ts";
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
