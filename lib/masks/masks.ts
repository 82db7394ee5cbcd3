/**
 * I-JEPA masking: which patches the context encoder sees, and which ones the predictor must predict.
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
 * import { createMasker } from "./masks.ts";
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

import { Rng } from "../engine/rng.ts";

/** How the patches are split into context and targets (paper, Table 6). */
export type MaskStrategy = "multiblock" | "rasterized" | "block" | "random";

/**
 * How contexts of different lengths become one `[B, Lc]` index matrix:
 * `truncate` cuts every context to the batch's shortest (as the official collator does);
 * `pad` extends every context to the batch's longest, with a validity mask for attention.
 */
export type MaskCollation = "truncate" | "pad";

/** A `[lo, hi]` range; `lo === hi` fixes the value. */
export type Range2 = readonly [number, number];

/** Options of {@link createMasker}. Only `rows` and `cols` are required. */
export interface MaskerOptions {
  /** Patch-grid height (image height / patch size). */
  rows: number;
  /** Patch-grid width. */
  cols: number;
  /** Default `"multiblock"` (the paper's). */
  strategy?: MaskStrategy;
  /** M, the number of target blocks: any M >= 1 for multiblock; fixed 3 rasterized, 1 block/random. */
  nTargets?: number;
  /** Target block area as a fraction of the grid (multiblock and block). */
  targetScale?: Range2;
  /** Target block height / width (multiblock and block). */
  targetAspect?: Range2;
  /** Context block area as a fraction of the grid, before the targets are removed (multiblock). */
  contextScale?: Range2;
  /** Context block height / width (multiblock). */
  contextAspect?: Range2;
  /** The fewest patches a context may keep after the targets are removed. */
  minKeep?: number;
  /** Context collation, see {@link MaskCollation}. */
  collate?: MaskCollation;
  /** `random` only: the fraction of patches that become the target. */
  maskRatio?: number;
  /** Multiblock: fresh draws (targets and context) per example before the fallback is used. */
  maxTries?: number;
}

/** All options, defaults filled in. */
export type ResolvedMaskerOptions = Readonly<Required<MaskerOptions>>;

/** One example's masks: sorted, duplicate-free patch indices (`row * cols + col`). */
export interface MaskSample {
  /** The patches the context encoder sees (never a target patch). */
  context: Int32Array;
  /** M target blocks, each the sorted indices of one rectangle (or one quadrant / random set). */
  targets: Int32Array[];
}

/** A batch of masks, per example and collated for the model. */
export interface MaskBatch {
  batchSize: number;
  rows: number;
  cols: number;
  /** The uncollated masks, one per example. */
  examples: MaskSample[];
  /** Lc, the context length after collation. */
  contextLen: number;
  /** [B * Lc] row-major; `pad` fills the padded slots with the example's first context index. */
  contextIdx: Int32Array;
  /** [B * Lc], 1 for a real patch and 0 for padding (`pad`); null for `truncate`. */
  contextValid: Uint8Array | null;
  /** M. */
  nTargets: number;
  /** Lt, one length for every target block of every example (the batch's shortest). */
  targetLen: number;
  /** [M * B * Lt] block-major: block m of example b starts at `(m * B + b) * Lt`. */
  targetIdx: Int32Array;
  /** How many examples of this batch needed the fallback (multiblock only; else 0). */
  fallbacks: number;
  /** [B] 0 = normal draw; 1 = context widened to the whole grid; 2 = target blocks stacked too. */
  fallbackLevel: Uint8Array;
  /** The batch's target block size [h, w] (multiblock, block); null otherwise. */
  targetBlock: readonly [number, number] | null;
  /** The batch's context block size [h, w] before fallbacks (multiblock); null otherwise. */
  contextBlock: readonly [number, number] | null;
}

/**
 * The defaults: the paper's multi-block recipe (section 3 and the official `in1k_vith14_ep300.yaml`).
 * The ablation strategies change a few of them, see {@link STRATEGY_DEFAULTS}.
 *
 * @example
 * ```ts
 * import { MASKER_DEFAULTS } from "./masks.ts";
 * if (MASKER_DEFAULTS.nTargets !== 4) throw new Error("the paper predicts 4 target blocks");
 * ```
 */
