/**
 * Which patches the encoder sees and which it must predict: the multi-block masker (the paper's
 * Section 3 and Figure 4) and the other strategies of its Table 6.
 *
 * @module
 */
export { type CollatedMasks, type MaskBatch, type MaskSample } from "./batch.ts";
export {
  MASK_PRESETS,
  type MaskCollation,
  type MaskerOptions,
  type MaskPreset,
  maskPreset,
  type MaskStrategy,
  type Range2,
  type ResolvedMaskerOptions,
  trainingMasks,
} from "./options.ts";
export { createMasker, MultiBlockMasker } from "./masker.ts";
export { benchMasker, type MaskerBench } from "./bench.ts";
// Types from lower folders that this folder's API uses, so this entry's docs are complete.
export type { Rng } from "../engine/rng.ts";
