/**
 * Looking inside the representations: principal components, patch features as colours, and
 * nearest-patch retrieval, for the notebooks (02, 03, 05) that show what an I-JEPA encoder (and its
 * predictor) sees.
 *
 * - {@link pca}: principal components of a feature matrix, deterministic (covariance, or the Gram
 *   matrix when there are fewer rows than features, then subspace iteration with Rayleigh-Ritz;
 *   signs fixed so each component's largest |loading| is positive).
 * - {@link patchColours}: one image's patch features as RGB, the first 3 principal components
 *   scaled to 0-255 (the view DINO and DINOv2 made common), with {@link patchColourImage} to draw
 *   them over the image.
 * - {@link patchBank} and {@link nearestPatches}: the target encoder's features of every patch of
 *   many images, layer-normalised as I-JEPA's regression targets are, and the bank patches most
 *   cosine-similar to given features (the predictor's outputs, say). The official code's users keep
 *   asking for a picture of what the predictor predicts; there is no pixel decoder in I-JEPA, so we
 *   show the real patches whose representations lie nearest to the prediction.
 * - {@link predictBlocks}: the predictor's outputs for one image's target blocks, with the
 *   targets the loss compares them with ({@link denormalizePixels} draws a pixel-mode model's).
 * - {@link cutPatch}, {@link imageAt}, {@link pastePatches}, {@link highlightPatch}: pixels of one patch or image, ready for
 *   lib/viz/figures_images.ts `plotImages`; {@link adaptImages} resizes a dataset and matches its channels to a
 *   model (grey Fashion-MNIST for an RGB checkpoint).
 *
 * Files: pca.ts (with its eigen solvers in eigen.ts), patch_colours.ts, retrieval.ts (the patch
 * bank and nearest patches), predictions.ts and pixels.ts.
 *
 * Everything but {@link patchBank} is plain TypeScript on Float32Arrays: no tensors, no backend.
 *
 * @example
 * ```ts
 * import { nearestPatches, pca } from "./mod.ts";
 * // Four points on the line y = 2x in 2-D: one component carries all the variance.
 * const x = new Float32Array([0, 0, 1, 2, 2, 4, 3, 6]); // [4, 2]
 * const p = pca(x, 4, 2, 1);
 * if (Math.abs(p.explained[0] - 1) > 1e-9) throw new Error(`explained ${p.explained[0]}`);
 * // Four patches of one image; the two most cosine-similar to (0.9, 0.3) are rows 0 and 2.
 * const features = new Float32Array([1, 0, 0, 1, 0.7, 0.7, -1, 0]); // [4, 2]
 * const bank = { features, dim: 2, n: 4, image: new Int32Array(4), patch: Int32Array.from([0, 1, 2, 3]) };
 * const hit = nearestPatches(new Float32Array([0.9, 0.3]), bank, 2);
 * if (hit.index.join() !== "0,2") throw new Error(`got ${hit.index.join()}`);
 * ```
 * @module
 */
export { pca, type PCAOptions, pcaProject, type PCAResult } from "./pca.ts";
export { patchColourImage, type PatchColourOptions, patchColours } from "./patch_colours.ts";
export {
  meanFeature,
  nearestPatches,
  type Neighbours,
  type PatchBank,
  patchBank,
  type PatchBankOptions,
  pixelPatchBank,
} from "./retrieval.ts";
export { type BlockPredictions, denormalizePixels, predictBlocks } from "./predictions.ts";
export {
  adaptImages,
  cutPatch,
  highlightPatch,
  imageAt,
  type ImageSet,
  pastePatches,
  type PatchPaint,
  type PlotImage,
} from "./pixels.ts";
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