export const MASKER_DEFAULTS: Readonly<Omit<ResolvedMaskerOptions, "rows" | "cols">> = {
  strategy: "multiblock",
  // 4 blocks: in the paper's ablation 4 targets reach 54.2% against 9.0% for 1 (1% ImageNet probe).
  nTargets: 4,
  // Large enough to be semantic, small enough that 4 of them leave a context.
  targetScale: [0.15, 0.2],
  targetAspect: [0.75, 1.5],
  // A big, spatially spread context; scale 1.0 means the whole image.
  contextScale: [0.85, 1.0],
  contextAspect: [1, 1],
  // The official configs use min_keep 10 (224px / 16 = 14x14 patches).
  minKeep: 10,
  // The official truncates; `pad` keeps every context patch at the cost of padding.
  collate: "truncate",
  // Table 6 "random": targets Random(0.6), context the complement (avg ratio 0.4).
  maskRatio: 0.6,
  // The official also retries 20 times before its (overlapping) fallback.
  maxTries: 20,
};

/**
 * What each ablation strategy changes in {@link MASKER_DEFAULTS} when the caller does not set it
 * (paper, Table 6: rasterized = 3 target quadrants, block = one Block(0.6) target, random = 60%).
 *
 * @example
 * ```ts
 * import { STRATEGY_DEFAULTS } from "./masks.ts";
 * if (STRATEGY_DEFAULTS.rasterized.nTargets !== 3) throw new Error("three target quadrants");
 * ```
 */
export const STRATEGY_DEFAULTS: Readonly<Record<MaskStrategy, Partial<MaskerOptions>>> = {
  multiblock: {},
  rasterized: { nTargets: 3 },
  // Table 6 gives the block target as Block(0.6); its aspect ratio is not stated, we keep (0.75, 1.5).
  block: { nTargets: 1, targetScale: [0.6, 0.6] },
  random: { nTargets: 1 },
};

/** A preset: options for one grid size, with the reason for each field. */
export interface MaskPreset {
  /** Every option except the grid size. */
  options: Omit<ResolvedMaskerOptions, "rows" | "cols">;
  /** Why each non-default value was chosen. */
  why: Readonly<Record<string, string>>;
  /** What the preset gives, measured with `deno task masks` (batch 64, 2000 batches, seed 0). */
  measured: string;
}

/**
 * Presets for the grids this toolkit trains on (28px or 32px images with 4px patches: 7x7, 8x8;
 * 224px with patch 16 or 14: 14x14, 16x16). The official defaults do not transfer to tiny grids:
 * `min_keep = 10` never terminates on 7x7 and 8x8, and the (H-1)x(W-1) cap shrinks a 7x7 context to
 * 30% of the image. With those faults fixed the paper's scales carry over (the context is 46-49% of
 * the grid at every size); the small presets set `minKeep` to about 20% of the grid.
 *
 * @example
 * ```ts
 * import { createMasker, MASK_PRESETS } from "./masks.ts";
 * const masker = createMasker({ rows: 7, cols: 7, ...MASK_PRESETS["7x7"].options });
 * if (masker.options.minKeep !== MASK_PRESETS["7x7"].options.minKeep) throw new Error("preset lost");
 * ```
 */
