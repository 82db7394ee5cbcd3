/**
 * Which patches the encoder sees and which it must predict: the multi-block masker (the paper's
 * Section 3 and Figure 4) and the other strategies of its Table 6.
 *
 * @module
 */
export { type MaskBatch } from "./batch.ts";
export { MASK_PRESETS, type MaskerOptions, maskPreset, type MaskStrategy, trainingMasks } from "./options.ts";
export { createMasker, MultiBlockMasker } from "./masker.ts";
export { benchMasker } from "./bench.ts";
