/**
 * Line figures: training loss against step, and generic lines with dots, one per series.
 *
 * @module
 */

import * as Plot from "@observablehq/plot";
import { DEFAULTS } from "./defaults.ts";
import { type FigureOptions, render } from "./render.ts";

/** A point of a loss curve; `series` names the run when several are drawn. */
export interface LossPoint {
  /** Training step (x). */
  step: number;
  /** Loss at that step (y). */
  loss: number;
  /** Name of the run, when several are drawn. */
  series?: string;
}

/**
 * Loss curve(s) against training step, optionally on a log y axis and with a moving average.
 *
 * @example
 * ```ts
 * import { plotLoss } from "./figures_curves.ts";
 * const pts = Array.from({ length: 50 }, (_, i) => ({ step: i, loss: 1 / (i + 1) }));
 * const svg = plotLoss(pts, { logY: true, smooth: 5 });
 * if (!svg.includes("loss")) throw new Error("missing y label");
 * ```
 */
export function plotLoss(
  points: LossPoint[],
  opts: FigureOptions & { logY?: boolean; smooth?: number; x?: string; y?: string } = {},
): string {
  if (points.length === 0) throw new RangeError("plotLoss: expected at least one point, got 0");
  if (opts.logY) {
    const bad = points.find((p) => !(p.loss > 0));
    if (bad) {
      throw new RangeError(
        `plotLoss: logY needs positive losses, got ${bad.loss} at step ${bad.step}`,
      );
    }
  }
  const data = points.map((p) => ({ step: p.step, loss: p.loss, series: p.series ?? "loss" }))
    .sort((a, b) => a.step - b.step);
  const multi = new Set(data.map((d) => d.series)).size > 1;
  const k = Math.max(1, Math.floor(opts.smooth ?? 1));
  const stroke = multi ? "series" : DEFAULTS.contextColor;
  const lineMarks = k > 1
    ? [
      Plot.line(data, { x: "step", y: "loss", z: "series", stroke, strokeOpacity: 0.25 }),
      Plot.line(
        data,
        Plot.windowY({ k, anchor: "end", reduce: "mean" }, {
          x: "step",
          y: "loss",
          z: "series",
          stroke,
          strokeWidth: 1.8,
        }),
      ),
    ]
    : [Plot.line(data, { x: "step", y: "loss", z: "series", stroke, strokeWidth: 1.5 })];
  return render({
    title: opts.title ?? "Training loss",
    subtitle: opts.subtitle ??
      (k > 1 ? `Faint: every step. Bold: mean of the last ${k}.` : undefined),
    width: opts.width ?? 640,
    height: opts.height ?? 340,
    marginLeft: 56,
    grid: true,
    x: { label: opts.x ?? "step" },
    y: {
      label: opts.y ?? (opts.logY ? "loss (log scale)" : "loss"),
      type: opts.logY ? "log" : "linear",
      tickFormat: opts.logY ? "~g" : undefined,
    },
    color: multi ? { legend: true } : undefined,
    marks: [...(opts.logY ? [] : [Plot.ruleY([0])]), ...lineMarks],
  });
}

/** A point of {@link plotLines}. */
export interface LinePoint {
  /** Position on the x axis. */
  x: number;
  /** Position on the y axis. */
  y: number;
  /** The line this point belongs to. */
  series: string;
}

/**
 * Generic lines with dots, one per series (accuracy vs shots, feature std vs step, ...).
 *
 * @example
 * ```ts
 * import { plotLines } from "./figures_curves.ts";
 * const svg = plotLines(
 *   [{ x: 1, y: 40, series: "I-JEPA" }, { x: 10, y: 60, series: "I-JEPA" }],
 *   { x: "labels per class", y: "accuracy (%)", title: "Few-shot probe", logX: true },
 * );
 * if (!svg.includes("accuracy (%)")) throw new Error("missing y label");
 * ```
 */
export function plotLines(
  points: LinePoint[],
  opts: FigureOptions & {
    x: string;
    y: string;
    title: string;
    logX?: boolean;
    logY?: boolean;
    dots?: boolean;
  },
): string {
  if (points.length === 0) throw new RangeError("plotLines: expected at least one point, got 0");
  const data = [...points].sort((a, b) => a.x - b.x);
  return render({
    title: opts.title,
    subtitle: opts.subtitle,
    width: opts.width ?? 640,
    height: opts.height ?? 340,
    marginLeft: 56,
    grid: true,
    x: { label: opts.x, type: opts.logX ? "log" : "linear" },
    y: { label: opts.y, type: opts.logY ? "log" : "linear" },
    color: { legend: true },
    marks: [
      Plot.line(data, { x: "x", y: "y", stroke: "series", strokeWidth: 1.5 }),
      ...(opts.dots === false ? [] : [Plot.dot(data, { x: "x", y: "y", fill: "series", r: 3 })]),
    ],
  });
}
