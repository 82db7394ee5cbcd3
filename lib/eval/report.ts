/**
 * The probe suite's output: its table as text (percent, mean ± std over the label draws) and its
 * accuracies as bars for a plot.
 *
 * @module
 */
import type { ProbeSetting } from "./label_draws.ts";
import type { ProbeCell, ProbeRow, ProbeTable } from "./suite.ts";

function settingHeader(s: ProbeSetting): string {
  if (s.name === "full") return `full (${s.labelled})`;
  if (s.name === "1%") {
    const same = s.perClass.every((p) => p === s.perClass[0]);
    return `1% (${same ? `${s.perClass[0]}/class` : s.labelled})`;
  }
  return s.name;
}

/**
 * The table as text: one block for the linear probe and one for kNN, a row per method, a column
 * per setting, `mean ± std` in percent over the draws; the probe block also gives each row's RankMe.
 *
 * @example
 * ```ts
 * import { formatProbeTable } from "./report.ts";
 * import type { ProbeTable } from "./suite.ts";
 * const cell = (m: number) => ({ mean: m, std: 0.01, runs: [m - 0.01, m + 0.01] });
 * const table: ProbeTable = {
 *   settings: [{ name: "1-shot", perClass: [1, 1], labelled: 2, draws: 2 }],
 *   rows: [{ method: "raw pixels", source: "raw pixels", readout: "pixels", dim: 4, probe: [cell(0.6)],
 *     knn: null, confusion: [], iterations: [], featureSeconds: 0 }],
 *   classNames: ["a", "b"], pool: 10, test: 4, seeds: 2, seed: 0, k: 0, recipe: "demo",
 *   seconds: { features: 0, probe: 0, knn: 0 },
 * };
 * if (!formatProbeTable(table).includes("60.0 ± 1.0")) throw new Error(formatProbeTable(table));
 * ```
 */
export function formatProbeTable(table: ProbeTable): string {
  const heads = table.settings.map(settingHeader);
  const colW = Math.max(12, ...heads.map((h) => h.length + 1));
  const nameW = Math.max(22, ...table.rows.map((r) => r.method.length + 2));
  const cellText = (c: ProbeCell, draws: number) =>
    draws > 1 ? `${(100 * c.mean).toFixed(1)} ± ${(100 * c.std).toFixed(1)}` : (100 * c.mean).toFixed(1);
  const block = (title: string, pick: (r: ProbeRow) => ProbeCell[] | null, rank = false) => {
    const lines = [
      title,
      "method".padEnd(nameW) + "dim".padStart(6) + (rank ? "RankMe".padStart(8) : "") +
      heads.map((h) => h.padStart(colW)).join(""),
    ];
    for (const r of table.rows) {
      const cells = pick(r);
      if (!cells) continue;
      lines.push(
        r.method.padEnd(nameW) + String(r.dim).padStart(6) +
          (rank ? (r.rankMe?.toFixed(1) ?? "-").padStart(8) : "") +
          cells.map((c, i) => cellText(c, table.settings[i].draws).padStart(colW)).join(""),
      );
    }
    return lines.join("\n");
  };
  const out = [
    block(
      `Linear probe: test accuracy %, mean ± std over ${table.seeds} label draw${
        table.seeds > 1 ? "s" : ""
      } ` +
        `(pool ${table.pool}, test ${table.test})`,
      (r) => r.probe,
      true,
    ),
  ];
  if (table.k > 0) out.push("", block(`kNN (cosine, k=${table.k}): test accuracy %`, (r) => r.knn));
  out.push("", `recipe: ${table.recipe}`);
  return out.join("\n");
}

/**
 * The probe accuracies as rows for lib/viz/figures_results.ts `plotBars` (percent; one group per setting, one bar
 * per method, error bars = std over draws).
 */
export function probeBars(table: ProbeTable, which: "probe" | "knn" = "probe"): {
  group: string;
  label: string;
  mean: number;
  std: number;
}[] {
  return table.rows.flatMap((r) =>
    (which === "probe" ? r.probe : r.knn ?? []).map((c, i) => ({
      group: settingHeader(table.settings[i]),
      label: r.method,
      mean: 100 * c.mean,
      std: 100 * c.std,
    }))
  );
}
