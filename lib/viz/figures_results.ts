/**
 * Figures of evaluation results: grouped bars with error bars and reference values, a confusion
 * matrix, and a 2-D projection of embeddings coloured by class.
 *
 * @module
 */

import * as Plot from "@observablehq/plot";
import { type FigureOptions, render } from "./render.ts";
import { textWidth } from "./text.ts";

/** A bar of {@link plotBars}: one `label` (a method) within one `group` (a setting). */
export interface BarRow {
  /** The group (setting) the bar is drawn in. */
  group: string;
  /** The bar's label (a method). */
  label: string;
  /** Bar height. */
  mean: number;
  /** Error bar half-length (e.g. std over seeds). */
  std?: number;
}

/**
 * Grouped bars with error bars and the value written above each bar; optionally a reference value
 * per group (e.g. the paper's number) drawn as a dashed line across the group.
 *
 * @example
 * ```ts
 * import { plotBars } from "./figures_results.ts";
 * const svg = plotBars([
 *   { group: "1% labels", label: "I-JEPA", mean: 57.7, std: 2.5 },
 *   { group: "1% labels", label: "random init", mean: 53.3 },
 * ], { y: "accuracy (%)", reference: { "1% labels": 60 }, referenceLabel: "target" });
 * if (!svg.includes("57.7")) throw new Error("value label missing");
 * ```
 */
export function plotBars(
  rows: BarRow[],
  opts: FigureOptions & {
    x?: string;
    y?: string;
    reference?: Record<string, number>;
    referenceLabel?: string;
    format?: (v: number) => string;
    yDomain?: [number, number];
  } = {},
): string {
  if (rows.length === 0) throw new RangeError("plotBars: expected at least one row, got 0");
  const groups = [...new Set(rows.map((r) => r.group))];
  const labels = [...new Set(rows.map((r) => r.label))];
  const fmt = opts.format ?? ((v: number) => (Math.abs(v) >= 10 ? v.toFixed(1) : v.toPrecision(3)));
  const withStd = rows.filter((r) => r.std !== undefined && r.std > 0);
  const refLabel = opts.referenceLabel ?? "reference";
  const refs = Object.entries(opts.reference ?? {}).map(([group, value]) => {
    if (!groups.includes(group)) {
      throw new RangeError(
        `plotBars: reference for unknown group "${group}", expected one of ${JSON.stringify(groups)}`,
      );
    }
    return { group, value, text: `${refLabel} ${fmt(value)}` };
  });
  const bandPx = Math.max(18, Math.min(48, 420 / (groups.length * labels.length)));
  const width = opts.width ?? Math.max(420, 70 + groups.length * (labels.length * bandPx + 30));
  return render({
    title: opts.title ?? "Results",
    subtitle: opts.subtitle ??
      (refs.length > 0
        ? `Dashed line: ${refLabel}.${withStd.length > 0 ? " Error bars: \u00b11 std." : ""}`
        : withStd.length > 0
        ? "Error bars: \u00b11 std."
        : undefined),
    width,
    height: opts.height ?? 340,
    marginLeft: 56,
    marginTop: 24,
    marginBottom: opts.x ? 44 : 30,
    fx: {
      label: opts.x ?? null,
      domain: groups,
      padding: 0.12,
      labelOffset: 38,
      labelArrow: "none",
    },
    x: { axis: null, domain: labels, padding: 0.1 },
    y: { label: opts.y ?? "value", grid: true, domain: opts.yDomain, nice: true },
    color: { domain: labels, legend: true },
    marks: [
      Plot.barY(rows, { fx: "group", x: "label", y: "mean", fill: "label" }),
      Plot.ruleX(withStd, {
        fx: "group",
        x: "label",
        y1: (r: BarRow) => r.mean - r.std!,
        y2: (r: BarRow) => r.mean + r.std!,
        stroke: "#333",
        strokeWidth: 1.5,
      }),
      Plot.text(rows, {
        fx: "group",
        x: "label",
        y: (r: BarRow) => r.mean + (r.std ?? 0),
        text: (r: BarRow) => fmt(r.mean),
        lineAnchor: "bottom",
        dy: -3,
        fontSize: 9,
      }),
      Plot.ruleY(refs, { fx: "group", y: "value", stroke: "#222", strokeDasharray: "5,3" }),
      Plot.text(refs, {
        fx: "group",
        y: "value",
        text: "text",
        frameAnchor: "right",
        textAnchor: "end",
        lineAnchor: "bottom",
        dy: -2,
        fontSize: 9,
        stroke: "white", // a halo keeps the label readable where it crosses a bar
        strokeWidth: 3,
        fill: "black",
      }),
      Plot.ruleY([0]),
    ],
  });
}

