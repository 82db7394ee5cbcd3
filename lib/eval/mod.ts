/**
 * What the encoder learned: features, the low-shot linear probe and kNN with their baselines, and the
 * paper's ablations at small scale.
 *
 * @module
 */
export {
  extractFeatures,
  type ExtractOptions,
  type FeatureSet,
  rawPixelFeatures,
  type Readout,
  READOUTS,
} from "./features.ts";
export { LinearProbe, PROBE_DEFAULTS, type ProbeOptions, trainLinearProbe } from "./linear_probe.ts";
export { knnAccuracy, type KnnOptions, type LabelledFeatures } from "./knn.ts";
export { type ProbeSetting, sampleLabelSubset } from "./label_draws.ts";
export {
  type ProbeCell,
  type ProbeRow,
  type ProbeSuiteOptions,
  type ProbeTable,
  runProbeSuite,
} from "./suite.ts";
export { formatProbeTable, probeBars } from "./report.ts";
export { rankMe, RANKME_EPS, symmetricEigenvalues } from "./rankme.ts";
export {
  type Arm,
  type ArmResult,
  formatSummary,
  runStudy,
  type Study,
  studyArms,
  type StudyOptions,
  type StudyResults,
  type StudyRun,
  summarise,
  type SummaryRow,
} from "./ablate.ts";
// Types from lower folders that this folder's API uses, so this entry's docs are complete.
export type { DatasetSplits, ImageDataset } from "../data/dataset.ts";
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
export type { MaskCollation, MaskerOptions, MaskStrategy, Range2 } from "../masks/options.ts";
export type {
  LossKind,
  ModelConfig,
  ResolvedConfig,
  SigregOn,
  TargetMode,
  TargetNorm,
} from "../model/config.ts";
export type { ParamStore } from "../model/params.ts";
export type { EncodeOptions, TokenSelection, VisionTransformer } from "../model/vit.ts";
export type { StepInfo } from "../train/trainer.ts";
