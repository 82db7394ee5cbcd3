/**
 * Looking inside: PCA of patch features, patch colours, nearest real patches, and what the predictor
 * predicts (notebooks 02, 03, 05).
 *
 * @module
 */
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
} from "./analysis.ts";
