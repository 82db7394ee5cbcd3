/**
 * The paper's two most taught ablations, rerun at small scale with everything else held fixed:
 *
 * - `targets` (Table 7): predict target-encoder representations (I-JEPA) or normalised pixels,
 *   with the same encoder, masks, steps and seed. Both arms keep an EMA target encoder, so the
 *   probe reads the same kind of encoder in both; the context encoder is probed too.
 * - `masking` (Table 6): multi-block with 4 targets, multi-block with 1, rasterized (quadrants),
 *   one large block, and random patches.
 *
 * Each arm is pretrained and probed (1% labels, 10-shot, and kNN on the 1% subsets) on the same label
 * subsets, beside a random-init encoder and raw pixels. Every finished arm is written to
 * `results.json` at once, and an arm's training checkpoints as it goes, so an interrupted study
 * resumes where it stopped.
 *
 * The arms themselves are in lib/eval/ablate_arms.ts.
 *
 * @module
 */
export { type Arm, pickArms, STUDIES, type Study, studyArms } from "./ablate_arms.ts";
import { type ModelConfig, modelConfig } from "../model/config.ts";
import type { DatasetSplits } from "../data/dataset.ts";
import { IJEPA } from "../model/ijepa.ts";
import { pickArms, type Study, studyArms } from "./ablate_arms.ts";
import { formatProbeTable } from "./report.ts";
import { type ProbeTable, runProbeSuite } from "./suite.ts";
import { shotsThatFit } from "./probe_task.ts";
import { recipe } from "../train/recipes.ts";
import { CHECKPOINT_FILE, EMATrainer, type StepInfo } from "../train/trainer.ts";

/** Options of {@link runStudy}. */
export interface StudyOptions {
  /** Which study to run. */
  study: Study;
  /** The model preset every arm trains. */
  preset: string;
  /** Training steps per arm (default: the preset's recipe). */
  steps?: number;
  /** Training seeds per arm. */
  seeds: number;
  /** The train and test images. */
  data: DatasetSplits;
  /** Folder for results.json and each arm's run. */
  outDir: string;
  /** Label subsets drawn per probe setting (default 3). */
  probeSeeds?: number;
  /** Only these arms, by name (default all); results.json keeps any others an earlier run finished. */
  arms?: readonly string[];
  /**
   * Model settings for every arm alike (e.g. `{ predictorDepth: 2 }`), under each arm's own; the
   * random-init baseline gets them too. Recorded in results.json; a resumed study must match.
   */
  model?: Partial<ModelConfig>;
  /**
   * The target encoder's EMA momentum, from [0] to [1] over each run (default: the recipe's, the
   * official 0.996 to 1). Recorded in results.json when set; a resumed study must match.
   */
  ema?: [number, number];
  /** Where progress lines go (default none). */
  log?: (line: string) => void;
  /**
   * Progress: `start` before an arm x seed run trains, `done` once it is trained and probed,
   * `skipped` for a run finished by an earlier process; `onStep` at each of its training steps.
   */
  onRun?: (run: StudyRun, event: "start" | "done" | "skipped") => void;
  /** Called at each training step of each run. */
  onStep?: (run: StudyRun, s: StepInfo) => void | Promise<void>;
}

/** An arm x seed run's place in a study, 1-based (`index` of `count`), for progress lines. */
export interface StudyRun {
  /** This run's 1-based position. */
  index: number;
  /** Runs in the study (arms x seeds). */
  count: number;
  /** `<arm> / seed <n>`, the key of results.json. */
  name: string;
}

/** One finished arm and seed. */
export interface ArmResult {
  /** The arm's name. */
  arm: string;
  /** The training seed. */
  seed: number;
  /** Seconds of training. */
  seconds: number;
  /** Loss at the first training step. */
  firstLoss: number;
  /** Loss at the last training step. */
  lastLoss: number;
  /** Probe table rows of this arm's encoders (target, and context for the targets study). */
  table: ProbeTable;
}