export const MASK_PRESETS: Readonly<Record<"7x7" | "8x8" | "14x14" | "16x16", MaskPreset>> = {
  "7x7": {
    options: { ...MASKER_DEFAULTS, minKeep: 10 },
    why: {
      scales: "the paper's: once blocks may reach the last row and column, the ratios carry over (context " +
        "49% of the grid here, 46% on 14x14); the official cap made the context 6x6 at most, 30%",
      minKeep: "10, about 20% of the grid: the official collated contexts average 27% of a 14x14 image " +
        "(paper, Table 6: 0.25), so a smaller one is an outlier; it rejects under 1% of first draws " +
        "and never reaches the fallback " +
        "(the official loops forever with min_keep 10 here, because it also demands it of targets)",
      collate:
        "truncate, as the paper; pad keeps the third of context patches truncation drops, at ~2x the " +
        "context length",
    },
    measured: "context 23.9 +- 5.2 patches (49%), targets 8.7 +- 1.6, Lc truncate 16.2, pad 33.0, " +
      "fallback 0%; the official collator (min_keep 4) gives context 14.5 (30%), Lc 7.4",
  },
  "8x8": {
    options: { ...MASKER_DEFAULTS, minKeep: 12 },
    why: {
      scales: "the paper's (targets 3x3 to 4x4 patches, context block 7x7 or 8x8)",
      minKeep:
        "12, about 20% of the grid (see 7x7); the official min_keep 10 loops forever on 8x8; rejects " +
        "0.3% of first draws, no fallback",
      collate: "truncate, as the paper",
    },
    measured: "context 30.5 +- 6.8 patches (48%), targets 11.2 +- 1.4, Lc truncate 20.6, pad 42.1, " +
      "fallback 0%; the official collator (min_keep 4) gives context 21.6 (34%), Lc 12.3",
  },
  "14x14": {
    options: { ...MASKER_DEFAULTS },
    why: { all: "the paper's defaults (ViT-B/16 at 224px is a 14x14 grid)" },
    measured: "context 89.7 +- 18.3 patches (46%), targets 34.3 +- 3.6, Lc truncate 60.5 (31%), " +
      "pad 122.2, fallback 0%; the official collator gives 81.7 (42%) and 52.4 (27%, the paper's " +
      "Table 6 ratio 0.25)",
  },
  "16x16": {
    options: { ...MASKER_DEFAULTS },
    why: { all: "the paper's defaults (ViT-H/14 at 224px is a 16x16 grid)" },
    measured: "context 117.7 +- 22.8 patches (46%), targets 45.0 +- 4.5, Lc truncate 79.6 (31%), " +
      "pad 159.8, fallback 0%; the official collator gives 109.8 (43%) and 72.0 (28%)",
  },
};

/**
 * The options of the preset for a `rows x cols` grid, ready for {@link createMasker}. Grids of 14x14
 * and larger without their own preset get the paper's defaults; smaller ones have no preset.
 *
 * @example
 * ```ts
 * import { createMasker, maskPreset } from "./masks.ts";
 * const masker = createMasker(maskPreset(8, 8));
 * if (masker.options.rows !== 8) throw new Error("wrong grid");
 * ```
 */
export function maskPreset(rows: number, cols: number): MaskerOptions {
  const key = `${rows}x${cols}`;
  if (key in MASK_PRESETS) {
    return { rows, cols, ...MASK_PRESETS[key as keyof typeof MASK_PRESETS].options };
  }
  if (rows >= 14 && cols >= 14) return { rows, cols, ...MASKER_DEFAULTS };
  throw new RangeError(
    `masks: no preset for a ${key} grid; presets exist for ${
      Object.keys(MASK_PRESETS).join(", ")
    } and the paper defaults serve grids of 14x14 and up; pass the options yourself`,
  );
}

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
 * import { blockSize } from "./masks.ts";
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
 * import { possibleBlockSizes } from "./masks.ts";
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

// ---------------------------------------------------------------------------------------------
// Option checking
// ---------------------------------------------------------------------------------------------

const OPTION_KEYS = ["rows", "cols", ...Object.keys(MASKER_DEFAULTS)];

