/**
 * Model configurations: the typed shape of an I-JEPA model, and the named presets.
 *
 * Presets are plain objects with a reason per field. `tiny` is for tests (seconds), `quick` for the
 * README's main job and notebook 01 (minutes on 2 CPU cores), and the official family keeps the
 * official code's names and patch sizes (`vit_small16` is the official 384-wide ViT-S, so our
 * 192-wide preset is called `quick`, not "small").
 *
 * @example
 * ```ts
 * import { modelConfig } from "./config.ts";
 * const cfg = modelConfig("tiny", { depth: 3 });
 * if (cfg.depth !== 3 || cfg.gridSize !== 4) throw new Error("unexpected config");
 * ```
 * @module
 */

/** What the predictor predicts: target-encoder representations (I-JEPA) or pixels (the ablation). */
export type TargetMode = "representation" | "pixel";
/** The distance between predictions and targets. */
export type LossKind = "smooth_l1" | "l2";

/** The shape of an I-JEPA model. Every field is required once resolved by {@link modelConfig}. */
export interface ModelConfig {
  /** Square image side in pixels. */
  imageSize: number;
  /** Square patch side in pixels; must divide imageSize. */
  patchSize: number;
  /** Image channels (1 for Fashion-MNIST, 3 for RGB). */
  channels: number;
  /** Encoder token width D. */
  width: number;
  /** Encoder transformer blocks. */
  depth: number;
  /** Attention heads in the encoder; must divide width. */
  heads: number;
  /** Hidden width of each MLP (4 x width in most ViTs; ViT-g uses 48/11). */
  mlpHidden: number;
  /** Predictor token width (narrower than the encoder, as in the official code). */
  predictorWidth: number;
  /** Predictor transformer blocks. */
  predictorDepth: number;
  /** Predictor attention heads (the official code reuses the encoder's head count). */
  predictorHeads: number;
  /** LayerNorm epsilon inside the networks (official: 1e-6). Targets use 1e-5 (F.layer_norm's default). */
  layerNormEps: number;
  /** What the predictor regresses. */
  targetMode: TargetMode;
  /** Loss: smooth-L1 as the official code, or L2 (mean squared error) as the paper writes. */
  loss: LossKind;
  /**
   * Collapse insurance, off at 0: weight of a VICReg variance hinge on the context encoder's
   * output tokens (each feature's std over the batch's tokens pushed up to 1), as C-JEPA adds.
   */
  varianceWeight: number;
  /** Weight of VICReg's covariance term (off-diagonal covariance of those tokens), off at 0. */
  covarianceWeight: number;
  /**
   * Weight of SIGReg (LeJEPA's collapse term, lib/model/sigreg.ts) on the samples `sigregOn` picks,
   * off at 0: an alternative to the VICReg terms, for issue 20's ablations. Added to the prediction
   * loss (LeJEPA mixes the two as lambda SIGReg + (1 - lambda) prediction, lambda 0.02-0.05: the same
   * balance up to a factor near 1). The statistic grows with the sample count, so a weight is about
   * 17x stronger with `sigregOn: "tokens"` (1088 context tokens a quick batch) than with "images" (64).
   */
  sigregWeight: number;
  /** What SIGReg regularises: one embedding per image (its mean context token) or every token. */
  sigregOn: SigregOn;
  /**
   * How the target encoder's features are normalised into targets: "layernorm" (the official
   * F.layer_norm) or "dyntanh", tanh(0.5 x) elementwise (issue 20's lever, from arXiv 2508.02829,
   * which replaces the target LayerNorm with a DynTanh to keep the tokens' norms; lib/model/ijepa.ts).
   */
  targetNorm: TargetNorm;
}

/** The target normalisations {@link ModelConfig.targetNorm} offers. */
export type TargetNorm = "layernorm" | "dyntanh";

/** The samples SIGReg sees: each image's mean context token, or each context token. */
export type SigregOn = "images" | "tokens";

/** A resolved config plus derived numbers. */
export interface ResolvedConfig extends ModelConfig {
  /** Patches per side: imageSize / patchSize. */
  gridSize: number;
  /** Patches per image: gridSize^2. */
  numPatches: number;
  /** Values per patch: patchSize^2 * channels. */
  patchDim: number;
}

/** Each field's preset value with the reason it was chosen. */
export type Preset = { [K in keyof ModelConfig]: readonly [ModelConfig[K], string] };

const COMMON: Pick<
  Preset,
  | "layerNormEps"
  | "targetMode"
  | "loss"
  | "varianceWeight"
  | "covarianceWeight"
  | "sigregWeight"
  | "sigregOn"
  | "targetNorm"
