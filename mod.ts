/**
 * ijepa-deno: I-JEPA (Assran et al., CVPR 2023) in TypeScript for Deno and Jupyter.
 *
 * The model (context encoder, EMA target encoder, predictor), the multi-block masker, the
 * optimizer, data, and plotting helpers. Nothing runs on import.
 *
 * @example
 * ```ts
 * import { createMasker, IJEPA, Rng, setBackend } from "./mod.ts";
 * import * as tf from "@tensorflow/tfjs";
 * await setBackend("cpu", { quiet: true });
 * const model = new IJEPA("tiny", { seed: 0 });
 * const masker = createMasker({ rows: 4, cols: 4, nTargets: 2, minKeep: 2 });
 * const masks = masker.sample(new Rng(0), 2);
 * const images = tf.zeros([2, 16, 16, 1]) as tf.Tensor4D;
 * const loss = model.loss(images, masks);
 * console.log("loss", loss.dataSync()[0]);
 * model.dispose();
 * ```
 * @module
 */

// Backends and kernels
export { BACKEND_NAMES, type BackendInfo, backendInfo, type BackendName, setBackend } from "./lib/backend.ts";
export { type BlasStatus, blasStatus, disableBlas, enableBlas } from "./lib/blas.ts";

// Randomness
export { Rng } from "./lib/rng.ts";

// The model
export {
  type LossKind,
  type ModelConfig,
  modelConfig,
  PRESET_NAMES,
  presetReasons,
  PRESETS,
  type ResolvedConfig,
  type TargetMode,
} from "./lib/config.ts";
export { checkImages, type TokenSelection, VisionTransformer } from "./lib/vit.ts";
export { type CollatedMasks, Predictor } from "./lib/predictor.ts";
export { distance, IJEPA, type IJEPAOptions, meanFeatureStd, TARGET_EPS } from "./lib/ijepa.ts";
export { sincosPosEmbed } from "./lib/posembed.ts";
export { gatherRows, gelu, layerNorm, linear, matMul, patchify, unpatchify } from "./lib/ops.ts";

// Masks
export {
  benchMasker,
  createMasker,
  MASK_PRESETS,
  type MaskBatch,
  type MaskerOptions,
  maskPreset,
  type MaskStrategy,
  MultiBlockMasker,
} from "./lib/masks.ts";

// Training
export { AdamW, type AdamWOptions, decays } from "./lib/adamw.ts";
export { emaMomentum, learningRate, type LrSchedule, weightDecay } from "./lib/schedules.ts";
export {
  EMATrainer,
  type FitResult,
  type StepInfo,
  TRAINER_DEFAULTS,
  type TrainerOptions,
  TrainingDiverged,
} from "./lib/trainer.ts";
export { recipe, RECIPES } from "./lib/recipes.ts";
export {
  type CardProbe,
  dataName,
  PRETRAINED_DIR,
  type PretrainedCard,
  pretrainedCard,
  pretrainedLine,
  pretrainedWeights,
  shippedReference,
} from "./lib/pretrained.ts";

// Evaluation: frozen features, linear probe, kNN, baselines
export {
  extractFeatures,
  type FeatureSet,
  rawPixelFeatures,
  type Readout,
  READOUTS,
} from "./lib/features.ts";
export {
  formatProbeTable,
  knnAccuracy,
  LinearProbe,
  PROBE_DEFAULTS,
  probeBars,
  type ProbeTable,
  runProbeSuite,
  sampleLabelSubset,
  trainLinearProbe,
} from "./lib/probe.ts";

// Looking inside: PCA, patch colours, nearest patches, what the predictor predicts
export {
  adaptImages,
  cutPatch,
  denormalizePixels,
  highlightPatch,
  imageAt,
  meanFeature,
  nearestPatches,
  type Neighbours,
  pastePatches,
  type PatchBank,
  patchBank,
  patchColourImage,
  patchColours,
  pca,
  pcaProject,
  type PCAResult,
  pixelPatchBank,
  predictBlocks,
} from "./lib/analysis.ts";

// The paper's ablations
export { formatSummary, runStudy, type Study, studyArms, summarise } from "./lib/ablate.ts";

// Data
export {
  type Batch,
  batches,
  BatchStream,
  channelStats,
  DataError,
  type ImageDataset,
  loadCifar,
  loadDataset,
  loadFashionMnist,
  loadIdx,
  loadImageFolder,
  subset,
} from "./lib/data.ts";
export { normalize, randomResizedCrop } from "./lib/augment.ts";

// Weights: one safetensors format in the official layout; official PyTorch checkpoints
export {
  loadModel,
  loadOfficialCheckpoint,
  type Part,
  saveModel,
  WEIGHTS_FORMAT,
  type WeightsMeta,
} from "./lib/weights.ts";
export { openSafetensors, writeSafetensors } from "./lib/safetensors.ts";
export { openTorchCheckpoint } from "./lib/torch_checkpoint.ts";

// Jupyter: live displays for training
export {
  inJupyter,
  LiveDisplay,
  liveDisplay,
  type MediaBundle,
  MONITOR_DEFAULTS,
  type MonitorOptions,
  type ProgressInfo,
  progressLine,
  TrainingMonitor,
  trainingMonitor,
} from "./lib/notebook.ts";

// Plots
export {
  plotBars,
  plotConfusion,
  plotImages,
  plotLines,
  plotLoss,
  plotMasks,
  plotScatter,
  render,
  savePng,
  show,
  toPng,
} from "./lib/plot.ts";
