/**
 * The masker ({@link MultiBlockMasker}, built by {@link createMasker}) for I-JEPA masking: which
 * patches the context encoder sees, and which ones the predictor must predict.
 *
 * An image of `rows x cols` patches is split, per example, into
 * - a **context**: the patch indices the context encoder is given, and
 * - **M target blocks**: rectangles of patch indices whose target-encoder representations the
 *   predictor must produce from the context.
 * A patch index is `row * cols + col`. Every list is sorted and duplicate-free, and the context never
 * contains a target patch: the predictor must never see what it is asked to predict.
 *
 * The paper's recipe ("multi-block", Assran et al. 2023, section 3) on a 14x14 grid:
 * 1. Once per batch, draw the target block size: scale (area fraction) in (0.15, 0.2) and aspect
 *    ratio (height / width) in (0.75, 1.5). Draw the context block size: scale (0.85, 1.0), aspect 1.
 * 2. Per example, place 4 target blocks at random positions (they may overlap each other), place
 *    the context block, and remove the target patches from it. Large, semantic targets and a big,
 *    spatially spread context are what make I-JEPA learn semantic features (paper, Table 6: 54.2%
 *    against 15-20% for the other strategies below).
 * 3. Collate the batch to fixed lengths so the model can gather tokens with one index tensor.
 *
 * The paper's ablation strategies sit behind the same interface (`strategy`):
 * `rasterized` (one quadrant is the context, the other three the targets), `block` (one large target
 * block, the context is the rest of the image) and `random` (a random `maskRatio` of the patches are
 * the target, the rest is the context).
 *
 * Differences from the official collator (facebookresearch/ijepa `src/masks/multiblock.py`), each
 * marked `Departure:` where it happens and each covered by a test:
 * - Blocks may cover the last row and column. The official caps every block at (H-1)x(W-1) and
 *   draws its corner with an exclusive upper bound, so on a 7x7 grid the context is at most 36 of 49
 *   patches and the bottom row and right column are never seen by the context encoder.
 * - Scale and aspect ratio are drawn independently. The official uses one uniform draw for both,
 *   so large target blocks are always tall and small ones always wide.
 * - Impossible settings fail in the constructor with the numbers in the message, and sampling always
 *   ends: at most `maxTries` draws per example, then a counted fallback that keeps the context and
 *   the targets disjoint. The official retries forever when a block cannot exceed `min_keep`
 *   (`min_keep = 10` on 7x7 or 8x8), and after 20 failed tries it lets the context overlap targets.
 * - `truncate` keeps a random subset of each longer context, not its first indices in raster order
 *   (which always dropped the bottom of the larger contexts); `pad` is offered as well.
 * - `minKeep` means "at least minKeep patches" (the official keeps strictly more than `min_keep`).
 *
 * @example
 * ```ts
 * import { createMasker } from "./masker.ts";
 * import { Rng } from "../engine/rng.ts";
 * const masker = createMasker({ rows: 14, cols: 14 }); // the paper's multi-block defaults
 * const batch = masker.sample(new Rng(0), 8);
 * const { contextLen: Lc, nTargets: M, targetLen: Lt } = batch;
 * if (batch.contextIdx.length !== 8 * Lc) throw new Error("contextIdx is [B * Lc]");
 * if (batch.targetIdx.length !== M * 8 * Lt) throw new Error("targetIdx is [M * B * Lt]");
 * const seen = new Set(batch.examples[0].context);
 * for (const t of batch.examples[0].targets) {
 *   for (const i of t) if (seen.has(i)) throw new Error("a target patch leaked into the context");
 * }
 * ```
 * @module
 */

import type { Rng } from "../engine/rng.ts";
import type { MaskBatch, MaskSample } from "./batch.ts";
import { collateMasks } from "./collate.ts";
import { blockSize, PatchGrid, possibleBlockSizes } from "./geometry.ts";
import { type MaskerOptions, type Range2, type ResolvedMaskerOptions, resolveOptions } from "./options.ts";
import { multiBlockExample, randomExample, rasterizedExample, singleBlockExample } from "./strategies.ts";

