/**
 * Pictures: plots as SVG or PNG, and notebook displays.
 *
 * @module
 */
export {
  inJupyter,
  LiveDisplay,
  liveDisplay,
  type MediaBundle,
  MONITOR_DEFAULTS,
  type MonitorOptions,
  type ProgressInfo,
  progressLine,
  TrainingMonitor,
  trainingMonitor,
} from "./notebook.ts";
export {
  plotBars,
  plotConfusion,
  plotImages,
  plotLines,
  plotLoss,
  plotMasks,
  plotScatter,
  render,
  savePng,
  show,
  toPng,
} from "./plot.ts";
