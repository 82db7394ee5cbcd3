/**
 * A training run on one figure: the loss, the target-feature spread (the collapse watch) and the
 * throughput against step, three titled panels stacked in one SVG, with the steps where the run
 * was resumed marked. `deno task plot RUN` draws it from the run folder's metrics.jsonl.
 *
 * Each panel is an Observable Plot figure rendered by render.ts (as plotLoss in figures_curves.ts
 * is): every step faint, a moving mean bold once there are enough steps, dots when there are few.
 *
 * @example
 * ```ts
 * import { plotRun } from "./run_plot.ts";
 * const rows = Array.from({ length: 30 }, (_, i) => ({
 *   step: i + 1, loss: 1 / (i + 1), elapsed: i, imgPerSec: 20 + (i % 3),
 *   ...(i % 10 === 0 ? { targetStd: 0.3 } : {}),
 * }));
 * const svg = plotRun(rows, { title: "run", resumes: [15] });
 * if (!svg.includes("images / s") || !svg.includes("target std")) throw new Error("a panel is missing");
 * ```
 * @module
 */
import * as Plot from "@observablehq/plot";
import { DEFAULTS } from "./defaults.ts";
import { render } from "./render.ts";
import { esc, wrapText } from "./text.ts";

/** The fields of a metrics.jsonl row the figure reads (lib/train/run_record.ts MetricsRow). */
export interface RunPoint {
  /** Steps completed. */
  step: number;
  /** Loss of this step. */
  loss: number;
  /** Images per second over this step. */
  imgPerSec?: number;
  /** Mean per-dimension std of the target features, when measured. */
  targetStd?: number;
}

/** Options of {@link plotRun}. */
export interface RunPlotOptions {
  /** The figure's heading (e.g. the run folder). */
  title: string;
  /** A line under the heading (e.g. preset, data, steps). */
  subtitle?: string;
  /** Steps at which the run was resumed, marked by a dashed line in every panel. */
  resumes?: number[];
  /**
   * The trainer's collapse warning: a std under this fraction of its first value (the trainer's
   * `collapseRatio`, default 0.1) is drawn as a red line in the spread panel; 0 draws none.
   */
  collapseRatio?: number;
  /** Width of each panel, px. Default 640. */
  width?: number;
}

interface Series {
  title: string;
  subtitle?: string;
  y: string;
  points: { step: number; value: number }[];
  logY: boolean;
  /** Start the y axis at 0 (a spread or a speed is read against zero). */
  zero?: boolean;
  /** A horizontal level to draw (red, dashed), with its label for the subtitle. */
  level?: { y: number; label: string };
  /** Text drawn instead of a plot when there are no points. */
  empty: string;
}

/** Steps per moving-mean window: about a twentieth of the points, none under 40 points. */
function windowOf(n: number): number {
  return n >= 40 ? Math.max(2, Math.round(n / 20)) : 1;
}

function panel(s: Series, resumes: number[], width: number, stepDomain: [number, number]): string {
  if (s.points.length === 0) return notePanel(s.title, s.empty, width);
  const data = [...s.points].sort((a, b) => a.step - b.step);
  const k = windowOf(data.length);
  const color = DEFAULTS.contextColor;
  const marks: Plot.Markish[] = [
    ...resumes.map((r) => Plot.ruleX([r], { stroke: "#999", strokeDasharray: "4,3" })),
    ...(s.level ? [Plot.ruleY([s.level.y], { stroke: "#d62728", strokeDasharray: "6,3" })] : []),
    Plot.line(data, {
      x: "step",
      y: "value",
      stroke: color,
      strokeOpacity: k > 1 ? 0.3 : 1,
      strokeWidth: 1.5,
    }),
  ];
  if (k > 1) {
    marks.push(
      Plot.line(
        data,
        Plot.windowY({ k, anchor: "end", reduce: "mean" }, {
          x: "step",
          y: "value",
          stroke: color,
          strokeWidth: 2,
        }),
      ),
    );
  }
  if (data.length <= 60) marks.push(Plot.dot(data, { x: "step", y: "value", fill: color, r: 2.5 }));
  const notes = [
    k > 1 ? `faint: every point; bold: mean of the last ${k}` : "",
    s.level ? `red: ${s.level.label}` : "",
    resumes.length ? "grey dashed: resumed" : "",
  ].filter(Boolean);
  return render({
    title: s.title,
    subtitle: [s.subtitle, ...notes].filter(Boolean).join("; ") || undefined,
    width,
    height: 220,
    marginLeft: 64,
    grid: true,
    x: { label: "step", domain: stepDomain },
    y: {
      label: s.y,
      type: s.logY ? "log" : "linear",
      tickFormat: s.logY ? "~g" : undefined,
      nice: true,
      zero: s.zero,
    },
    marks,
  });
}

