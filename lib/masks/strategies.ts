/**
 * One example's masks under each strategy of the paper's Table 6: multi-block (with its fallback),
 * a single block, rasterized quadrants and random patches, each drawn on the masker's scratch grid.
 *
 * @module
 */

import type { Rng } from "../engine/rng.ts";
import type { MaskSample } from "./batch.ts";
import type { PatchGrid } from "./geometry.ts";
import type { ResolvedMaskerOptions } from "./options.ts";

/**
 * One multi-block example. Each try draws all M target corners and the context corner afresh
 * (official order: targets first, then the context, minus the targets) and is accepted when the
 * context keeps at least `minKeep` patches. After `maxTries` failures, the fallback (counted):
 * 1. keep the try whose targets cover the fewest patches and widen the context block to the whole
 *    grid (scale 1.0, the top of the paper's context range), minus those targets;
 * 2. if that still keeps fewer than `minKeep`, also stack every target block on the first one, so
 *    the context is the grid minus one block: at least `minKeep`, as the constructor checked.
 * Departure: the official instead lets the context overlap the targets after 20 tries, and loops
 * forever when no block can exceed `min_keep`; here the context and targets stay disjoint always.
 */
export function multiBlockExample(
  grid: PatchGrid,
  options: ResolvedMaskerOptions,
  rng: Rng,
  [th, tw]: readonly [number, number],
  [ch, cw]: readonly [number, number],
  fallbackLevel: Uint8Array,
  b: number,
): MaskSample {
  const { rows: H, cols: W, nTargets: M, minKeep, maxTries } = options;
  const tops = new Int32Array(M), lefts = new Int32Array(M);
  const bestTops = new Int32Array(M), bestLefts = new Int32Array(M);
  let bestCovered = Infinity;
  let context: Int32Array | null = null;
  for (let t = 0; t < maxTries && context === null; t++) {
    const gen = grid.nextGen();
    let covered = 0;
    for (let m = 0; m < M; m++) {
      // Departure: the upper bound is inclusive (H - th + 1), so blocks reach the last row/column.
      tops[m] = rng.int(0, H - th + 1);
      lefts[m] = rng.int(0, W - tw + 1);
      covered += grid.markRect(gen, tops[m], lefts[m], th, tw);
    }
    const cTop = rng.int(0, H - ch + 1), cLeft = rng.int(0, W - cw + 1);
    if (grid.countFree(gen, cTop, cLeft, ch, cw) >= minKeep) {
      context = grid.collectFree(gen, cTop, cLeft, ch, cw);
    } else if (covered < bestCovered) {
      bestCovered = covered;
      bestTops.set(tops);
      bestLefts.set(lefts);
    }
  }
  if (context === null) {
    tops.set(bestTops);
    lefts.set(bestLefts);
    fallbackLevel[b] = 1;
    if (H * W - bestCovered < minKeep) {
      tops.fill(tops[0]);
      lefts.fill(lefts[0]);
      fallbackLevel[b] = 2;
    }
    const gen = grid.nextGen();
    for (let m = 0; m < M; m++) grid.markRect(gen, tops[m], lefts[m], th, tw);
    context = grid.collectFree(gen, 0, 0, H, W);
  }
  const targets: Int32Array[] = [];
  for (let m = 0; m < M; m++) targets.push(grid.rect(tops[m], lefts[m], th, tw));
  return { context, targets };
}

/** Table 6 "block": one target block per example; the context is everything else. */
export function singleBlockExample(
  grid: PatchGrid,
  options: ResolvedMaskerOptions,
  rng: Rng,
  [th, tw]: readonly [number, number],
): MaskSample {
  const { rows: H, cols: W } = options;
  const top = rng.int(0, H - th + 1), left = rng.int(0, W - tw + 1);
  const gen = grid.nextGen();
  grid.markRect(gen, top, left, th, tw);
  return {
    context: grid.collectFree(gen, 0, 0, H, W),
    targets: [grid.rect(top, left, th, tw)],
  };
}

/**
 * Table 6 "rasterized": the grid is cut into four quadrants; a random one is the context, the
 * other three (in raster order) the targets. On an odd side the cut falls on either side of the
 * middle row (column), by a coin flip per example, so no quadrant is always the small one.
 */
export function rasterizedExample(
  grid: PatchGrid,
  options: ResolvedMaskerOptions,
  rng: Rng,
): MaskSample {
  const { rows: H, cols: W } = options;
  const r0 = (H >> 1) + (H % 2 === 1 ? rng.int(0, 2) : 0);
  const c0 = (W >> 1) + (W % 2 === 1 ? rng.int(0, 2) : 0);
  const quads = [
    grid.rect(0, 0, r0, c0),
    grid.rect(0, c0, r0, W - c0),
    grid.rect(r0, 0, H - r0, c0),
    grid.rect(r0, c0, H - r0, W - c0),
  ];
  const q = rng.int(0, 4);
  return { context: quads[q], targets: quads.filter((_, i) => i !== q) };
}

/** Table 6 "random": round(maskRatio * N) random patches are the target; the rest the context. */
export function randomExample(
  grid: PatchGrid,
  options: ResolvedMaskerOptions,
  rng: Rng,
): MaskSample {
  const n = options.rows * options.cols;
  const k = Math.round(options.maskRatio * n);
  const perm = grid.perm, mark = grid.mark;
  for (let i = 0; i < n; i++) perm[i] = i; // reset, so a draw never depends on earlier batches
  const gen = grid.nextGen();
  for (let i = 0; i < k; i++) {
    // Partial Fisher-Yates: perm[0..k) becomes a uniform random k-subset.
    const j = rng.int(i, n);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
    mark[perm[i]] = gen;
  }
  const target = new Int32Array(k), context = new Int32Array(n - k);
  for (let i = 0, a = 0, c = 0; i < n; i++) {
    if (mark[i] === gen) target[a++] = i;
    else context[c++] = i;
  }
  return { context, targets: [target] };
}