> = {
  layerNormEps: [1e-6, "the official code's LayerNorm eps; the checkpoint fixture shows a wrong eps at 5e-5"],
  targetMode: ["representation", "I-JEPA predicts target-encoder features; 'pixel' is the Table 7 ablation"],
  loss: ["smooth_l1", "as the official code (the paper writes L2); steadier at small scale (field notes)"],
  varianceWeight: [0, "off: the official I-JEPA has no collapse term"],
  covarianceWeight: [0, "off: the official I-JEPA has no collapse term"],
  sigregWeight: [0, "off: the official I-JEPA has no collapse term"],
  targetNorm: ["layernorm", "the official target normalisation (F.layer_norm, no affine)"],
  sigregOn: ["images", "one embedding per image, as LeJEPA's one per view; cheap (lib/model/sigreg.ts)"],
};

function official(
  imageSize: number,
  patchSize: number,
  width: number,
  depth: number,
  heads: number,
  mlpHidden: number,
  why: string,
): Preset {
  return {
    imageSize: [imageSize, "the official training resolution for this model"],
    patchSize: [patchSize, why],
    channels: [3, "RGB (ImageNet)"],
    width: [width, why],
    depth: [depth, why],
    heads: [heads, why],
    mlpHidden: [mlpHidden, "official MLP ratio for this size"],
    predictorWidth: [384, "official pred_emb_dim"],
    predictorDepth: [12, "official pred_depth (paper ablation: depth 12 beats 6)"],
    predictorHeads: [heads, "the official code passes the encoder's head count to the predictor"],
    ...COMMON,
  };
}

/** The named presets, each field with the reason it has its value. */
export const PRESETS: Record<string, Preset> = {
  tiny: {
    imageSize: [16, "small enough for a test to run a train step in well under a second"],
    patchSize: [4, "a 4x4 grid: the smallest on which multi-block masks still have room"],
    channels: [1, "grey images, like the shipped Fashion-MNIST (resized)"],
    width: [32, "tests only need every code path, not capacity"],
    depth: [2, "two blocks exercise the block loop and per-layer init scaling"],
    heads: [2, "more than one head exercises the head split"],
    mlpHidden: [64, "MLP ratio 2 keeps tests fast"],
    predictorWidth: [16, "narrower than the encoder, as in I-JEPA"],
    predictorDepth: [1, "one block is enough for tests"],
    predictorHeads: [2, "the encoder's head count"],
    ...COMMON,
  },
  quick: {
    imageSize: [28, "Fashion-MNIST's native size: no resampling of the shipped data"],
    patchSize: [4, "a 7x7 grid: 49 tokens keep a CPU step fast (the bench's reference shape)"],
    channels: [1, "grey Fashion-MNIST"],
    width: [192, "ViT-Tiny width: the official code's reference run on 2 cores used it"],
    depth: [6, "half of ViT-Tiny's depth: fits a few CPU minutes"],
    heads: [3, "ViT-Tiny's head count (64 channels per head)"],
    mlpHidden: [768, "MLP ratio 4, as ViT"],
    predictorWidth: [96, "half the encoder width, as the official predictor is narrower"],
    predictorDepth: [4, "a shallower predictor trains faster on small data"],
    predictorHeads: [3, "the encoder's head count (32 channels per head)"],
    ...COMMON,
    // Departure from the official recipe: at this scale it collapses (loss 0.0003, probe = random init).
    varianceWeight: [
      1,
      "collapse insurance that earned its place: 1% probe 50.9 vs 41.2 without it, random init 40.9 (150 steps, " +
      "shipped subset); full set, 720 steps: 69.8-70.5 vs random init 62.3 (README 'Recipe')",
    ],
    covarianceWeight: [
      0.04,
      "VICReg's covariance term with the variance one (C-JEPA's pairing), weight 1/25 of it",
    ],
  },
  vit_tiny16: official(224, 16, 192, 12, 3, 768, "official vit_tiny"),
  vit_small16: official(224, 16, 384, 12, 6, 1536, "official vit_small"),
  vit_base16: official(224, 16, 768, 12, 12, 3072, "official vit_base"),
  vit_large16: official(224, 16, 1024, 24, 16, 4096, "official vit_large"),
  vit_huge14: official(224, 14, 1280, 32, 16, 5120, "official vit_huge, patch 14 (the released IN-1k model)"),
  vit_huge16: official(448, 16, 1280, 32, 16, 5120, "official vit_huge, patch 16 (released at 448px)"),
  vit_giant16: official(224, 16, 1408, 40, 16, 6144, "official vit_giant, MLP ratio 48/11"),
};

/** The preset names, for help texts. */
export const PRESET_NAMES: string[] = Object.keys(PRESETS);