function checkInt(name: string, v: unknown, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw new RangeError(`masks: ${name} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

function checkRange(name: string, v: unknown, maxOne: boolean): Range2 {
  const ok = Array.isArray(v) && v.length === 2 &&
    v.every((x) => typeof x === "number" && isFinite(x));
  const want = maxOne ? "0 < lo <= hi <= 1" : "0 < lo <= hi";
  if (!ok) {
    throw new RangeError(`masks: ${name} must be [lo, hi] with ${want}, got ${JSON.stringify(v)}`);
  }
  const [lo, hi] = v as [number, number];
  if (!(lo > 0) || !(lo <= hi) || (maxOne && hi > 1)) {
    throw new RangeError(`masks: ${name} must be [lo, hi] with ${want}, got [${lo}, ${hi}]`);
  }
  return Object.freeze([lo, hi] as const);
}

function resolveOptions(opts: MaskerOptions): ResolvedMaskerOptions {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(
      `masks: expected an options object with rows and cols, got ${String(opts)}`,
    );
  }
  for (const k of Object.keys(opts)) {
    if (!OPTION_KEYS.includes(k)) {
      throw new TypeError(
        `masks: unknown option "${k}"; expected one of ${OPTION_KEYS.join(", ")}`,
      );
    }
  }
  const strategy = opts.strategy ?? MASKER_DEFAULTS.strategy;
  if (!Object.hasOwn(STRATEGY_DEFAULTS, strategy)) {
    throw new RangeError(
      `masks: strategy must be one of ${Object.keys(STRATEGY_DEFAULTS).join(", ")}, got "${strategy}"`,
    );
  }
  // Explicit options win over the strategy's defaults, which win over the paper's.
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o = { ...MASKER_DEFAULTS, ...STRATEGY_DEFAULTS[strategy], ...defined } as Required<
    MaskerOptions
  >;
  const rows = checkInt("rows", o.rows, 1), cols = checkInt("cols", o.cols, 1);
  if (rows * cols < 2) {
    throw new RangeError(`masks: the grid needs at least 2 patches, got ${rows}x${cols}`);
  }
  const nTargets = checkInt("nTargets", o.nTargets, 1);
  const fixedM = strategy === "rasterized" ? 3 : strategy === "multiblock" ? 0 : 1;
  if (fixedM && nTargets !== fixedM) {
    throw new RangeError(
      `masks: strategy "${strategy}" has ${fixedM} target block(s), got nTargets ${nTargets}`,
    );
  }
  if (o.collate !== "truncate" && o.collate !== "pad") {
    throw new RangeError(`masks: collate must be "truncate" or "pad", got "${o.collate}"`);
  }
  if (typeof o.maskRatio !== "number" || !(o.maskRatio > 0 && o.maskRatio < 1)) {
    throw new RangeError(`masks: maskRatio must be in (0, 1), got ${o.maskRatio}`);
  }
  return Object.freeze({
    rows,
    cols,
    strategy,
    nTargets,
    targetScale: checkRange("targetScale", o.targetScale, true),
    targetAspect: checkRange("targetAspect", o.targetAspect, false),
    contextScale: checkRange("contextScale", o.contextScale, true),
    contextAspect: checkRange("contextAspect", o.contextAspect, false),
    minKeep: checkInt("minKeep", o.minKeep, 1),
    collate: o.collate,
    maskRatio: o.maskRatio,
    maxTries: checkInt("maxTries", o.maxTries, 1),
  });
}

const areaOf = (s: readonly [number, number]) => s[0] * s[1];
const fmtSize = (s: readonly [number, number]) => `${s[0]}x${s[1]} = ${s[0] * s[1]} patches`;

// ---------------------------------------------------------------------------------------------
// The masker
// ---------------------------------------------------------------------------------------------

/**
 * The masker: checks its options once, then draws batches of masks from a seeded {@link Rng}.
 * Build it with {@link createMasker}. The same options and the same RNG state always give the same
 * batch, on every machine (integer arithmetic on the RNG's 32-bit draws; no platform maths except
 * `sqrt`, which IEEE 754 fixes exactly).
 *
 * @example
 * ```ts
 * import { MultiBlockMasker } from "./masks.ts";
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

  // Scratch buffers reused by every draw: `#mark[i] === #gen` means patch i is taken in the current
  // draw, so starting a new draw is one increment instead of clearing the grid.
  #mark: Uint32Array;
  #gen = 0;
  #buf: Int32Array;
  #perm: Int32Array;

  constructor(opts: MaskerOptions) {
    const o = resolveOptions(opts);
    this.options = o;
    const n = o.rows * o.cols;
    this.#mark = new Uint32Array(n);
    this.#buf = new Int32Array(n);
    this.#perm = new Int32Array(n);
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
        if (o.minKeep > best) {
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
          examples.push(this.#multiBlock(rng, targetBlock, contextBlock, fallbackLevel, b));
        }
        break;
      }
      case "block": {
        const o = this.options;
        targetBlock = this.#drawSize(rng, o.targetScale, o.targetAspect);
        examples = [];
        for (let b = 0; b < batchSize; b++) examples.push(this.#singleBlock(rng, targetBlock));
        break;
      }
      case "rasterized":
        examples = [];
        for (let b = 0; b < batchSize; b++) examples.push(this.#rasterized(rng));
        break;
      case "random":
        examples = [];
        for (let b = 0; b < batchSize; b++) examples.push(this.#random(rng));
        break;
    }
    let fallbacks = 0;
    for (const f of fallbackLevel) if (f) fallbacks++;
    return {
      batchSize,
      rows: this.options.rows,
      cols: this.options.cols,
      examples,
      ...this.#collate(examples, collateRng),
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

  #nextGen(): number {
    if (this.#gen === 0xffffffff) {
      this.#mark.fill(0);
      this.#gen = 0;
    }
    return ++this.#gen;
  }

  /** Mark a rectangle with `gen`; returns how many patches were not marked before. */
  #markRect(gen: number, top: number, left: number, h: number, w: number): number {
    const cols = this.options.cols, mark = this.#mark;
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
  #collectFree(gen: number, top: number, left: number, h: number, w: number): Int32Array {
    const cols = this.options.cols, mark = this.#mark, buf = this.#buf;
    let k = 0;
    for (let r = top; r < top + h; r++) {
      for (let i = r * cols + left, end = i + w; i < end; i++) if (mark[i] !== gen) buf[k++] = i;
    }
    return buf.slice(0, k);
  }

  #countFree(gen: number, top: number, left: number, h: number, w: number): number {
    const cols = this.options.cols, mark = this.#mark;
    let k = 0;
    for (let r = top; r < top + h; r++) {
      for (let i = r * cols + left, end = i + w; i < end; i++) if (mark[i] !== gen) k++;
    }
    return k;
  }

  #rect(top: number, left: number, h: number, w: number): Int32Array {
    const cols = this.options.cols, out = new Int32Array(h * w);
    let k = 0;
    for (let r = top; r < top + h; r++) {
      for (let c = left; c < left + w; c++) out[k++] = r * cols + c;
    }
    return out;
  }

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
  #multiBlock(
    rng: Rng,
    [th, tw]: readonly [number, number],
    [ch, cw]: readonly [number, number],
    fallbackLevel: Uint8Array,
    b: number,
  ): MaskSample {
    const { rows: H, cols: W, nTargets: M, minKeep, maxTries } = this.options;
    const tops = new Int32Array(M), lefts = new Int32Array(M);
    const bestTops = new Int32Array(M), bestLefts = new Int32Array(M);
    let bestCovered = Infinity;
    let context: Int32Array | null = null;
    for (let t = 0; t < maxTries && context === null; t++) {
      const gen = this.#nextGen();
      let covered = 0;
      for (let m = 0; m < M; m++) {
        // Departure: the upper bound is inclusive (H - th + 1), so blocks reach the last row/column.
        tops[m] = rng.int(0, H - th + 1);
        lefts[m] = rng.int(0, W - tw + 1);
        covered += this.#markRect(gen, tops[m], lefts[m], th, tw);
      }
      const cTop = rng.int(0, H - ch + 1), cLeft = rng.int(0, W - cw + 1);
      if (this.#countFree(gen, cTop, cLeft, ch, cw) >= minKeep) {
        context = this.#collectFree(gen, cTop, cLeft, ch, cw);
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
      const gen = this.#nextGen();
      for (let m = 0; m < M; m++) this.#markRect(gen, tops[m], lefts[m], th, tw);
      context = this.#collectFree(gen, 0, 0, H, W);
    }
    const targets: Int32Array[] = [];
    for (let m = 0; m < M; m++) targets.push(this.#rect(tops[m], lefts[m], th, tw));
    return { context, targets };
  }

  /** Table 6 "block": one target block per example; the context is everything else. */
  #singleBlock(rng: Rng, [th, tw]: readonly [number, number]): MaskSample {
    const { rows: H, cols: W } = this.options;
    const top = rng.int(0, H - th + 1), left = rng.int(0, W - tw + 1);
    const gen = this.#nextGen();
    this.#markRect(gen, top, left, th, tw);
    return {
      context: this.#collectFree(gen, 0, 0, H, W),
      targets: [this.#rect(top, left, th, tw)],
    };
  }

  /**
   * Table 6 "rasterized": the grid is cut into four quadrants; a random one is the context, the
   * other three (in raster order) the targets. On an odd side the cut falls on either side of the
   * middle row (column), by a coin flip per example, so no quadrant is always the small one.
   */
  #rasterized(rng: Rng): MaskSample {
    const { rows: H, cols: W } = this.options;
    const r0 = (H >> 1) + (H % 2 === 1 ? rng.int(0, 2) : 0);
    const c0 = (W >> 1) + (W % 2 === 1 ? rng.int(0, 2) : 0);
    const quads = [
      this.#rect(0, 0, r0, c0),
      this.#rect(0, c0, r0, W - c0),
      this.#rect(r0, 0, H - r0, c0),
      this.#rect(r0, c0, H - r0, W - c0),
    ];
    const q = rng.int(0, 4);
    return { context: quads[q], targets: quads.filter((_, i) => i !== q) };
  }

  /** Table 6 "random": round(maskRatio * N) random patches are the target; the rest the context. */
  #random(rng: Rng): MaskSample {
    const n = this.options.rows * this.options.cols;
    const k = Math.round(this.options.maskRatio * n);
    const perm = this.#perm;
    for (let i = 0; i < n; i++) perm[i] = i; // reset, so a draw never depends on earlier batches
    const gen = this.#nextGen();
    for (let i = 0; i < k; i++) {
      // Partial Fisher-Yates: perm[0..k) becomes a uniform random k-subset.
      const j = rng.int(i, n);
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
      this.#mark[perm[i]] = gen;
    }
    const target = new Int32Array(k), context = new Int32Array(n - k);
    for (let i = 0, a = 0, c = 0; i < n; i++) {
      if (this.#mark[i] === gen) target[a++] = i;
      else context[c++] = i;
    }
    return { context, targets: [target] };
  }

  /** Write a sorted uniform random `k`-subset of `src` into `out` at `offset`. */
  #subset(src: Int32Array, k: number, rng: Rng, out: Int32Array, offset: number): void {
    const buf = this.#buf;
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
   */
  #collate(examples: MaskSample[], rng: Rng) {
    const B = examples.length, M = this.options.nTargets, pad = this.options.collate === "pad";
    let Lc = pad ? 0 : Infinity;
    for (const e of examples) {
      Lc = pad ? Math.max(Lc, e.context.length) : Math.min(Lc, e.context.length);
    }
    const contextIdx = new Int32Array(B * Lc); // [B, Lc]
    const contextValid = pad ? new Uint8Array(B * Lc) : null; // [B, Lc]
    for (let b = 0; b < B; b++) {
      const ctx = examples[b].context, off = b * Lc;
      if (ctx.length === Lc) contextIdx.set(ctx, off);
      else if (!pad) this.#subset(ctx, Lc, rng, contextIdx, off);
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
        else this.#subset(t, Lt, rng, targetIdx, off);
      }
    }
    return { contextLen: Lc, contextIdx, contextValid, nTargets: M, targetLen: Lt, targetIdx };
  }
}

