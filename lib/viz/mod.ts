/**
 * Pictures: plots as SVG or PNG, and notebook displays.
 *
 * The figure factories (`plotMasks`, `plotLoss`, `plotLines`, `plotBars`, `plotConfusion`,
 * `plotScatter`, `plotImages`) each return SVG text with a title, axis labels and a legend where
 * colour carries meaning; `toPng`, `savePng` and `show` take that text out as PNG or to Jupyter.
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
} from "./live.ts";
export { plotLines, plotLoss } from "./figures_curves.ts";
export { plotImages, plotMasks } from "./figures_images.ts";
export { plotBars, plotConfusion, plotScatter } from "./figures_results.ts";
export { savePng, show, toPng } from "./output.ts";
export { render } from "./render.ts";
export { plotRun, type RunPlotOptions, type RunPoint } from "./run_plot.ts";
export { FIGURE_EXTENSIONS, figureFormat, saveFigure } from "./figure_file.ts";
export { formatDuration, StudyProgress } from "./progress_text.ts";
