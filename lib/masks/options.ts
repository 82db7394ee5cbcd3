/**
 * The masker's options: their types, the paper's defaults, each ablation strategy's changes, the
 * presets for the grids this toolkit trains on, and the check that fills in defaults and refuses
 * malformed options.
 *
 * @module
 */

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

/**
 * The defaults: the paper's multi-block recipe (section 3 and the official `in1k_vith14_ep300.yaml`).
 * The ablation strategies change a few of them, see {@link STRATEGY_DEFAULTS}.
 *
 * @example
 * ```ts
 * import { MASKER_DEFAULTS } from "./options.ts";
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
 * import { STRATEGY_DEFAULTS } from "./options.ts";
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
 * import { createMasker } from "./masker.ts";
 * import { MASK_PRESETS } from "./options.ts";
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
 * import { createMasker } from "./masker.ts";
 * import { maskPreset } from "./options.ts";
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
 * The mask options a model with a `grid x grid` patch grid trains with by default: its preset where
 * one exists (see {@link maskPreset}), else, on small grids without one (the tiny preset's 4x4, say),
 * the paper's defaults with `minKeep` lowered to a fifth of the grid, so that a context can always be
 * kept. The trainer starts from these and applies the recipe's mask options on top.
 *
 * @example
 * ```ts
 * import { trainingMasks } from "./options.ts";
 * if (trainingMasks(4).minKeep !== 3) throw new Error("4x4: minKeep should be 16 / 5 rounded down");
 * if (trainingMasks(7).rows !== 7) throw new Error("7x7 has a preset");
 * ```
 */
export function trainingMasks(grid: number): Partial<MaskerOptions> {
  try {
    return maskPreset(grid, grid);
  } catch {
    return { minKeep: Math.max(1, Math.floor(grid * grid / 5)) };
  }
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

/**
 * Fill in the defaults (explicit options, then the strategy's, then the paper's) and check every
 * option's type and range; unknown keys are errors. Used by the masker's constructor.
 */
export function resolveOptions(opts: MaskerOptions): ResolvedMaskerOptions {
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
