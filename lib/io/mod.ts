/**
 * Weights in and out: safetensors, the official PyTorch checkpoints, and the shipped pretrained weights.
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
export { loadModel, type Part, saveModel, WEIGHTS_FORMAT, type WeightsMeta } from "./weights.ts";
export { loadOfficialCheckpoint } from "./official.ts";
export { openSafetensors } from "./safetensors_read.ts";
export { writeSafetensors } from "./safetensors_write.ts";
export { openTorchCheckpoint } from "./torch/checkpoint.ts";
