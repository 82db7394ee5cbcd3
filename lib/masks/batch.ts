/**
 * The one mask contract between the masker and the model: one example's masks ({@link MaskSample}),
 * a collated batch as the model reads it ({@link CollatedMasks}), the masker's full batch
 * ({@link MaskBatch}) and the check that collated masks fit a batch and a grid ({@link checkMasks}).
 *
 * @example
 * ```ts
 * import { checkMasks, type CollatedMasks } from "./batch.ts";
 * const m: CollatedMasks = {
 *   batchSize: 1, contextIdx: new Int32Array([0, 1, 2]), contextLen: 3, contextValid: null,
 *   nTargets: 2, targetLen: 2, targetIdx: new Int32Array([5, 6, 9, 10]),
 * };
 * checkMasks(m, 1, 16, "example"); // fits one image of a 4x4 grid
 * let threw = false;
 * try { checkMasks(m, 1, 9, "example"); } catch { threw = true; }
 * if (!threw) throw new Error("patch 10 is outside a 3x3 grid");
 * ```
 * @module
 */

/** One example's masks: sorted, duplicate-free patch indices (`row * cols + col`). */
export interface MaskSample {
  /** The patches the context encoder sees (never a target patch). */
  context: Int32Array;
  /** M target blocks, each the sorted indices of one rectangle (or one quadrant / random set). */
  targets: Int32Array[];
}

/** The collated masks of one batch, as the model reads them (the masker's {@link MaskBatch}). */
export interface CollatedMasks {
  /** Examples in the batch (B). */
  batchSize: number;
  /**
   * [B * contextLen] context patch indices, row-major; `pad` fills the padded slots with the
   * example's first context index.
   */
  contextIdx: Int32Array;
  /** Lc, the context length after collation. */
  contextLen: number;
  /** [B * contextLen] 1 real / 0 padding (`pad`), or null when nothing is padded (`truncate`). */
  contextValid: Uint8Array | null;
  /** M, the number of target blocks. */
  nTargets: number;
  /** Lt, patches per target block: one length for every block of every example (the batch's shortest). */
  targetLen: number;
  /** [M * B * targetLen], block-major: block m of example b starts at (m * B + b) * targetLen. */
  targetIdx: Int32Array;
}

/** A batch of masks, per example and collated for the model. */
export interface MaskBatch extends CollatedMasks {
  /** Patch grid rows. */
  rows: number;
  /** Patch grid columns. */
  cols: number;
  /** The uncollated masks, one per example. */
  examples: MaskSample[];
  /** How many examples of this batch needed the fallback (multiblock only; else 0). */
  fallbacks: number;
  /** [B] 0 = normal draw; 1 = context widened to the whole grid; 2 = target blocks stacked too. */
  fallbackLevel: Uint8Array;
  /** The batch's target block size [h, w] (multiblock, block); null otherwise. */
  targetBlock: readonly [number, number] | null;
  /** The batch's context block size [h, w] before fallbacks (multiblock); null otherwise. */
  contextBlock: readonly [number, number] | null;
}

/** Check that collated masks fit a batch of `B` and a grid of `N` patches. */
export function checkMasks(m: CollatedMasks, B: number, N: number, where: string): void {
  if (m.batchSize !== B) {
    throw new Error(`${where}: masks are for a batch of ${m.batchSize}, images are ${B}`);
  }
  if (m.contextIdx.length !== B * m.contextLen) {
    throw new Error(
      `${where}: contextIdx has ${m.contextIdx.length} entries, expected ${B} x ${m.contextLen}`,
    );
  }
  if (m.contextValid && m.contextValid.length !== m.contextIdx.length) {
    throw new Error(
      `${where}: contextValid has ${m.contextValid.length} entries, expected ${m.contextIdx.length}`,
    );
  }
  if (m.targetIdx.length !== m.nTargets * B * m.targetLen) {
    throw new Error(
      `${where}: targetIdx has ${m.targetIdx.length} entries, expected ${m.nTargets} x ${B} x ${m.targetLen}`,
    );
  }
  for (const [name, idx] of [["contextIdx", m.contextIdx], ["targetIdx", m.targetIdx]] as const) {
    for (let i = 0; i < idx.length; i++) {
      if (!(idx[i] >= 0 && idx[i] < N)) {
        throw new RangeError(`${where}: ${name}[${i}] = ${idx[i]} is outside the ${N} patches of the grid`);
      }
    }
  }
}
