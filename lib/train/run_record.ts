/**
 * What a run folder records besides its checkpoints: `metrics.jsonl` (one JSON row per step, with
 * the wall-clock `time` and the training seconds `elapsed` counted across resumes) and
 * `config.json` (how the run was started: command line, preset, model and trainer settings,
 * versions, backend, data, seed, start time; and one entry per resume, appended, never rewritten).
 *
 * Rows written before `time` existed (and whose `elapsed` restarted at 0 at each resume) still
 * read: `time` is then absent, and {@link trainingSeconds} adds up the restarted segments.
 *
 * @example
 * ```ts
 * import { parseMetrics } from "./run_record.ts";
 * const rows = parseMetrics('{"step":1,"loss":0.5,"elapsed":1,"imgPerSec":8}\n{"step":2,"lo', "m.jsonl");
 * if (rows.length !== 1 || rows[0].time !== undefined) throw new Error("a cut last line is left out");
 * ```
 * @module
 */
import { trainingSeconds } from "../io/pretrained_card.ts";
import { dataSpecOf } from "../data/data_spec.ts";

export { trainingSeconds };

/** The metrics file name inside a run folder (one JSON object per line). */
export const METRICS_FILE = "metrics.jsonl";

/** The run-record file name inside a run folder. */
export const RUN_CONFIG_FILE = "config.json";

/** A resume of a run, as config.json lists it. */
export interface ResumeRecord {
  /** Wall-clock time of the resume (ISO). */
  time: string;
  /** The command line of the resuming process. */
  argv: string[];
  /** The step the run went on from. */
  step: number;
  /** The backend line of the resuming process. */
  backend: string;
  /** The dataset, as the resuming process's `data:` line says it. */
  data: string;
  /** Versions in the resuming process. */
  versions: RunVersions;
}

/** Versions of what ran. */
export interface RunVersions {
  /** The Deno version. */
  deno: string;
  /** The tfjs version. */
  tfjs: string;
  /** This toolkit: the git commit of its checkout when there is one, else null. */
  toolkit: string | null;
}

/** config.json of a run folder. */
export interface RunConfig {
  /** The command line that started the run (`deno task pretrain` flags), null when not known. */
  argv: string[] | null;
  /** Start time (ISO), null for a run started before config.json existed. */
  started: string | null;
  /** The model preset, null when the config matches none. */
  preset: string | null;
  /** The training seed. */
  seed: number;
  /** The dataset, as the `data:` line says it. */
  data: string;
  /**
   * The data as a spec that reads the same data from anywhere (lib/data/data_spec.ts): what `--resume`
   * reads. Absent in runs from before 2026-12-05.
   */
  dataSpec?: string;
  /** The data's split sizes, checked again on `--resume`. Absent in runs from before 2026-12-05. */
  dataCounts?: { train: number; test: number };
  /** The backend line (`setBackend`'s `line`). */
  backend: string;
  /** Versions of what ran. */
  versions: RunVersions;
  /** The model's resolved config (every field). */
  model: Record<string, unknown>;
  /** The trainer's options (recipe, steps, batch, schedules, masks, seed, ...). */
  trainer: Record<string, unknown>;
  /** One entry per resume, oldest first. */
  resumes: ResumeRecord[];
}

/** The git commit of the checkout this module lives in (read from .git, no subprocess), or null. */
export function toolkitVersion(): string | null {
  try {
    const git = new URL("../../.git/", import.meta.url);
    const head = Deno.readTextFileSync(new URL("HEAD", git)).trim();
    if (!head.startsWith("ref: ")) return `git ${head.slice(0, 12)}`;
    const ref = head.slice(5);
    let sha: string | undefined;
    try {
      sha = Deno.readTextFileSync(new URL(ref, git)).trim();
    } catch {
      const packed = Deno.readTextFileSync(new URL("packed-refs", git));
      sha = packed.split("\n").find((l) => l.endsWith(` ${ref}`))?.split(" ")[0];
    }
    return sha ? `git ${sha.slice(0, 12)} (${ref.replace(/^refs\/heads\//, "")})` : null;
  } catch {
    return null; // not a checkout (a copy, a package) or no read permission
  }
}

/** Versions of Deno, tfjs and this toolkit (tfjs imported here, so reading metrics never loads it). */
export async function runVersions(): Promise<RunVersions> {
  const tf = await import("@tensorflow/tfjs");
  return { deno: Deno.version.deno, tfjs: tf.version.tfjs, toolkit: toolkitVersion() };
}

