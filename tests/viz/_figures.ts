// Shared by the tests of lib/viz: one seeded example of every figure, and helpers that read SVG
// (elements of a mark, all text, size) and PNG (decode, count pixels) back.
//
// Set PLOT_LOOK_DIR=/tmp/plot-look to have output_test.ts write one PNG of each figure there for
// a visual check.

import assert from "node:assert/strict";
import { DOMParser } from "linkedom";
import { Buffer } from "node:buffer";
import { PNG } from "pngjs";
import { Rng } from "../../lib/engine/rng.ts";
import { plotLines, plotLoss } from "../../lib/viz/figures_curves.ts";
import { type MaskExample, plotImages, plotMasks } from "../../lib/viz/figures_images.ts";
import { plotBars, plotConfusion, plotScatter } from "../../lib/viz/figures_results.ts";

// deno-lint-ignore no-explicit-any
type El = any;

export function parse(svg: string): El {
  return new DOMParser().parseFromString(svg, "image/svg+xml");
}

/** Elements matching `selector` inside the mark groups Plot labels `aria-label="<mark>"`. */
export function inMark(svg: string, mark: string, selector: string): El[] {
  return Array.from(parse(svg).querySelectorAll(`g[aria-label="${mark}"] ${selector}`));
}

/** All text in the figure, with Plot's axis-label arrows stripped ("↑ loss" -> "loss"). */
export function texts(svg: string): string[] {
  return Array.from(parse(svg).querySelectorAll("text") as El[]).map((t) =>
    String(t.textContent).replace(/^[↑↓←→] /, "").replace(/ [↑↓←→]$/, "")
  );
}

export function svgSize(svg: string): [number, number] {
  const m = /^<svg [^>]*width="(\d+)" height="(\d+)"/.exec(svg);
  assert.ok(m, "root <svg> with integer width and height");
  return [Number(m[1]), Number(m[2])];
}

export function decode(png: Uint8Array): { width: number; height: number; data: Uint8Array } {
  return PNG.sync.read(Buffer.from(png));
}

export function countNonWhite(png: Uint8Array): number {
  const { data } = decode(png);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250) n++;
  }
  return n;
}

export function countColor(png: Uint8Array, hex: string): number {
  const v = parseInt(hex.slice(1), 16);
  const [r, g, b] = [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  const { data } = decode(png);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === r && data[i + 1] === g && data[i + 2] === b) n++;
  }
  return n;
}

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** A w x h block of patch indices with its top-left corner at (r0, c0) on a grid `cols` wide. */
export function block(r0: number, c0: number, h: number, w: number, cols: number): Int32Array {
  const out: number[] = [];
  for (let r = r0; r < r0 + h; r++) for (let c = c0; c < c0 + w; c++) out.push(r * cols + c);
  return Int32Array.from(out);
}

/** Seeded examples on a 7x7 grid: a 5x5 context, 2 targets that overlap each other. */
export function maskExamples(withImage: boolean): MaskExample[] {
  const rng = new Rng(7);
  return Array.from({ length: 3 }, (_, e) => {
    const t1 = block(rng.int(0, 5), rng.int(0, 5), 2, 2, 7);
    const t2 = block(rng.int(0, 5), rng.int(0, 4), 2, 3, 7);
    const ctx = Array.from(block(0, 0, 5, 5, 7)).filter((p) => !t1.includes(p) && !t2.includes(p));
    const img = new Float32Array(28 * 28).map(() => rng.float());
    return {
      rows: 7,
      cols: 7,
      context: Int32Array.from(ctx),
      targets: [t1, t2],
      image: withImage && e === 1 ? { data: img, height: 28, width: 28, channels: 1 } : undefined,
    };
  });
}

/** Rects a mask figure should draw: one per patch per set it belongs to (unused counts once). */
export function expectedMaskRects(examples: MaskExample[]): number {
  let n = 0;
  for (const ex of examples) {
    for (let p = 0; p < ex.rows * ex.cols; p++) {
      const k = (ex.context.includes(p) ? 1 : 0) +
        ex.targets.filter((t) => t.includes(p)).length;
      n += Math.max(1, k);
    }
  }
  return n;
}

export const figures: Record<string, () => string> = {
  masks: () => plotMasks(maskExamples(true), { columns: 3 }),
  loss: () => {
    const rng = new Rng(1);
    const pts = ["run A", "run B"].flatMap((series, s) =>
      Array.from({ length: 100 }, (_, i) => ({
        step: i,
        loss: (1 + s) * Math.exp(-i / 30) + 0.05 * rng.float() + 0.01,
        series,
      }))
    );
    return plotLoss(pts, { logY: true, smooth: 8 });
  },
  lines: () =>
    plotLines(
      ["I-JEPA", "random"].flatMap((series, s) =>
        [1, 5, 10, 50].map((x) => ({ x, y: 40 + 8 * Math.log(x) - 5 * s, series }))
      ),
      { x: "labels per class", y: "accuracy (%)", title: "Few-shot probe", logX: true },
    ),
  bars: () =>
    plotBars(
      [
        { group: "1%", label: "I-JEPA", mean: 57.7, std: 2.1 },
        { group: "1%", label: "random", mean: 53.3, std: 1.2 },
        { group: "all", label: "I-JEPA", mean: 66.4 },
        { group: "all", label: "random", mean: 68.0, std: 0.4 },
      ],
      { title: "Probe accuracy", y: "accuracy (%)", x: "labels", reference: { "1%": 60 } },
    ),
  confusion: () => plotConfusion([[8, 1, 1], [2, 7, 1], [0, 3, 7]], ["T-shirt/top", "Trouser", "Bag"]),
  scatter: () => {
    const rng = new Rng(3);
    return plotScatter(
      Array.from({ length: 60 }, (_, i) => ({
        x: rng.normal() + (i % 3),
        y: rng.normal(),
        label: ["a", "b", "c"][i % 3],
      })),
      { x: "PC 1", y: "PC 2" },
    );
  },
  images: () => {
    const rng = new Rng(4);
    return plotImages(
      Array.from({ length: 5 }, (_, i) => ({
        data: new Uint8Array(16 * 16).map(() => rng.int(0, 256)),
        height: 16,
        width: 16,
        channels: 1,
        caption: i % 2 ? `predicted\nd=${i}` : `target ${i}`,
      })),
      { columns: 3, title: "Patches" },
    );
  },
};