/**
 * Confusion matrix heat map (rows: true class, columns: predicted), counts written in the cells,
 * colour by count or, with `normalize`, by the fraction of each true class.
 *
 * @example
 * ```ts
 * import { plotConfusion } from "./figures_results.ts";
 * const svg = plotConfusion([[5, 1], [2, 4]], ["cat", "dog"]);
 * if (!svg.includes("accuracy 75.0%")) throw new Error("accuracy missing from subtitle");
 * ```
 */
export function plotConfusion(
  matrix: number[][],
  classNames: string[],
  opts: FigureOptions & { normalize?: boolean; x?: string; y?: string } = {},
): string {
  const n = classNames.length;
  if (matrix.length !== n || matrix.some((row) => row.length !== n)) {
    throw new RangeError(
      `plotConfusion: expected a ${n}x${n} matrix for ${n} class names, got ${matrix.length}x${
        matrix.map((r) => r.length).join("/")
      }`,
    );
  }
  const total = matrix.flat().reduce((a, b) => a + b, 0);
  const correct = matrix.reduce((a, row, i) => a + row[i], 0);
  const cells = matrix.flatMap((row, i) => {
    const rowSum = row.reduce((a, b) => a + b, 0);
    return row.map((count, j) => ({
      truth: classNames[i],
      predicted: classNames[j],
      count,
      value: opts.normalize ? (rowSum > 0 ? count / rowSum : 0) : count,
    }));
  });
  const max = Math.max(...cells.map((c) => c.value), 1e-12);
  const cellPx = Math.max(24, Math.min(52, Math.floor(440 / n)));
  const longest = Math.max(...classNames.map((c) => textWidth(c, 10)));
  const rotate = longest > cellPx - 4;
  const marginLeft = Math.ceil(longest + 34);
  const marginBottom = rotate ? Math.ceil(longest * 0.65 + 34) : 40;
  return render({
    title: opts.title ?? "Confusion matrix",
    subtitle: opts.subtitle ??
      `accuracy ${(total > 0 ? (100 * correct) / total : 0).toFixed(1)}% (n = ${total})`,
    width: marginLeft + n * cellPx + 10,
    height: 8 + n * cellPx + marginBottom,
    marginLeft,
    marginBottom,
    marginTop: 8,
    marginRight: 10,
    x: {
      domain: classNames,
      label: opts.x ?? "predicted class",
      tickRotate: rotate ? -40 : 0,
      axis: "bottom",
    },
    y: { domain: classNames, label: opts.y ?? "true class" },
    color: {
      type: "linear",
      scheme: "blues",
      domain: [0, opts.normalize ? 1 : max],
      legend: true,
      label: opts.normalize ? "fraction of true class" : "count",
    },
    marks: [
      Plot.cell(cells, { x: "predicted", y: "truth", fill: "value", inset: 0.5 }),
      Plot.text(cells, {
        x: "predicted",
        y: "truth",
        text: (d: { count: number }) => String(d.count),
        fill: (
          d: { value: number },
        ) => (d.value > 0.55 * (opts.normalize ? 1 : max) ? "white" : "black"),
        fontSize: cellPx >= 36 ? 10 : 8,
      }),
    ],
  });
}

/** A point of {@link plotScatter}. */
export interface ScatterPoint {
  /** Position on the x axis. */
  x: number;
  /** Position on the y axis. */
  y: number;
  /** The point's class, which sets its colour. */
  label: string;
}

/**
 * A 2-D projection (PCA, t-SNE, ...) coloured by class.
 *
 * @example
 * ```ts
 * import { plotScatter } from "./figures_results.ts";
 * const svg = plotScatter([{ x: 0, y: 0, label: "a" }, { x: 1, y: 1, label: "b" }], { x: "PC 1", y: "PC 2" });
 * if ((svg.match(/<circle/g) ?? []).length !== 2) throw new Error("expected 2 dots");
 * ```
 */
export function plotScatter(
  points: ScatterPoint[],
  opts: FigureOptions & { x?: string; y?: string; r?: number; domain?: string[] } = {},
): string {
  return render({
    title: opts.title ?? "Embedding projection",
    subtitle: opts.subtitle,
    width: opts.width ?? 560,
    height: opts.height ?? 440,
    marginLeft: 50,
    grid: true,
    x: { label: opts.x ?? "component 1" },
    y: { label: opts.y ?? "component 2" },
    color: { legend: true, domain: opts.domain },
    marks: [
      Plot.dot(points, { x: "x", y: "y", fill: "label", r: opts.r ?? 2.5, fillOpacity: 0.75 }),
    ],
  });
}
