/**
 * The paper's Figure 3: the context encoder and EMA target encoder (a ViT), the predictor, the loss
 * between predicted and target patch representations, and the presets.
 *
 * @module
 */
export {
  type LossKind,
  type ModelConfig,
  modelConfig,
  type Preset,
  PRESET_NAMES,
  presetReasons,
  PRESETS,
  type ResolvedConfig,
  type SigregOn,
  type TargetMode,
  type TargetNorm,
} from "./config.ts";
export { checkImages, type EncodeOptions, type TokenSelection, VisionTransformer } from "./vit.ts";
export { Predictor } from "./predictor.ts";
export { type CollatedMasks } from "../masks/batch.ts";
export {
  distance,
  IJEPA,
  type IJEPAOptions,
  meanFeatureStd,
  type ModelPart,
  TARGET_EPS,
  vicReg,
} from "./ijepa.ts";
export { sigReg, SIGREG_SLICES, sigRegDirections } from "./sigreg.ts";
export type { ParamStore } from "./params.ts";
export { sincosPosEmbed } from "./posembed.ts";
// Types from lower folders that this folder's API uses, so this entry's docs are complete.
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