/** A preset's reason for each field, for documentation and `--help`. */
export function presetReasons(name: string): Record<string, string> {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset "${name}": expected one of ${PRESET_NAMES.join(", ")}`);
  return Object.fromEntries(Object.entries(p).map(([k, [, why]]) => [k, why]));
}

const KEYS = Object.keys(PRESETS.tiny) as (keyof ModelConfig)[];

/**
 * Resolve a config: a preset name (or a full config object) with overrides. Unknown keys and
 * inconsistent shapes are errors naming the numbers.
 */
export function modelConfig(
  base: string | ModelConfig,
  overrides: Partial<ModelConfig> = {},
): ResolvedConfig {
  let cfg: ModelConfig;
  if (typeof base === "string") {
    const p = PRESETS[base];
    if (!p) throw new Error(`unknown preset "${base}": expected one of ${PRESET_NAMES.join(", ")}`);
    cfg = Object.fromEntries(Object.entries(p).map(([k, [v]]) => [k, v])) as unknown as ModelConfig;
  } else {
    checkKeys(base, "config");
    cfg = { ...base };
  }
  checkKeys(overrides, "overrides");
  // fields added after the first weights files: absent means off
  const added: Partial<ModelConfig> = {
    varianceWeight: 0,
    covarianceWeight: 0,
    sigregWeight: 0,
    sigregOn: "images",
    targetNorm: "layernorm",
  };
  cfg = { ...added, ...cfg, ...overrides } as ModelConfig;
  for (const k of KEYS) {
    if (cfg[k] === undefined) throw new Error(`model config: missing field "${k}"`);
  }
  const ints: (keyof ModelConfig)[] = [
    "imageSize",
    "patchSize",
    "channels",
    "width",
    "depth",
    "heads",
    "mlpHidden",
    "predictorWidth",
    "predictorDepth",
    "predictorHeads",
  ];
  for (const k of ints) {
    const v = cfg[k] as number;
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`model config: ${k} must be a positive integer, got ${v}`);
    }
  }
  if (cfg.imageSize % cfg.patchSize !== 0) {
    throw new Error(
      `model config: patch size ${cfg.patchSize} does not divide the image size ${cfg.imageSize}`,
    );
  }
  if (cfg.width % cfg.heads !== 0) {
    throw new Error(`model config: ${cfg.heads} heads do not divide the width ${cfg.width}`);
  }
  if (cfg.predictorWidth % cfg.predictorHeads !== 0) {
    throw new Error(
      `model config: ${cfg.predictorHeads} predictor heads do not divide the predictor width ${cfg.predictorWidth}`,
    );
  }
  for (const k of ["width", "predictorWidth"] as const) {
    if (cfg[k] % 4 !== 0) {
      throw new Error(`model config: ${k} ${cfg[k]} must be divisible by 4 (2-D sin-cos)`);
    }
  }
  if (!(cfg.layerNormEps > 0)) {
    throw new Error(`model config: layerNormEps must be > 0, got ${cfg.layerNormEps}`);
  }
  if (cfg.targetMode !== "representation" && cfg.targetMode !== "pixel") {
    throw new Error(`model config: targetMode must be "representation" or "pixel", got "${cfg.targetMode}"`);
  }
  if (cfg.sigregOn !== "images" && cfg.sigregOn !== "tokens") {
    throw new Error(`model config: sigregOn must be "images" or "tokens", got "${cfg.sigregOn}"`);
  }
  if (cfg.targetNorm !== "layernorm" && cfg.targetNorm !== "dyntanh") {
    throw new Error(`model config: targetNorm must be "layernorm" or "dyntanh", got "${cfg.targetNorm}"`);
  }
  if (cfg.loss !== "smooth_l1" && cfg.loss !== "l2") {
    throw new Error(`model config: loss must be "smooth_l1" or "l2", got "${cfg.loss}"`);
  }
  for (const k of ["varianceWeight", "covarianceWeight", "sigregWeight"] as const) {
    if (!(typeof cfg[k] === "number" && cfg[k] >= 0 && Number.isFinite(cfg[k]))) {
      throw new Error(`model config: ${k} must be a finite number >= 0 (0 is off), got ${cfg[k]}`);
    }
  }
  const gridSize = cfg.imageSize / cfg.patchSize;
  return {
    ...cfg,
    gridSize,
    numPatches: gridSize * gridSize,
    patchDim: cfg.patchSize * cfg.patchSize * cfg.channels,
  };
}

function checkKeys(o: object, where: string): void {
  const derived = ["gridSize", "numPatches", "patchDim"];
  for (const k of Object.keys(o)) {
    if (!(KEYS as string[]).includes(k) && !derived.includes(k)) {
      throw new Error(`model ${where}: unknown option "${k}"; expected one of ${KEYS.join(", ")}`);
    }
  }
}

/** Only the ModelConfig fields of a resolved config (what goes into a weights file). */
export function plainConfig(cfg: ModelConfig): ModelConfig {
  return Object.fromEntries(KEYS.map((k) => [k, cfg[k]])) as unknown as ModelConfig;
}

/**
 * The preset whose config equals `cfg` in every field, or undefined (a custom shape, or a preset with
 * overrides). Lets a resumed run, whose checkpoint holds the config but not the name, name its preset.
 */
export function presetOf(cfg: ModelConfig): string | undefined {
  const want = JSON.stringify(plainConfig(modelConfig(cfg)));
  return PRESET_NAMES.find((n) => JSON.stringify(plainConfig(modelConfig(n))) === want);
}
