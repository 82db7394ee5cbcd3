/**
 * Block geometry on the patch grid: a block's size from its scale and aspect ratio, every size a
 * range of them allows, and the scratch grid the strategies place blocks on.
 *
 * @module
 */

import type { Range2 } from "./options.ts";

/**
 * A block's height and width from its scale s (area fraction) and aspect a (height / width) on a
 * `rows x cols` grid: `h = round(sqrt(s * rows * cols * a))`, `w = round(sqrt(s * rows * cols / a))`,
 * clamped to `[1, rows]` and `[1, cols]`.
 *
 * Departure: the official code floors the area to an integer before the square roots and caps the
 * block at (rows-1) x (cols-1); we keep the exact area and let a block span the whole grid.
 *
 * @example
 * ```ts
 * import { blockSize } from "./geometry.ts";
 * const [h, w] = blockSize(0.2, 1.5, 14, 14); // 39.2 patches, 1.5x as tall as wide
 * if (h !== 8 || w !== 5) throw new Error(`got ${h}x${w}`);
 * ```
 */
export function blockSize(
  scale: number,
  aspect: number,
  rows: number,
  cols: number,
): [number, number] {
  const area = scale * rows * cols;
  const h = Math.min(rows, Math.max(1, Math.round(Math.sqrt(area * aspect))));
  const w = Math.min(cols, Math.max(1, Math.round(Math.sqrt(area / aspect))));
  return [h, w];
}

/**
 * Every block size `[h, w]` that {@link blockSize} can return for some scale in `scale` and some
 * aspect in `aspect` - exactly, not by sampling. The constructor uses it to compute the worst cases
 * (the largest target, the largest context) and reject impossible settings.
 *
 * How: with X = s*R*C*a and Y = s*R*C/a, `h` is fixed by X and `w` by Y. In p = ln X, q = ln Y the
 * scale range is a band on p + q and the aspect range a band on p - q, and each (h, w) is a box
 * in (p, q); eliminating q (Fourier-Motzkin) leaves an interval for p that is empty or not.
 *
 * @example
 * ```ts
 * import { possibleBlockSizes } from "./geometry.ts";
 * // The paper's context block on 7x7: 6x6 or 7x7 (the official cap allows only 6x6).
 * const sizes = possibleBlockSizes(7, 7, [0.85, 1.0], [1, 1]);
 * if (JSON.stringify(sizes) !== "[[6,6],[7,7]]") throw new Error(JSON.stringify(sizes));
 * ```
 */
export function possibleBlockSizes(
  rows: number,
  cols: number,
  scale: Range2,
  aspect: Range2,
): [number, number][] {
  const area = rows * cols;
  // Closed bands: ln(s*R*C)*2 for p + q, ln(a)*2 for p - q.
  const s0 = 2 * Math.log(scale[0] * area), s1 = 2 * Math.log(scale[1] * area);
  const d0 = 2 * Math.log(aspect[0]), d1 = 2 * Math.log(aspect[1]);
  // The half-open range of ln X (or ln Y) that rounds to `k`, with the clamp to [1, n] applied.
  const lower = (k: number) => (k === 1 ? -Infinity : 2 * Math.log(k - 0.5));
  const upper = (k: number, n: number) => (k === n ? Infinity : 2 * Math.log(k + 0.5));
  const out: [number, number][] = [];
  for (let h = 1; h <= rows; h++) {
    const p0 = lower(h), p1 = upper(h, rows); // p in [p0, p1)
    for (let w = 1; w <= cols; w++) {
      const q0 = lower(w), q1 = upper(w, cols); // q in [q0, q1)
      // Bounds on p once q is eliminated: [value, closed?]. Closed & closed may meet at a point.
      const lo: [number, boolean][] = [
        [p0, true], // p >= p0
        [q0 + d0, true], // q >= q0 and p - q >= d0
        [s0 - q1, false], // q < q1 and p + q >= s0
        [(s0 + d0) / 2, true], // p + q >= s0 and p - q >= d0
      ];
      const hi: [number, boolean][] = [
        [p1, false], // p < p1
        [s1 - q0, true], // q >= q0 and p + q <= s1
        [q1 + d1, false], // q < q1 and p - q <= d1
        [(s1 + d1) / 2, true], // p + q <= s1 and p - q <= d1
      ];
      let ok = true;
      for (const [a, ca] of lo) {
        for (const [b, cb] of hi) if (a > b || (a === b && !(ca && cb))) ok = false;
      }
      if (ok) out.push([h, w]);
    }
  }
  // Guard against a rounding disagreement at a boundary: the four corner draws are always possible.
  for (const sc of scale) {
    for (const a of aspect) {
      const [h, w] = blockSize(sc, a, rows, cols);
      if (!out.some(([x, y]) => x === h && y === w)) out.push([h, w]);
    }
  }
  return out.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}

/**
 * Scratch buffers reused by every draw of one masker, over a `rows x cols` patch grid:
 * `mark[i] === gen` means patch i is taken in the current draw, so starting a new draw is one
 * increment instead of clearing the grid. Rectangles are given by their top-left patch and size.
 */
export class PatchGrid {
  readonly rows: number;
  readonly cols: number;
  /** Per patch, the generation of the draw that last took it. */
  readonly mark: Uint32Array;
  /** One grid's worth of indices: collected patches, collation subsets. */
  readonly buf: Int32Array;
  /** One grid's worth of indices: the random strategy's permutation. */
  readonly perm: Int32Array;
  #gen = 0;

  constructor(rows: number, cols: number) {
    this.rows = rows;
    this.cols = cols;
    const n = rows * cols;
    this.mark = new Uint32Array(n);
    this.buf = new Int32Array(n);
    this.perm = new Int32Array(n);
  }

  /** Start a new draw: the generation that marks its patches. */
  nextGen(): number {
    if (this.#gen === 0xffffffff) {
      this.mark.fill(0);
      this.#gen = 0;
    }
    return ++this.#gen;
  }

  /** Mark a rectangle with `gen`; returns how many patches were not marked before. */
  markRect(gen: number, top: number, left: number, h: number, w: number): number {
    const cols = this.cols, mark = this.mark;
    let fresh = 0;
    for (let r = top; r < top + h; r++) {
      for (let i = r * cols + left, end = i + w; i < end; i++) {
        if (mark[i] !== gen) {
          mark[i] = gen;
          fresh++;
        }
      }
    }
    return fresh;
  }

  /** The sorted indices of a rectangle's unmarked patches (raster order within a box is sorted). */
  collectFree(gen: number, top: number, left: number, h: number, w: number): Int32Array {
    const cols = this.cols, mark = this.mark, buf = this.buf;
    let k = 0;
    for (let r = top; r < top + h; r++) {
      for (let i = r * cols + left, end = i + w; i < end; i++) if (mark[i] !== gen) buf[k++] = i;
    }
    return buf.slice(0, k);
  }

  /** How many of a rectangle's patches are unmarked. */
  countFree(gen: number, top: number, left: number, h: number, w: number): number {
    const cols = this.cols, mark = this.mark;
    let k = 0;
    for (let r = top; r < top + h; r++) {
      for (let i = r * cols + left, end = i + w; i < end; i++) if (mark[i] !== gen) k++;
    }
    return k;
  }

  /** The sorted indices of every patch of a rectangle. */
  rect(top: number, left: number, h: number, w: number): Int32Array {
    const cols = this.cols, out = new Int32Array(h * w);
    let k = 0;
    for (let r = top; r < top + h; r++) {
      for (let c = left; c < left + w; c++) out[k++] = r * cols + c;
    }
    return out;
  }
}