/** The results file. */
export interface StudyResults {
  /** Which study ran. */
  study: Study;
  /** The model preset. */
  preset: string;
  /** Training steps per arm. */
  steps: number;
  /** Training seeds per arm. */
  seeds: number;
  /** Where the data came from, in words. */
  data: string;
  /** The study-wide model settings ({@link StudyOptions.model}), when any. */
  model?: Partial<ModelConfig>;
  /** The EMA momentum range ({@link StudyOptions.ema}), when not the recipe's. */
  ema?: [number, number];
  /** Finished runs, keyed `<arm> / seed <n>`. */
  arms: Record<string, ArmResult>;
  /** The random-init and raw-pixel baselines, probed once. */
  baselines?: ProbeTable;
}

async function readResults(path: string): Promise<StudyResults | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(
      `${path}: cannot read the study's results (${(e as Error).message}); move it away to start over`,
    );
  }
}

async function writeResults(path: string, r: StudyResults): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, JSON.stringify(r, null, 1));
  await Deno.rename(tmp, path);
}

/**
 * Run (or resume) a study: every arm x seed not yet in `results.json` is trained and probed; the
 * random-init and raw-pixel baselines are probed once on the same label subsets.
 */
export async function runStudy(o: StudyOptions): Promise<StudyResults> {
  const log = o.log ?? (() => {});
  const base = recipe(o.preset);
  const steps = o.steps ?? base.steps;
  const path = `${o.outDir}/results.json`;
  // what the data cannot give is refused before the study folder is made and anything trains
  const { dropped, smallest } = shotsThatFit([10], o.data.train);
  if (o.data.train.n < base.batchSize || dropped.length > 0) {
    throw new RangeError(
      `runStudy: the ${o.preset} recipe's batch of ${base.batchSize} images and the 10-shot probe need at ` +
        `least ${base.batchSize} training images and 10 of every class; ${o.data.source} has ${o.data.train.n}, ` +
        `${smallest} in its smallest class`,
    );
  }
  await Deno.mkdir(o.outDir, { recursive: true });
  let results = await readResults(path);
  const shared = o.model ?? {};
  modelConfig(o.preset, shared); // a wrong key or value fails here, before any training
  const sharedText = JSON.stringify(shared);
  const ema = o.ema ?? base.ema;
  if (!(ema.length === 2 && ema.every((m) => m >= 0 && m <= 1))) {
    throw new RangeError(`runStudy: ema must be two momenta in [0, 1], got ${JSON.stringify(o.ema)}`);
  }
  if (results && results.data !== undefined && results.data !== o.data.source) {
    // other images (another data set, or other nuisance backgrounds) must not be mixed into the tables
    throw new Error(
      `${path} holds a study on "${results.data}"; this run's data is "${o.data.source}": use another --out`,
    );
  }
  if (
    results &&
    (results.study !== o.study || results.preset !== o.preset || results.steps !== steps ||
      JSON.stringify(results.model ?? {}) !== sharedText || `${results.ema ?? base.ema}` !== `${ema}`)
  ) {
    throw new Error(
      `${path} holds a ${results.study} study of ${results.preset} for ${results.steps} steps, model ` +
        `${JSON.stringify(results.model ?? {})}, EMA ${results.ema ?? base.ema}; this run asks for ` +
        `${o.study}, ${o.preset}, ${steps} steps, model ${sharedText}, EMA ${ema}: use another --out`,
    );
  }
  // a study resumed with more seeds for every arm reports them all (with --arms, the header counts
  // each arm's seeds instead: see formatSummary)
  if (results && o.seeds > results.seeds && !o.arms?.length) results.seeds = o.seeds;
  if (!results) {
    results = {
      study: o.study,
      preset: o.preset,
      steps,
      seeds: o.seeds,
      data: o.data.source,
      ...(Object.keys(shared).length ? { model: shared } : {}),
      ...(o.ema ? { ema: o.ema } : {}),
      arms: {},
    };
    // written before the first run trains, so that a study killed in its first run and restarted
    // with other settings is refused instead of resuming that run's checkpoint
    await writeResults(path, results);
  }
  const probeOpts = { shots: [10], onePercent: true, full: false, seeds: o.probeSeeds ?? 3, k: 20 };
  const grid = modelConfig(o.preset, shared).gridSize;
  const arms = pickArms(o.study, grid, o.arms);
  const runs = arms.flatMap((arm) =>
    Array.from({ length: o.seeds }, (_, seed) => ({ arm, seed, key: `${arm.name} / seed ${seed}` }))
  ).map((r, i) => ({ ...r, run: { index: i + 1, count: arms.length * o.seeds, name: r.key } as StudyRun }));
  // runs finished by an earlier process are reported first, so that a progress display counts only
  // the runs left from the start (its ETA would otherwise include them)
  for (const { key, run } of runs) {
    if (!results.arms[key]) continue;
    log(`${key}: done earlier, skipped`);
    o.onRun?.(run, "skipped");
  }
  for (const { arm, seed, key, run } of runs) {
    if (results.arms[key]) continue;
    o.onRun?.(run, "start");
    const runDir = `${o.outDir}/${arm.name.replace(/[^a-zA-Z0-9]+/g, "-")}-s${seed}`;
    await Deno.mkdir(runDir, { recursive: true });
    let trainer: EMATrainer;
    try {
      trainer = await EMATrainer.resume(`${runDir}/${CHECKPOINT_FILE}`, { outDir: runDir });
      log(`${key}: resuming at step ${trainer.step}`);
    } catch {
      const model = new IJEPA(o.preset, { seed, overrides: { ...shared, ...arm.model } });
      trainer = new EMATrainer(model, {
        ...recipe(o.preset, steps),
        ema,
        seed,
        outDir: runDir,
        checkpointEvery: 50,
        masks: { ...base.masks, ...arm.masks },
      });
    }
    const onStep = o.onStep;
    const fit = await trainer.fit(o.data.train, onStep ? { onStep: (s) => onStep(run, s) } : {});
    const losses = (await Deno.readTextFile(`${runDir}/metrics.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l).loss as number
    );
    const m = trainer.model;
    const encoders = [{ name: `${arm.name}: target encoder`, encoder: m.targetEncoder }];
    if (o.study === "targets") encoders.push({ name: `${arm.name}: context encoder`, encoder: m.encoder });
    const table = await runProbeSuite({
      encoders,
      pixels: false,
      train: o.data.train,
      test: o.data.test,
      ...probeOpts,
      seed: 0,
      mean: trainer.stats?.mean,
      std: trainer.stats?.std,
    });
    results.arms[key] = {
      arm: arm.name,
      seed,
      seconds: fit.seconds,
      firstLoss: losses[0],
      lastLoss: losses[losses.length - 1],
      table,
    };
    await writeResults(path, results);
    log(`${key}: ${formatRowLine(table)}`);
    o.onRun?.(run, "done");
    trainer.dispose();
    m.dispose();
  }
  if (!results.baselines) {
    const rand = new IJEPA(o.preset, { seed: 12345, overrides: shared });
    results.baselines = await runProbeSuite({
      encoders: [{ name: "random init", encoder: rand.targetEncoder }],
      pixels: true,
      train: o.data.train,
      test: o.data.test,
      ...probeOpts,
      seed: 0,
    });
    rand.dispose();
    await writeResults(path, results);
  }
  return results;
}

function formatRowLine(t: ProbeTable): string {
  return t.rows.map((r) =>
    `${r.method}: ` + t.settings.map((s, i) => `${s.name} ${(100 * r.probe[i].mean).toFixed(1)}%`).join(", ")
  ).join("; ");
}

/** One summary row per arm (and baseline): mean and spread over training seeds of each column. */
export interface SummaryRow {
  /** The probe row's method: an arm's encoder, or a baseline. */
  method: string;
  /** Column name -> [mean %, std %]. */
  cells: Record<string, [number, number]>;
  /** The paper's 1%-ImageNet figure, for arms that have one. */
  paper?: number;
}

/** Summarise a study: per arm and encoder, 1% probe, 10-shot probe and kNN (1%), mean and spread. */
export function summarise(r: StudyResults): SummaryRow[] {
  const arms = studyArms(r.study, modelConfig(r.preset, r.model ?? {}).gridSize);
  const byMethod = new Map<
    string,
    { cells: Record<string, number[]>; paper?: number; draws: Record<string, number[]> }
  >();
  const add = (t: ProbeTable, paper?: number) => {
    for (const row of t.rows) {
      const e = byMethod.get(row.method) ?? { cells: {}, paper, draws: {} };
      t.settings.forEach((s, i) => {
        (e.cells[`probe ${s.name}`] ??= []).push(100 * row.probe[i].mean);
        (e.draws[`probe ${s.name}`] ??= []).push(...row.probe[i].runs.map((x) => 100 * x));
        if (row.rankMe !== undefined && s.name === "1%") {
          (e.cells["RankMe"] ??= []).push(row.rankMe); // results.json files before it have none
          e.draws["RankMe"] ??= [];
        }
        if (row.knn && s.name === "1%") {
          (e.cells["kNN 1%"] ??= []).push(100 * row.knn[i].mean);
          (e.draws["kNN 1%"] ??= []).push(...row.knn[i].runs.map((x) => 100 * x));
        }
      });
      byMethod.set(row.method, e);
    }
  };
  // the study's arm order (results.json keeps the order the runs finished in), then by seed
  const order = (a: ArmResult) => arms.findIndex((x) => x.name === a.arm) * 1e6 + a.seed;
  for (const a of Object.values(r.arms).sort((x, y) => order(x) - order(y))) {
    add(a.table, arms.find((x) => x.name === a.arm)?.paper);
  }
  if (r.baselines) add(r.baselines);
  const out: SummaryRow[] = [];
  for (const [method, e] of byMethod) {
    const cells: Record<string, [number, number]> = {};
    for (const [col, vals] of Object.entries(e.cells)) {
      // spread over training seeds when there are several, else over the probe's label draws
      // (RankMe has no label draws: with one seed its spread is NaN, printed as none)
      const spreadOf = vals.length > 1 ? vals : e.draws[col];
      cells[col] = [mean(vals), col === "RankMe" && spreadOf.length < 2 ? NaN : std(spreadOf)];
    }
    out.push({ method, cells, paper: e.paper });
  }
  return out;
}

function mean(a: number[]): number {
  return a.reduce((x, y) => x + y, 0) / a.length;
}
function std(a: number[]): number {
  if (a.length < 2) return 0;
  const m = mean(a);
  return Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1));
}

/** A plain-text table of {@link summarise}'s rows, with the paper's figure beside each arm. */
export function formatSummary(rows: SummaryRow[], r: StudyResults): string {
  const cols = ["probe 1%", "probe 10-shot", "kNN 1%", "RankMe"];
  const head = ["method".padEnd(42), ...cols.map((c) => c.padStart(14)), "paper (1% IN)".padStart(14)].join(
    "",
  );
  // training seeds per arm: one figure when every arm has the same number
  const perArm = new Map<string, number>(studyArms(r.study).map((a) => [a.name, 0]));
  for (const a of Object.values(r.arms)) perArm.set(a.arm, (perArm.get(a.arm) ?? 0) + 1);
  for (const [arm, n] of perArm) if (n === 0) perArm.delete(arm);
  const counts = new Set(perArm.values());
  const seeds = counts.size <= 1
    ? `${[...counts][0] ?? r.seeds} seed(s)`
    : `seeds per arm: ${[...perArm].map(([arm, n]) => `${arm} ${n}`).join(", ")}`;
  const lines = [
    `${r.study} study, preset ${r.preset}${settingsText(r)}, ${r.steps} steps, ${seeds}; ${r.data}`,
    head,
    "-".repeat(head.length),
  ];
  for (const row of rows) {
    const cells = cols.map((c) => {
      const v = row.cells[c];
      const text = !v
        ? "-"
        : Number.isNaN(v[1])
        ? v[0].toFixed(1)
        : `${v[0].toFixed(1)} ± ${v[1].toFixed(1)}`;
      return text.padStart(14);
    });
    lines.push(
      [row.method.padEnd(42), ...cells, (row.paper !== undefined ? row.paper.toFixed(1) : "").padStart(14)]
        .join(""),
    );
  }
  return lines.join("\n");
}

/** The study-wide settings for a summary's first line: ` (patchSize=2, EMA 0.9999 -> 1)` or "". */
function settingsText(r: StudyResults): string {
  const parts = Object.entries(r.model ?? {}).map(([k, v]) => `${k}=${v}`);
  if (r.ema) parts.push(`EMA ${r.ema[0]} -> ${r.ema[1]}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

export { formatProbeTable };