const areaOf = (s: readonly [number, number]) => s[0] * s[1];
const fmtSize = (s: readonly [number, number]) => `${s[0]}x${s[1]} = ${s[0] * s[1]} patches`;

/**
 * The masker: checks its options once, then draws batches of masks from a seeded {@link Rng}.
 * Build it with {@link createMasker}. The same options and the same RNG state always give the same
 * batch, on every machine (integer arithmetic on the RNG's 32-bit draws; no platform maths except
 * `sqrt`, which IEEE 754 fixes exactly).
 *
 * @example
 * ```ts
 * import { MultiBlockMasker } from "./masker.ts";
 * import { Rng } from "../engine/rng.ts";
 * const m = new MultiBlockMasker({ rows: 7, cols: 7, minKeep: 6, collate: "pad" });
 * const b = m.sample(new Rng(1), 4);
 * if (b.contextValid === null || b.contextValid.length !== 4 * b.contextLen) throw new Error("pad mask");
 * ```
 */
export class MultiBlockMasker {
  /** The options with every default filled in. */
  readonly options: ResolvedMaskerOptions;
  /** Every target block size the options allow (multiblock, block); empty otherwise. */
  readonly targetSizes: readonly (readonly [number, number])[];
  /** Every context block size the options allow (multiblock); empty otherwise. */
  readonly contextSizes: readonly (readonly [number, number])[];

  // Scratch buffers reused by every draw (see PatchGrid).
  #grid: PatchGrid;

  /** A masker for `opts`; throws a clear error on options out of range. */
  constructor(opts: MaskerOptions) {
    const o = resolveOptions(opts);
    this.options = o;
    const n = o.rows * o.cols;
    this.#grid = new PatchGrid(o.rows, o.cols);
    const grid = `a ${o.rows}x${o.cols} grid`;
    const usesTargetBlocks = o.strategy === "multiblock" || o.strategy === "block";
    this.targetSizes = usesTargetBlocks
      ? possibleBlockSizes(o.rows, o.cols, o.targetScale, o.targetAspect)
      : [];
    this.contextSizes = o.strategy === "multiblock"
      ? possibleBlockSizes(o.rows, o.cols, o.contextScale, o.contextAspect)
      : [];

    // Construction-time worst cases: a setting that cannot give every example `minKeep` context
    // patches is refused here, so `sample` never searches for something that does not exist.
    if (usesTargetBlocks) {
      const tMax = this.targetSizes.reduce((a, s) => (areaOf(s) > areaOf(a) ? s : a));
      const tMin = this.targetSizes.reduce((a, s) => (areaOf(s) < areaOf(a) ? s : a));
      if (o.strategy === "multiblock") {
        // The largest context is the largest context block minus at least one (smallest) target.
        const cMax = this.contextSizes.reduce((a, s) => (areaOf(s) > areaOf(a) ? s : a));
        const best = Math.min(areaOf(cMax), n - areaOf(tMin));
        // the tighter of this bound and the fallback's below is the one to name
        if (o.minKeep > best && best <= n - areaOf(tMax)) {
          const why = `context block at most ${fmtSize(cMax)}, targets at least ${fmtSize(tMin)}`;
          throw new RangeError(
            `masks: minKeep ${o.minKeep} exceeds the largest possible context ` +
              `(${best} patches on ${grid}: ${why})`,
          );
        }
      }
      // The fallback's guarantee: with all M blocks stacked, the context is the grid minus one block.
      const left = n - areaOf(tMax);
      if (o.minKeep > left) {
        const why = `a target block can be ${fmtSize(tMax)}, leaving at most ${left} of the ${n} ` +
          `patches of ${grid} for the context`;
        const from = `targetScale [${o.targetScale}], targetAspect [${o.targetAspect}]`;
        throw new RangeError(`masks: minKeep ${o.minKeep} cannot always be met: ${why} (${from})`);
      }
    } else if (o.strategy === "rasterized") {
      if (o.rows < 2 || o.cols < 2) {
        throw new RangeError(
          `masks: rasterized needs a grid of at least 2x2 to form quadrants, got ${o.rows}x${o.cols}`,
        );
      }
      const smallest = Math.floor(o.rows / 2) * Math.floor(o.cols / 2);
      if (o.minKeep > smallest) {
        throw new RangeError(
          `masks: minKeep ${o.minKeep} exceeds the smallest quadrant context (${smallest} patches on ${grid})`,
        );
      }
    } else {
      const k = Math.round(o.maskRatio * n);
      if (k < 1 || n - k < o.minKeep) {
        const got = `masks ${k} of ${n} patches, leaving ${n - k} for the context`;
        const want = `at least 1 target patch and minKeep ${o.minKeep} context patches`;
        throw new RangeError(`masks: maskRatio ${o.maskRatio} on ${grid} ${got}; expected ${want}`);
      }
    }
  }

