/**
 * `deno task recipe`: the small-scale recipe comparison behind the quick preset's defaults. Each
 * named configuration is pretrained for the same steps with each seed, then probed (10-shot,
 * 50-shot, 1%, all labels, kNN) beside a random-init encoder of the same shape and raw pixels, on
 * the same label draws. Prints the table the README shows.
 *
 * @module
 */
import { setBackend } from "../engine/backend.ts";
import { type ModelConfig, modelConfig, PRESET_NAMES } from "../model/config.ts";
import { loadDataset } from "../data/load.ts";
import { IJEPA } from "../model/ijepa.ts";
import { dataName } from "../io/pretrained.ts";
import { type ProbeTable, runProbeSuite } from "../eval/suite.ts";
import { parseShots, shotsThatFit } from "../eval/probe_task.ts";
import { recipe } from "../train/recipes.ts";
import { EMATrainer, type TrainerOptions } from "../train/trainer.ts";
import { formatDuration, StudyProgress } from "../viz/progress_text.ts";
import {
  asUsage,
  BACKEND_FLAG,
  checkDataFlag,
  type CliSpec,
  DATA_FLAG,
  DATA_HELP,
  flagGiven,
  parseFlags,
  runMain,
  UsageError,
} from "./args.ts";

/** A configuration under comparison: overrides of the preset's model and recipe (quick by default). */
interface RecipeConfig {
  why: string;
  model: Partial<ModelConfig>;
  train: Partial<TrainerOptions>;
}

/** The configurations compared so far (the first is the official recipe at this scale). */
const CONFIGS: Record<string, RecipeConfig> = {
  official: {
    why: "the official recipe: no collapse term",
    model: { varianceWeight: 0, covarianceWeight: 0 },
    train: {},
  },
  vicreg: {
    why: "VICReg variance (weight 1) and covariance (0.04) terms on the context tokens, as C-JEPA",
    model: { varianceWeight: 1, covarianceWeight: 0.04 },
    train: {},
  },
  variance: {
    why: "the variance term alone (weight 1)",
    model: { varianceWeight: 1, covarianceWeight: 0 },
    train: {},
  },
};

const SPEC: CliSpec = {
  name: "recipe",
  summary:
    "Compare small-scale recipes for a preset (quick by default): pretrain each configuration, probe it beside\n" +
    "random init and raw pixels on the same label draws, print a table with spread and wall time.",
  flags: {
    configs: {
      type: "string",
      default: "official,vicreg",
      help: `comma list of ${Object.keys(CONFIGS).join(", ")}`,
    },
    preset: {
      type: "string",
      choices: PRESET_NAMES,
      default: "quick",
      help: "model shape and base recipe the configurations change (the README's table: quick)",
    },
    steps: { type: "int", min: 1, default: 150, help: "training steps per run" },
    seeds: { type: "int", min: 1, default: 1, help: "training seeds per configuration" },
    shots: {
      type: "string",
      default: "10,50",
      help: "n-shot settings, labelled images per class (by default those the data's smallest class allows)",
    },
    data: { ...DATA_FLAG, help: DATA_HELP, default: "fashion-mnist-subset" },
    backend: BACKEND_FLAG,
    json: { type: "bool", help: "one JSON line" },
  },
};

interface Row {
  name: string;
  seconds: number[];
  /** setting name -> accuracies (one per seed, each the mean over label draws). */
  probe: Record<string, number[]>;
  knn: Record<string, number[]>;
  /** Spread over the label draws of the first seed, shown when there is one seed. */
  drawStd: Record<string, number>;
}

function collect(rows: Map<string, Row>, name: string, t: ProbeTable, rowIndex: number, seconds?: number) {
  const r = rows.get(name) ?? { name, seconds: [], probe: {}, knn: {}, drawStd: {} };
  const tr = t.rows[rowIndex];
  t.settings.forEach((s, i) => {
    (r.probe[s.name] ??= []).push(100 * tr.probe[i].mean);
    r.drawStd[s.name] ??= 100 * tr.probe[i].std;
    if (tr.knn) (r.knn[s.name] ??= []).push(100 * tr.knn[i].mean);
  });
  if (seconds !== undefined) r.seconds.push(seconds);
  rows.set(name, r);
}

/** Mean ± spread: over seeds when there are several, else over the label draws (`draw`). */
const fmt = (a: number[], draw?: number) => {
  const m = a.reduce((x, y) => x + y, 0) / a.length;
  const s = a.length > 1 ? Math.sqrt(a.reduce((x, y) => x + (y - m) ** 2, 0) / (a.length - 1)) : draw;
  return s ? `${m.toFixed(1)} ± ${s.toFixed(1)}` : m.toFixed(1);
};

