/**
 * `deno task plot RUN [--out FILE]`: a pretrain run's loss, target-feature spread (the collapse
 * watch) and throughput against step, from RUN/metrics.jsonl, as SVG or PNG by FILE's extension
 * (default RUN/plot.svg). Resumes listed in RUN/config.json are marked. Works on a run still
 * training, and on runs from before config.json and the rows' `time` existed.
 *
 * ```sh
 * deno task plot runs/quick-20250101-120000
 * deno task plot runs/quick-20250101-120000 --out quick.png
 * ```
 *
 * The figure: lib/viz/run_plot.ts.
 *
 * @module
 */
import { dataName } from "../io/pretrained.ts";
import { METRICS_FILE, parseMetrics, readRunConfig, trainingSeconds } from "../train/run_record.ts";
import { FIGURE_EXTENSIONS } from "../viz/figure_file.ts";
import { formatDuration } from "../viz/progress_text.ts";
import { checkOutputFile, type CliSpec, parseFlags, runMain, statIfAny, UsageError } from "./args.ts";

const SPEC: CliSpec = {
  name: "plot",
  summary: "Draw a pretrain run's loss, target-feature spread (collapse watch) and images/s against step,\n" +
    "from RUN/metrics.jsonl, to SVG or PNG (chosen by the extension of --out).",
  positionals: ["run"],
  flags: {
    out: { type: "string", help: "figure file, .svg or .png (default RUN/plot.svg)" },
  },
};

async function main(args: string[]) {
  const f = parseFlags(args, SPEC);
  const run = f._[0];
  if (!run) throw new UsageError("plot: expected a RUN folder (a pretrain run; see --help)");
  const info = await statIfAny(run);
  if (!info) {
    throw new UsageError(
      `plot: ${run}: no such folder; expected a pretrain run folder (holding ${METRICS_FILE})`,
    );
  }
  if (!info.isDirectory) {
    throw new UsageError(`plot: ${run} is a file; expected a pretrain run folder (holding ${METRICS_FILE})`);
  }
  const metricsPath = `${run.replace(/\/+$/, "")}/${METRICS_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(metricsPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(
        `plot: ${run} holds no ${METRICS_FILE}; expected a pretrain run folder (pretrain writes one row per step)`,
      );
    }
    throw e;
  }
  const out = (f.out as string | undefined) ?? `${run.replace(/\/+$/, "")}/plot.svg`;
  await checkOutputFile("plot", "out", out, FIGURE_EXTENSIONS);
  let rows;
  try {
    rows = parseMetrics(text, metricsPath);
  } catch (e) {
    throw new UsageError(`plot: ${(e as Error).message}`);
  }
  if (rows.length === 0) {
    throw new UsageError(`plot: ${metricsPath} is empty: the run has not finished a step yet`);
  }
  const config = await readRunConfig(run).catch(() => undefined);
  const last = rows[rows.length - 1];
  const steps = typeof last.steps === "number" ? `${last.step}/${last.steps}` : `${last.step}`;
  const facts = [
    config?.preset ? `preset ${config.preset}` : "",
    `step ${steps}`,
    `${formatDuration(trainingSeconds(text))} of training`,
    config?.data ? dataName(config.data) : "",
    config?.resumes?.length ? `resumed at step ${config.resumes.map((r) => r.step).join(", ")}` : "",
  ].filter(Boolean);
  const { plotRun } = await import("../viz/run_plot.ts");
  const { saveFigure } = await import("../viz/figure_file.ts");
  const svg = plotRun(rows, {
    title: `Run ${run.replace(/\/+$/, "")}`,
    subtitle: facts.join(", "),
    resumes: (config?.resumes ?? []).map((r) => r.step).filter((s) => s > 0),
    collapseRatio: typeof config?.trainer?.collapseRatio === "number"
      ? config.trainer.collapseRatio
      : undefined,
  });
  await saveFigure(svg, out);
  console.log(`wrote ${out}: ${rows.length} steps`);
}

if (import.meta.main) runMain(main);
