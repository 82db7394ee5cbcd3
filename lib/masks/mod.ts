/**
 * Which patches the encoder sees and which it must predict: the multi-block masker (the paper's
 * Section 3 and Figure 4) and the other strategies of its Table 6.
 *
 * @module
 */
export {
  benchMasker,
  createMasker,
  MASK_PRESETS,
  type MaskBatch,
  type MaskerOptions,
  maskPreset,
  type MaskStrategy,
  MultiBlockMasker,
} from "./masks.ts";
