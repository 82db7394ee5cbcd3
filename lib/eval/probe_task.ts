/**
 * What the probe task (`deno task probe`) checks of its input, and the short probe `deno task
 * pretrain` runs at the end of training ({@link runAfterPretrain}). Errors are plain `Error`s with
 * the flag in the message; the command line turns them into usage errors.
 *
 * @example
 * ```ts
 * import { parseShots } from "./probe_task.ts";
 * if (parseShots("10,1,5").join() !== "1,5,10") throw new Error("shots");
 * ```
 * @module
 */
import { type ModelConfig, modelConfig } from "../model/config.ts";
import type { DatasetSplits } from "../data/dataset.ts";
import type { IJEPA } from "../model/ijepa.ts";
import { Rng } from "../engine/rng.ts";
import { VisionTransformer } from "../model/vit.ts";
import { parseReadout, type Readout } from "./features.ts";
import { type ProbeTable, runProbeSuite } from "./suite.ts";
import { formatProbeTable } from "./report.ts";

/** Parse `--shots` ("1,5,10,50"; "" for none) into positive integers, ascending, without repeats. */
export function parseShots(text: string, task = "probe"): number[] {
  if (text.trim() === "") return [];
  const out = text.split(",").map((s) => Number(s.trim()));
  if (out.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new Error(`${task}: --shots expects positive integers separated by commas, got "${text}"`);
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

/**
 * Split n-shot settings into those a label pool can give (every class has at least n images) and
 * those it cannot, with the pool's smallest class size: a folder of your own images may hold fewer
 * than 50 of a class.
 */
export function shotsThatFit(
  shots: number[],
  pool: { labels: ArrayLike<number>; classNames: readonly string[] },
): { fit: number[]; dropped: number[]; smallest: number } {
  const counts = new Array<number>(pool.classNames.length).fill(0);
  for (let i = 0; i < pool.labels.length; i++) counts[pool.labels[i]]++;
  const smallest = Math.min(...counts);
  return { fit: shots.filter((s) => s <= smallest), dropped: shots.filter((s) => s > smallest), smallest };
}

/** Parse `--readout` ("avgpool" or a comma list). */
export function parseReadouts(text: string): Readout[] {
  try {
    return [...new Set(text.split(",").map((s) => parseReadout(s.trim())))];
  } catch (e) {
    throw new Error(`probe: --readout: ${(e as Error).message}`);
  }
}

const SHAPE_KEYS = ["imageSize", "patchSize", "channels", "width", "depth", "heads", "mlpHidden"] as const;

/**
 * Check that weights have the encoder shape of the preset the user named; the error lists every
 * field that differs.
 */
export function checkPresetMatches(
  preset: string,
  cfg: ModelConfig,
  file: string,
  savedPreset?: unknown,
): void {
  const want = modelConfig(preset);
  const diff = SHAPE_KEYS.filter((k) => want[k] !== cfg[k]);
  if (diff.length > 0) {
    throw new Error(
      `probe: --preset ${preset} does not match the weights in ${file}` +
        (typeof savedPreset === "string" ? ` (saved from preset ${savedPreset})` : "") + ": " +
        diff.map((k) => `${k} ${cfg[k]} in the file, ${want[k]} in ${preset}`).join("; ") +
        "; drop --preset to use the file's own shape",
    );
  }
}

/** What `deno task pretrain` hands to {@link runAfterPretrain}. */
export interface AfterPretrain {
  /** The final weights file just written. */
  weights: string;
  /** The trained model (its target encoder is read; not disposed here). */
  model: IJEPA;
  /** The data it trained on: the pool and the test set. */
  data: DatasetSplits;
  /** Print nothing (the caller puts the returned table in its JSON line). */
  json: boolean;
  /** Input normalisation used in training (default: channel statistics of the pool). */
  stats?: { mean: number[]; std: number[] };
}

/**
 * The low-shot probe `deno task pretrain` runs at the end: the trained target encoder beside a
 * random init of the same shape and raw pixels, 1/5/10/50-shot and 1%, 3 draws (no all-labels
 * column, so only the labelled images and the test set are encoded). Prints the table unless
 * `json`; returns it.
 */
export function runAfterPretrain(o: AfterPretrain): Promise<ProbeTable>;
/** Callers that type their input loosely; it is checked at run time. */
export function runAfterPretrain(o: unknown): Promise<ProbeTable>;
export async function runAfterPretrain(input: unknown): Promise<ProbeTable> {
  const o = input as AfterPretrain;
  if (!o || typeof o.weights !== "string" || !o.model?.targetEncoder || !o.data?.train || !o.data?.test) {
    throw new Error(
      "runAfterPretrain: expected { weights: string, model: IJEPA, data: DatasetSplits, json: boolean }",
    );
  }
  const random = new VisionTransformer(o.model.cfg, new Rng(0));
  try {
    const counts = new Array<number>(o.data.train.classNames.length).fill(0);
    for (const c of o.data.train.labels) counts[c]++;
    const smallest = Math.min(...counts);
    const table = await runProbeSuite({
      encoders: [{ name: "I-JEPA", encoder: o.model.targetEncoder }, {
        name: "random init",
        encoder: random,
      }],
      pixels: true,
      train: o.data.train,
      test: o.data.test,
      shots: [1, 5, 10, 50].filter((s) => s <= smallest),
      full: false,
      seeds: 3,
      mean: o.stats?.mean,
      std: o.stats?.std,
      log: o.json ? undefined : (s) => console.error(s),
    });
    if (!o.json) {
      console.log(formatProbeTable(table));
      console.log(
        `all labels, other readouts, a chart: deno task probe --weights ${o.weights} --png probe.png`,
      );
    }
    return table;
  } finally {
    random.dispose();
  }
}
