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
export { type LinePoint, type LossPoint, plotLines, plotLoss } from "./figures_curves.ts";
export { type CaptionedImage, type MaskExample, plotImages, plotMasks } from "./figures_images.ts";
export { type BarRow, plotBars, plotConfusion, plotScatter, type ScatterPoint } from "./figures_results.ts";
export {
  type PngOptions,
  type PngRenderer,
  preparePng,
  type PreparePngOptions,
  savePng,
  show,
  toPng,
} from "./output.ts";
export { type FigureOptions, type PlotOptions, render } from "./render.ts";
export { plotRun, type RunPlotOptions, type RunPoint } from "./run_plot.ts";
export { FIGURE_EXTENSIONS, figureFormat, saveFigure } from "./figure_file.ts";
export {
  formatDuration,
  type RunPosition,
  type StepFields,
  StudyProgress,
  type StudyProgressOptions,
} from "./progress_text.ts";
// Types from lower folders that this folder's API uses, so this entry's docs are complete.
export type { PlotImage } from "../inside/pixels.ts";
export type { StepInfo } from "../train/trainer.ts";
