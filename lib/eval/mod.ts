/**
 * What the encoder learned: features, the low-shot linear probe and kNN with their baselines, and the
 * paper's ablations at small scale.
 *
 * @module
 */
export { extractFeatures, type FeatureSet, rawPixelFeatures, type Readout, READOUTS } from "./features.ts";
export { LinearProbe, PROBE_DEFAULTS, trainLinearProbe } from "./linear_probe.ts";
export { knnAccuracy } from "./knn.ts";
export { sampleLabelSubset } from "./label_draws.ts";
export { type ProbeTable, runProbeSuite } from "./suite.ts";
export { formatProbeTable, probeBars } from "./report.ts";
export { formatSummary, runStudy, type Study, studyArms, summarise } from "./ablate.ts";