/** Read a run folder's config.json; undefined when there is none. */
export async function readRunConfig(dir: string): Promise<RunConfig | undefined> {
  const path = `${dir}/${RUN_CONFIG_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as RunConfig;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * The `--data` a run was started with (config.json's command line), or undefined where it had none
 * (the default data) or the record holds no command line.
 */
export function runDataFlag(config: Pick<RunConfig, "argv"> | undefined): string | undefined {
  const argv = config?.argv;
  const i = argv?.findIndex((a) => a === "--data" || a.startsWith("--data=")) ?? -1;
  if (!argv || i < 0) return undefined;
  return argv[i] === "--data" ? argv[i + 1] : argv[i].slice("--data=".length);
}

/**
 * The data a resumed run reads: the run's own (its `dataSpec`; for runs from before, the `--data` of
 * its command line), or `given` where that names the same data; a sentence saying what differs where
 * it names other data.
 */
export async function resumeData(
  config: RunConfig | undefined,
  given: string | undefined,
): Promise<{ spec?: string; problem?: string }> {
  const run = config?.dataSpec;
  if (run === undefined) return { spec: given ?? runDataFlag(config) };
  // a folder moved since: --data says where it is now (the split sizes are still checked)
  const moved = run !== "fashion-mnist-subset" && !(await Deno.stat(run).then(() => true, () => false));
  if (given === undefined) {
    if (!moved) return { spec: run };
    return { problem: `the run trained on ${run}, which is not there now: give --data where it is` };
  }
  const other = await dataSpecOf(given);
  if (other === run || moved) return { spec: given };
  return {
    problem:
      `the run trained on ${run}; --data ${given} is ${other}; resume without --data, or start a new run`,
  };
}

/** Where a resumed run's data no longer has the split sizes it had (a folder that changed): what differs. */
export function dataCountsChanged(
  config: RunConfig | undefined,
  data: { train: { n: number }; test: { n: number } },
): string | undefined {
  const c = config?.dataCounts;
  if (!c || (c.train === data.train.n && c.test === data.test.n)) return undefined;
  return `the run's data had ${c.train} training and ${c.test} test images, it has ${data.train.n} and ${data.test.n} now`;
}

/** The first and last loss of a run folder's metrics.jsonl, if it can be read. */
export async function runLosses(outDir: string): Promise<{ first: number; last: number } | undefined> {
  try {
    const lines = (await Deno.readTextFile(`${outDir}/${METRICS_FILE}`)).trim().split("\n");
    const first = JSON.parse(lines[0]).loss, last = JSON.parse(lines[lines.length - 1]).loss;
    return typeof first === "number" && typeof last === "number" ? { first, last } : undefined;
  } catch {
    return undefined;
  }
}

/** Write config.json (atomically: a killed process leaves the old file or the new one). */
export async function writeRunConfig(dir: string, config: RunConfig): Promise<void> {
  const path = `${dir}/${RUN_CONFIG_FILE}`;
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, JSON.stringify(config, null, 2) + "\n");
  await Deno.rename(tmp, path);
}

/**
 * Add a resume to config.json. A run folder from before config.json existed gets one, made by
 * `fallback` from what the checkpoint knows (`argv` and `started` null).
 */
export async function recordResume(
  dir: string,
  resume: ResumeRecord,
  fallback: () => Omit<RunConfig, "resumes">,
): Promise<RunConfig> {
  const config = (await readRunConfig(dir)) ?? { ...fallback(), resumes: [] };
  config.resumes = [...(config.resumes ?? []), resume];
  await writeRunConfig(dir, config);
  return config;
}

/** A metrics.jsonl row (lib/train/trainer.ts StepInfo, plus `time`). */
export interface MetricsRow {
  /** Steps completed. */
  step: number;
  /** Loss of this step. */
  loss: number;
  /** Seconds of training so far, counting across resumes. */
  elapsed: number;
  /** Images per second over this step. */
  imgPerSec: number;
  /** Mean per-dimension std of the target features, when measured. */
  targetStd?: number;
  /** Learning rate of this step. */
  lr?: number;
  /** Wall-clock time of the step (ISO); absent in rows written before it was recorded. */
  time?: string;
  /** Any other field the trainer reports. */
  [key: string]: unknown;
}

/**
 * Parse metrics.jsonl text. A last line cut short (a process killed while writing) is left out;
 * any other line that is not a row is an error naming the file and the line.
 */
export function parseMetrics(text: string, path: string): MetricsRow[] {
  const lines = text.split("\n");
  const rows: MetricsRow[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let row: MetricsRow;
    try {
      row = JSON.parse(line);
    } catch (e) {
      if (lines.slice(i + 1).every((l) => !l.trim())) return; // the cut last line
      throw new Error(`${path}: line ${i + 1} is not JSON (${(e as Error).message})`);
    }
    if (
      typeof row !== "object" || row === null || typeof row.step !== "number" || typeof row.loss !== "number"
    ) {
      throw new Error(`${path}: line ${i + 1} is not a metrics row (expected "step" and "loss" numbers)`);
    }
    rows.push(row);
  });
  return rows;
}

/** Append one metrics row: numbers to 7 significant digits, and the wall-clock `time` (ISO). */
export async function appendMetricsRow(path: string, row: Record<string, unknown>): Promise<void> {
  const rec: Record<string, unknown> = { ...row };
  for (const [k, v] of Object.entries(rec)) if (typeof v === "number") rec[k] = Number(v.toPrecision(7));
  rec.time = new Date().toISOString();
  await Deno.writeTextFile(path, JSON.stringify(rec) + "\n", { append: true });
}

/**
 * Drop metrics rows past `step` (written after the checkpoint a resumed run starts from), and a
 * line cut short by a kill; returns the text kept.
 */
export async function truncateMetrics(path: string, step: number): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return "";
  }
  const stepOf = (l: string) => {
    try {
      return JSON.parse(l).step as number;
    } catch {
      return Infinity;
    }
  };
  const kept = text.split("\n").filter((l) => l.trim() && stepOf(l) <= step).map((l) => l + "\n").join("");
  await Deno.writeTextFile(path, kept);
  return kept;
}
