/**
 * Writing a shipped weights file's card: the training time read from its run's metrics, and the
 * probe tables as Markdown. `deno task make-pretrained` uses them; `pretrainedCard` in
 * pretrained.ts reads the card back.
 *
 * @example
 * ```ts
 * import { trainingSeconds } from "./pretrained_card.ts";
 * // an older run's two segments (its resume restarted `elapsed`): 10 s, then 5 s
 * const s = trainingSeconds('{"elapsed": 4}\n{"elapsed": 10}\n{"elapsed": 2}\n{"elapsed": 5}\n');
 * if (s !== 15) throw new Error(`expected 15, got ${s}`);
 * ```
 * @module
 */
import type { CardProbe } from "./pretrained.ts";

/**
 * Wall-clock training seconds from a run's metrics.jsonl. The trainer now carries `elapsed` across
 * resumes, so the last value is the total; in older runs it restarted at each resume, so a drop starts
 * a new segment and the segments' last values are added up.
 */
export function trainingSeconds(metricsJsonl: string): number {
  let total = 0, prev = 0;
  for (const line of metricsJsonl.split("\n")) {
    if (!line.trim()) continue;
    const e = Number(JSON.parse(line).elapsed);
    if (!Number.isFinite(e)) continue;
    if (e < prev) total += prev;
    prev = e;
  }
  return total + prev;
}

/** A card's probe table as Markdown (linear probe, kNN in brackets). */
export function cardMarkdown(p: CardProbe): string {
  const cell = ([m, s]: [number, number]) => (s > 0 ? `${m.toFixed(1)} ± ${s.toFixed(1)}` : m.toFixed(1));
  const lines = [
    `| ${p.data} | dim | ${p.settings.join(" | ")} |`,
    `| --- | --- | ${p.settings.map(() => "---").join(" | ")} |`,
  ];
  for (const r of p.rows) {
    const cells = r.linear.map((c, i) => cell(c) + (r.knn ? ` (kNN ${r.knn[i][0].toFixed(1)})` : ""));
    lines.push(`| ${r.method} | ${r.dim} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}