/**
 * Build a masker (checks the options; unknown option keys and impossible settings are errors that
 * name the numbers).
 *
 * @example
 * ```ts
 * import { createMasker } from "./masks.ts";
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

/** What {@link benchMasker} measured. */
export interface MaskerBench {
  batches: number;
  seconds: number;
  /** Examples (one context + M targets each) per second. */
  masksPerSecond: number;
  msPerBatch: number;
}

/**
 * Time `masker.sample` at `batchSize` for about `seconds` (after a short warm-up).
 *
 * @example
 * ```ts
 * import { benchMasker, createMasker } from "./masks.ts";
 * const r = benchMasker(createMasker({ rows: 14, cols: 14 }), 64, 0.05);
 * if (!(r.masksPerSecond > 0)) throw new Error("no speed measured");
 * ```
 */
export function benchMasker(
  masker: MultiBlockMasker,
  batchSize: number,
  seconds = 1,
  seed = 0,
): MaskerBench {
  const rng = new Rng(seed);
  const warm = performance.now();
  while (performance.now() - warm < Math.min(200, seconds * 200)) masker.sample(rng, batchSize);
  let batches = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    masker.sample(rng, batchSize);
    batches++;
    t = performance.now();
  } while (t - t0 < seconds * 1000);
  const s = (t - t0) / 1000;
  return {
    batches,
    seconds: s,
    masksPerSecond: (batches * batchSize) / s,
    msPerBatch: (1000 * s) / batches,
  };
}
