/**
 * Weights in and out: safetensors, the official PyTorch checkpoints, HuggingFace's IJepaModel files,
 * and the shipped pretrained weights.
 *
 * @module
 */
export {
  type CardProbe,
  dataName,
  PRETRAINED_DIR,
  type PretrainedCard,
  pretrainedCard,
  pretrainedLine,
  pretrainedWeights,
  shippedReference,
} from "./pretrained.ts";
export {
  loadModel,
  type LoadOptions,
  type Part,
  saveModel,
  WEIGHTS_FORMAT,
  type WeightsMeta,
} from "./weights.ts";
export { loadOfficialCheckpoint, type OfficialLoadOptions } from "./official.ts";
export { IMAGENET_MEAN, IMAGENET_STD } from "./official_layout.ts";
export {
  describeHf,
  HF_LAYOUT,
  HF_MODELS,
  type HfDescription,
  type HfHints,
  type HfLoadOptions,
  loadHfModel,
} from "./hf.ts";
export { type WeightsFileKind, weightsFileKind } from "./file_kind.ts";
export { openSafetensors, type SafetensorsFile, type SafetensorsHeader } from "./safetensors_read.ts";
export { type StoredTensor, writeSafetensors } from "./safetensors_write.ts";
export { openTorchCheckpoint, type TorchCheckpoint } from "./torch/checkpoint.ts";
export type { ByteSource } from "./byte_source.ts";
export type { TensorEntry, TensorInfo } from "./safetensors_header.ts";
export type { SafetensorsDtype, TensorData } from "./dtypes.ts";
export type { ZipEntry } from "./torch/zip.ts";
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
export type { CollatedMasks } from "../masks/batch.ts";
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
