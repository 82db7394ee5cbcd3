/**
 * Training: the EMA trainer with checkpoints and resume, AdamW, the schedules and the recipes.
 *
 * @module
 */
export { AdamW, type AdamWOptions, decays, type StepParams } from "./adamw.ts";
export { emaMomentum, learningRate, type LrSchedule, weightDecay } from "./schedules.ts";
export {
  EMATrainer,
  type FitResult,
  type StepInfo,
  TRAINER_DEFAULTS,
  type TrainerOptions,
  TrainingDiverged,
} from "./trainer.ts";
export { type Recipe, recipe, RECIPES } from "./recipes.ts";
export {
  type MetricsRow,
  parseMetrics,
  readRunConfig,
  recordResume,
  type ResumeRecord,
  RUN_CONFIG_FILE,
  type RunConfig,
  type RunVersions,
  runVersions,
  writeRunConfig,
} from "./run_record.ts";
// Types from lower folders that this folder's API uses, so this entry's docs are complete.
export type { ImageDataset } from "../data/dataset.ts";
export type { Rng } from "../engine/rng.ts";
export type {
  NamedTensorMap,
  Scalar,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  Tensor4D,
  Variable,
} from "../engine/tensor_types.ts";
export type { CollatedMasks, MaskBatch, MaskSample } from "../masks/batch.ts";
export type { MultiBlockMasker } from "../masks/masker.ts";
export type {
  MaskCollation,
  MaskerOptions,
  MaskStrategy,
  Range2,
  ResolvedMaskerOptions,
} from "../masks/options.ts";
export type {
  LossKind,
  ModelConfig,
  ResolvedConfig,
  SigregOn,
  TargetMode,
  TargetNorm,
} from "../model/config.ts";
export type { IJEPA, ModelPart } from "../model/ijepa.ts";
export type { ParamStore } from "../model/params.ts";
export type { Predictor } from "../model/predictor.ts";
export type { EncodeOptions, TokenSelection, VisionTransformer } from "../model/vit.ts";
