/**
 * What the encoder learned: features, the low-shot linear probe and kNN with their baselines, and the
 * paper's ablations at small scale.
 *
 * @module
 */
export { extractFeatures, type FeatureSet, rawPixelFeatures, type Readout, READOUTS } from "./features.ts";
export {
  formatProbeTable,
  knnAccuracy,
  LinearProbe,
  PROBE_DEFAULTS,
  probeBars,
  type ProbeTable,
  runProbeSuite,
  sampleLabelSubset,
  trainLinearProbe,
} from "./probe.ts";
export { formatSummary, runStudy, type Study, studyArms, summarise } from "./ablate.ts";
