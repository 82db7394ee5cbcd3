/**
 * `deno task ablate --study targets|masking`: the paper's ablations at small scale (see lib/eval/ablate.ts).
 *
 * @module
 */
import { formatSummary, pickArms, runStudy, STUDIES, type Study, summarise } from "../eval/ablate.ts";
import { setBackend } from "../engine/backend.ts";
import { modelConfig, PRESET_NAMES } from "../model/config.ts";
import { loadDataset } from "../data/load.ts";
import { parseNuisance, withNuisance } from "../data/nuisance.ts";
import { recipe } from "../train/recipes.ts";
import { parseEma, parseModelSettings } from "../eval/ablate_settings.ts";
import { FIGURE_EXTENSIONS } from "../viz/figure_file.ts";
import { StudyProgress } from "../viz/progress_text.ts";
import {
  asUsage,
  BACKEND_FLAG,
  checkDataFlag,
  checkOutputFile,
  checkOutputFolder,
  type CliSpec,
  DATA_FLAG,
  parseFlags,
  runMain,
} from "./args.ts";

const SPEC: CliSpec = {
  name: "ablate",
  summary:
    "Rerun the paper's ablations at small scale: --study targets (Table 7: representations vs pixels)\n" +
    "or --study masking (Table 6: multi-block vs rasterized, block, random). Each arm is pretrained and probed;\n" +
    "finished arms are kept in OUT/results.json, so an interrupted study resumes where it stopped.",
  flags: {
    study: { type: "string", choices: STUDIES, default: "targets", help: "which ablation" },
    preset: { type: "string", choices: PRESET_NAMES, default: "quick", help: "model preset" },
    steps: { type: "int", min: 1, help: "training steps per arm (default: the preset's recipe)" },
    seeds: { type: "int", min: 1, default: 1, help: "training seeds per arm" },
    arms: {
      type: "string",
      help: 'only these arms, comma-separated names (e.g. "multi-block (M=4),random"; default all)',
    },
    "probe-seeds": { type: "int", min: 1, default: 3, help: "label subsets per probe setting" },
    backend: BACKEND_FLAG,
    data: DATA_FLAG,
    model: {
      type: "string",
      help:
        "model settings for every arm alike, e.g. predictorDepth=2,varianceWeight=0 (fields of the preset)",
    },
    ema: {
      type: "string",
      help:
        "the target encoder's EMA momentum from START to END over each run, START,END (default: the recipe's)",
    },
    nuisance: {
      type: "string",
      default: "none",
      help:
        "backgrounds behind the objects, KIND:STRENGTH with KIND noise, texture or clutter (e.g. noise:0.5)",
    },
    out: { type: "string", help: "study folder (default runs/ablate-<study>-<preset>[-<nuisance>])" },
    png: { type: "string", help: "write a bar chart of the results to this file (.png or .svg)" },
    json: { type: "bool", help: "print the results as one JSON line" },
  },
};

async function main(args: string[]) {
  const f = parseFlags(args, SPEC);
  const json = Boolean(f.json);
  const study = f.study as Study;
  const preset = f.preset as string;
  // every flag checked before the backend starts and the data loads
  const model = asUsage(() => parseModelSettings((f.model as string | undefined) ?? ""));
  const grid = asUsage(() => modelConfig(preset, model)).gridSize; // a wrong key or value of --model
  const armNames = ((f.arms as string | undefined) ?? "").split(",").map((a) => a.trim()).filter(Boolean);
  if (f.arms !== undefined && armNames.length === 0) {
    asUsage(() => pickArms(study, grid, [String(f.arms)])); // names the study's arms
  }
  asUsage(() => pickArms(study, grid, armNames)); // an arm the study does not have
  const ema = f.ema === undefined ? undefined : asUsage(() => parseEma(f.ema as string));
  const nuisance = asUsage(() => parseNuisance(f.nuisance as string));
  const tag = nuisance ? `-${nuisance.kind}${nuisance.strength}` : "";
  const out = (f.out as string | undefined) ?? `runs/ablate-${study}-${preset}${tag}`;
  await checkOutputFolder("ablate", "out", out);
  if (f.png !== undefined) await checkOutputFile("ablate", "png", f.png as string, FIGURE_EXTENSIONS);
  await checkDataFlag("ablate", f.data as string | undefined);
  await setBackend(f.backend as string | undefined, { quiet: json });
  // Image folders come in at the arms' size and channels.
  const shape = { ...modelConfig(preset), ...model };
  const loaded = await loadDataset(f.data as string | undefined, {
    imageSize: shape.imageSize,
    channels: shape.channels as 1 | 3,
  });
  // the backgrounds differ between the splits (their own seeds) and are the same on every run
  const data = nuisance
    ? {
      ...loaded,
      train: withNuisance(loaded.train, { ...nuisance, seed: 1 }),
      test: withNuisance(loaded.test, { ...nuisance, seed: 2 }),
      source: `${loaded.source}, with ${nuisance.kind} backgrounds at strength ${nuisance.strength}`,
    }
    : loaded;
  const log = json ? () => {} : (l: string) => console.error(l);
  log(`data: ${data.source}\nstudy ${study}, preset ${preset}, results in ${out}/results.json`);
  const steps = (f.steps as number | undefined) ?? recipe(preset).steps;
  let progress: StudyProgress | undefined;
  const results = await runStudy({
    study,
    preset,
    steps: f.steps as number | undefined,
    seeds: f.seeds as number,
    probeSeeds: f["probe-seeds"] as number,
    arms: armNames,
    model,
    ema,
    data,
    outDir: out,
    log,
    // per-run progress on stderr, as pretrain's (a line at each run's first and last step, else every 10 s)
    onRun: json ? undefined : (run, event) => {
      progress ??= new StudyProgress({ runs: run.count, stepsPerRun: steps });
      if (event === "start") progress.runStarted();
      else if (event === "done") progress.runDone();
      else progress.runSkipped();
    },
    onStep: json ? undefined : (run, s) => {
      const line = progress?.step(run, s);
      if (line) log(line);
    },
  });
  const rows = summarise(results);
  if (f.png) {
    const { plotBars } = await import("../viz/figures_results.ts");
    const { saveFigure } = await import("../viz/figure_file.ts");
    const bars = rows.flatMap((r) =>
      ["probe 1%", "probe 10-shot", "kNN 1%"].filter((c) => r.cells[c]).map((c) => ({
        group: c,
        label: r.method,
        mean: r.cells[c][0],
        std: r.cells[c][1],
      }))
    );
    await saveFigure(
      plotBars(bars, {
        title: `${study} study (${preset}, ${results.steps} steps)`,
        y: "test accuracy (%)",
        format: (v: number) => v.toFixed(1),
      }),
      f.png as string,
    );
    log(`chart: ${f.png}`);
  }
  if (json) console.log(JSON.stringify({ ...results, summary: rows }));
  else console.log(formatSummary(rows, results));
}

if (import.meta.main) runMain(main);
