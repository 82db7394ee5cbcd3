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
export { loadOfficialCheckpoint } from "./official.ts";
export { IMAGENET_MEAN, IMAGENET_STD } from "./official_layout.ts";
export { describeHf, HF_LAYOUT, HF_MODELS, type HfDescription, loadHfModel } from "./hf.ts";
export { weightsFileKind } from "./file_kind.ts";
export { openSafetensors } from "./safetensors_read.ts";
export { writeSafetensors } from "./safetensors_write.ts";
export { openTorchCheckpoint } from "./torch/checkpoint.ts";
