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
export {
  loadModel,
  loadOfficialCheckpoint,
  type Part,
  saveModel,
  WEIGHTS_FORMAT,
  type WeightsMeta,
} from "./weights.ts";
export { openSafetensors, writeSafetensors } from "./safetensors.ts";
export { openTorchCheckpoint } from "./torch_checkpoint.ts";