/** A panel with a title and a note, for a series the run did not record. */
function notePanel(title: string, note: string, width: number): string {
  const h = 80, pad = DEFAULTS.pad;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width + 2 * pad}" height="${h}" ` +
    `viewBox="0 0 ${width + 2 * pad} ${h}">` +
    `<text x="${pad}" y="${pad + DEFAULTS.titleSize}" font-size="${DEFAULTS.titleSize}" font-weight="bold">${
      esc(title)
    }</text>` +
    `<text x="${pad}" y="${pad + DEFAULTS.titleSize + 24}" font-size="${DEFAULTS.subtitleSize}" fill="#555">${
      esc(note)
    }</text></svg>`;
}

/** Width and height of a standalone SVG's root element. */
function sizeOf(svg: string): { width: number; height: number } {
  const root = /^<svg\b[^>]*>/.exec(svg)?.[0] ?? "";
  return {
    width: Number(/\bwidth="([\d.]+)"/.exec(root)?.[1] ?? 0),
    height: Number(/\bheight="([\d.]+)"/.exec(root)?.[1] ?? 0),
  };
}

/**
 * The run's figure: a heading, then loss (log scale when every loss is positive), target-feature
 * std, and images per second, each against step.
 */
export function plotRun(points: RunPoint[], opts: RunPlotOptions): string {
  if (points.length === 0) throw new RangeError("plotRun: expected at least one metrics row, got 0");
  const width = opts.width ?? 640;
  const steps = points.map((p) => p.step);
  const lo = Math.min(...steps), hi = Math.max(...steps);
  const domain: [number, number] = lo === hi ? [lo - 1, hi + 1] : [lo, hi];
  const pick = (f: (p: RunPoint) => number | undefined) =>
    points.flatMap((p) => {
      const v = f(p);
      return typeof v === "number" && Number.isFinite(v) ? [{ step: p.step, value: v }] : [];
    });
  const loss = pick((p) => p.loss);
  const std = pick((p) => p.targetStd);
  const ratio = opts.collapseRatio ?? 0.1;
  // the trainer's rule (trainer.ts): warn when the std falls below ratio x its first measured value
  const level = ratio > 0 && std.length > 0
    ? { y: ratio * std[0].value, label: `collapse warning level (${ratio} x the first std)` }
    : undefined;
  const series: Series[] = [
    {
      title: "Training loss",
      y: loss.every((p) => p.value > 0) ? "loss (log scale)" : "loss",
      points: loss,
      logY: loss.every((p) => p.value > 0),
      empty: "no loss recorded",
    },
    {
      title: "Target-feature spread (collapse watch)",
      subtitle: "mean per-dimension std of the target encoder's features; a fall towards 0 is collapse",
      y: "target std",
      points: std,
      logY: false,
      zero: true,
      level,
      empty: "not measured in this run (the trainer's stdEvery was 0)",
    },
    {
      title: "Throughput",
      y: "images / s",
      points: pick((p) => p.imgPerSec),
      logY: false,
      zero: true,
      empty: "no throughput recorded",
    },
  ];
  const resumes = (opts.resumes ?? []).filter((r) => r >= lo && r <= hi);
  const panels = series.map((s) => panel(s, resumes, width, domain));
  const pad = DEFAULTS.pad, sub = DEFAULTS.subtitleSize;
  const subLines = opts.subtitle ? wrapText(opts.subtitle, sub, width) : [];
  const head = [
    `<text x="${pad}" y="${pad + DEFAULTS.titleSize + 2}" font-size="${
      DEFAULTS.titleSize + 2
    }" font-weight="bold">${esc(opts.title)}</text>`,
    ...subLines.map((line, i) =>
      `<text x="${pad}" y="${pad + DEFAULTS.titleSize + 22 + i * sub * 1.3}" font-size="${sub}" fill="#555">${
        esc(line)
      }</text>`
    ),
  ].join("");
  let y = pad + DEFAULTS.titleSize + 10 + subLines.length * sub * 1.3 + (subLines.length ? 8 : 0);
  let total = 0;
  const body = panels.map((svg) => {
    const { width: w, height: h } = sizeOf(svg);
    total = Math.max(total, w);
    // a nested <svg> keeps each panel's own coordinates; resvg and browsers both draw it
    const placed = svg.replace(/^<svg\b/, `<svg x="0" y="${y}"`);
    y += h;
    return placed;
  }).join("");
  const W = Math.ceil(total), H = Math.ceil(y + pad);
  return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${W}" ` +
    `height="${H}" viewBox="0 0 ${W} ${H}" font-family="${DEFAULTS.fontFamily}, sans-serif" font-size="10">` +
    `<rect width="${W}" height="${H}" fill="white"/>${head}${body}</svg>`;
}
