/**
 * Collation: a batch of per-example masks of different lengths becomes the fixed-length index
 * matrices of {@link CollatedMasks}, so the model can gather tokens with one index tensor.
 *
 * @module
 */

import type { Rng } from "../engine/rng.ts";
import type { CollatedMasks, MaskSample } from "./batch.ts";
import type { ResolvedMaskerOptions } from "./options.ts";

/** Write a sorted uniform random `k`-subset of `src` into `out` at `offset` (`buf`: scratch). */
function subset(
  src: Int32Array,
  k: number,
  rng: Rng,
  out: Int32Array,
  offset: number,
  buf: Int32Array,
): void {
  buf.set(src);
  for (let i = 0; i < k; i++) {
    const j = rng.int(i, src.length);
    const t = buf[i];
    buf[i] = buf[j];
    buf[j] = t;
  }
  out.set(buf.subarray(0, k).sort(), offset);
}

/**
 * Collation. Contexts: `truncate` to the batch's shortest, keeping a random subset of each longer
 * one (Departure: the official keeps the first Lc in raster order, which always drops the bottom
 * rows); `pad` to the longest, repeating the example's first index, with `contextValid`.
 * Targets: one length Lt for all M * B blocks, the shortest, longer blocks cut to a random subset
 * the same way. Multi-block and block targets share one size per batch, so nothing is cut; odd
 * grids' rasterized quadrants differ in size and are cut.
 *
 * `buf` is scratch of at least one grid's worth of indices.
 */
export function collateMasks(
  examples: MaskSample[],
  options: ResolvedMaskerOptions,
  rng: Rng,
  buf: Int32Array,
): Omit<CollatedMasks, "batchSize"> {
  const B = examples.length, M = options.nTargets, pad = options.collate === "pad";
  let Lc = pad ? 0 : Infinity;
  for (const e of examples) {
    Lc = pad ? Math.max(Lc, e.context.length) : Math.min(Lc, e.context.length);
  }
  const contextIdx = new Int32Array(B * Lc); // [B, Lc]
  const contextValid = pad ? new Uint8Array(B * Lc) : null; // [B, Lc]
  for (let b = 0; b < B; b++) {
    const ctx = examples[b].context, off = b * Lc;
    if (ctx.length === Lc) contextIdx.set(ctx, off);
    else if (!pad) subset(ctx, Lc, rng, contextIdx, off, buf);
    else {
      contextIdx.set(ctx, off);
      contextIdx.fill(ctx[0], off + ctx.length, off + Lc);
    }
    contextValid?.fill(1, off, off + ctx.length);
  }
  let Lt = Infinity;
  for (const e of examples) for (const t of e.targets) Lt = Math.min(Lt, t.length);
  const targetIdx = new Int32Array(M * B * Lt); // [M, B, Lt]
  for (let m = 0; m < M; m++) {
    for (let b = 0; b < B; b++) {
      const t = examples[b].targets[m], off = (m * B + b) * Lt;
      if (t.length === Lt) targetIdx.set(t, off);
      else subset(t, Lt, rng, targetIdx, off, buf);
    }
  }
  return { contextLen: Lc, contextIdx, contextValid, nTargets: M, targetLen: Lt, targetIdx };
}