async function main(args: string[]) {
  const f = parseFlags(args, SPEC);
  const names = (f.configs as string).split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!CONFIGS[n]) {
      throw new UsageError(
        `recipe: unknown configuration "${n}"; expected ${Object.keys(CONFIGS).join(", ")}`,
      );
    }
  }
  const json = Boolean(f.json);
  let shots = asUsage(() => parseShots(f.shots as string, "recipe"));
  await checkDataFlag("recipe", f.data as string);
  await setBackend(f.backend as string | undefined, { quiet: json });
  const preset = f.preset as string;
  const shape = modelConfig(preset); // every configuration trains the preset's shape
  const data = await loadDataset(f.data as string, {
    imageSize: shape.imageSize,
    channels: shape.channels as 1 | 3,
  });
  const log = json ? () => {} : (l: string) => console.error(l);
  log(`data: ${data.source}`);
  // before any training: n-shot settings the label pool cannot give (a small folder of your own images)
  const { fit, dropped, smallest } = shotsThatFit(shots, data.train);
  if (dropped.length > 0) {
    const what = `${
      dropped.map((s) => `${s}-shot`).join(", ")
    }: the pool's smallest class has ${smallest} images`;
    if (flagGiven(args, "shots")) {
      throw new UsageError(`recipe: --shots ${f.shots} asks for ${what}; choose settings up to ${smallest}`);
    }
    shots = fit;
    log(`shots: ${what}, so left out (--shots to choose)`);
  }
  const steps = f.steps as number;
  const base = recipe(preset);
  if (data.train.n < base.batchSize) {
    throw new UsageError(
      `recipe: the ${preset} recipe's batch of ${base.batchSize} images needs at least that many training ` +
        `images; ${data.source} has ${data.train.n} (a larger folder, or --preset tiny: batch ${
          recipe("tiny").batchSize
        })`,
    );
  }
  const rows = new Map<string, Row>();
  const probeOpts = {
    shots,
    onePercent: true,
    full: true,
    seeds: 3,
    k: 20,
    train: data.train,
    test: data.test,
  };
  const seeds = f.seeds as number;
  // progress on stderr as in pretrain and ablate: a line at each run's first and last step, else every 10 s
  const progress = new StudyProgress({ runs: seeds * names.length, stepsPerRun: steps });
  let index = 0;
  for (let seed = 0; seed < seeds; seed++) {
    for (const name of names) {
      const c = CONFIGS[name];
      const model = new IJEPA(preset, { seed, overrides: c.model });
      const trainer = new EMATrainer(model, { ...recipe(preset, steps), ...c.train, seed });
      const run = { index: ++index, count: seeds * names.length, name: `${name} / seed ${seed}` };
      progress.runStarted();
      const fit = await trainer.fit(data.train, {
        onStep: (s) => {
          const line = progress.step(run, s);
          if (line) log(line);
        },
      });
      const t = await runProbeSuite({
        ...probeOpts,
        encoders: [{ name, encoder: model.targetEncoder }],
        pixels: false,
        mean: trainer.stats?.mean,
        std: trainer.stats?.std,
      });
      collect(rows, name, t, 0, fit.seconds);
      log(
        `${name} seed ${seed}: ${formatDuration(fit.seconds)} training; ` +
          t.settings.map((s, i) => `${s.name} ${(100 * t.rows[0].probe[i].mean).toFixed(1)}`).join(", "),
      );
      trainer.dispose();
      model.dispose();
      progress.runDone();
    }
    const rand = new IJEPA(preset, { seed: 1000 + seed, parts: ["target_encoder"] });
    const t = await runProbeSuite({
      ...probeOpts,
      encoders: [{ name: "random init", encoder: rand.targetEncoder }],
      pixels: seed === 0,
    });
    collect(rows, "random init", t, 0);
    if (seed === 0) collect(rows, "raw pixels", t, 1);
    rand.dispose();
  }
  const cols = [...shots.map((s) => `${s}-shot`), "1%", "full"];
  if (json) {
    console.log(JSON.stringify({ steps, data: data.source, rows: [...rows.values()] }));
    return;
  }
  const lines = [
    `${preset} preset, ${steps} steps, batch ${base.batchSize}; ${
      dataName(data.source)
    }; linear probe % (kNN 1% in the last column)`,
    `| configuration | ${cols.join(" | ")} | kNN 1% | training time |`,
    `| --- | ${cols.map(() => "---").join(" | ")} | --- | --- |`,
  ];
  for (const r of rows.values()) {
    const time = r.seconds.length ? `${fmt(r.seconds.map((s) => s / 60))} min` : "";
    lines.push(
      `| ${r.name} | ${cols.map((c) => fmt(r.probe[c], r.drawStd[c])).join(" | ")} | ${
        fmt(r.knn["1%"] ?? [NaN])
      } | ${time} |`,
    );
  }
  console.log(lines.join("\n"));
}

if (import.meta.main) runMain(main);