  /**
   * Draw the masks of one batch. Consumes a deterministic number of draws from `rng` for given
   * options, batch size and outcome, so a run resumed from a saved `rng.state()` continues exactly.
   */
  sample(rng: Rng, batchSize: number): MaskBatch {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`masks: batchSize must be a positive integer, got ${batchSize}`);
    }
    // One fork per batch feeds the truncation subsets, so `truncate` and `pad` draw identical masks.
    const collateRng = rng.fork();
    const fallbackLevel = new Uint8Array(batchSize);
    let examples: MaskSample[];
    let targetBlock: [number, number] | null = null, contextBlock: [number, number] | null = null;
    switch (this.options.strategy) {
      case "multiblock": {
        const o = this.options;
        // Sizes are drawn once per batch, as in the official collator, so all M * B target blocks
        // have the same length and the model can predict all of them in one stacked call.
        targetBlock = this.#drawSize(rng, o.targetScale, o.targetAspect);
        contextBlock = this.#drawSize(rng, o.contextScale, o.contextAspect);
        examples = [];
        for (let b = 0; b < batchSize; b++) {
          examples.push(multiBlockExample(this.#grid, o, rng, targetBlock, contextBlock, fallbackLevel, b));
        }
        break;
      }
      case "block": {
        const o = this.options;
        targetBlock = this.#drawSize(rng, o.targetScale, o.targetAspect);
        examples = [];
        for (let b = 0; b < batchSize; b++) {
          examples.push(singleBlockExample(this.#grid, o, rng, targetBlock));
        }
        break;
      }
      case "rasterized":
        examples = [];
        for (let b = 0; b < batchSize; b++) examples.push(rasterizedExample(this.#grid, this.options, rng));
        break;
      case "random":
        examples = [];
        for (let b = 0; b < batchSize; b++) examples.push(randomExample(this.#grid, this.options, rng));
        break;
    }
    let fallbacks = 0;
    for (const f of fallbackLevel) if (f) fallbacks++;
    return {
      batchSize,
      rows: this.options.rows,
      cols: this.options.cols,
      examples,
      ...collateMasks(examples, this.options, collateRng, this.#grid.buf),
      fallbacks,
      fallbackLevel,
      targetBlock,
      contextBlock,
    };
  }

  // Departure: scale and aspect are two independent draws; the official uses one uniform number
  // for both, which ties large blocks to tall shapes.
  #drawSize(rng: Rng, scale: Range2, aspect: Range2): [number, number] {
    const s = rng.uniform(scale[0], scale[1]);
    const a = rng.uniform(aspect[0], aspect[1]);
    return blockSize(s, a, this.options.rows, this.options.cols);
  }
}

/**
 * Build a masker (checks the options; unknown option keys and impossible settings are errors that
 * name the numbers).
 *
 * @example
 * ```ts
 * import { createMasker } from "./masker.ts";
 * import { Rng } from "../engine/rng.ts";
 * const quadrants = createMasker({ rows: 8, cols: 8, strategy: "rasterized", minKeep: 4 });
 * const b = quadrants.sample(new Rng(0), 2);
 * if (b.nTargets !== 3 || b.contextLen !== 16) throw new Error("one 4x4 quadrant predicts three");
 * let threw = false;
 * try { createMasker({ rows: 7, cols: 7, minKeep: 40 }); } catch { threw = true; }
 * if (!threw) throw new Error("minKeep 40 cannot fit beside the targets on 7x7");
 * ```
 */
export function createMasker(opts: MaskerOptions): MultiBlockMasker {
  return new MultiBlockMasker(opts);
}
