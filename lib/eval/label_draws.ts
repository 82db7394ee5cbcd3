/**
 * Which images are labelled: the settings of the probe suite (n-shot, 1% of each class, all
 * labels) and the class-balanced label subsets drawn for them, nested across settings by seed.
 *
 * @module
 */
import type { Rng } from "../engine/rng.ts";

/**
 * A class-balanced subset of a label pool: `perClass` indices of every class (a number, or one
 * count per class), drawn without replacement. Each class's indices are shuffled with `rng` in class
 * order and the first `perClass` kept, so the same seed gives the same subset, and a larger
 * `perClass` with the same seed gives a superset. Returns the indices in ascending order.
 *
 * @example
 * ```ts
 * import { sampleLabelSubset } from "./label_draws.ts";
 * import { Rng } from "../engine/rng.ts";
 * const labels = new Int32Array([0, 1, 0, 1, 0, 1, 2, 2]);
 * const idx = sampleLabelSubset(labels, 2, new Rng(0)); // two of each class
 * if (idx.length !== 6) throw new Error(`expected 6 indices, got ${idx.length}`);
 * ```
 */
export function sampleLabelSubset(
  labels: Int32Array,
  perClass: number | readonly number[],
  rng: Rng,
  classes?: number,
): Int32Array {
  let K = classes ?? 0;
  if (classes === undefined) { for (let i = 0; i < labels.length; i++) K = Math.max(K, labels[i] + 1); }
  if (Array.isArray(perClass) && classes === undefined) K = Math.max(K, perClass.length);
  const want = typeof perClass === "number" ? new Array<number>(K).fill(perClass) : [...perClass];
  if (want.length !== K) {
    throw new Error(`sampleLabelSubset: expected ${K} per-class counts (one per class), got ${want.length}`);
  }
  for (const w of want) {
    if (!(Number.isInteger(w) && w >= 0)) {
      throw new Error(
        `sampleLabelSubset: per-class counts must be non-negative integers, got ${JSON.stringify(want)}`,
      );
    }
  }
  const byClass: number[][] = Array.from({ length: K }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!(c >= 0 && c < K)) {
      throw new Error(`sampleLabelSubset: label ${c} at index ${i} is out of range: expected 0..${K - 1}`);
    }
    byClass[c].push(i);
  }
  const out: number[] = [];
  for (let c = 0; c < K; c++) {
    if (byClass[c].length < want[c]) {
      throw new Error(
        `sampleLabelSubset: ${want[c]} labelled images of class ${c} requested, the pool has ${
          byClass[c].length
        }`,
      );
    }
    rng.shuffle(byClass[c]);
    for (let j = 0; j < want[c]; j++) out.push(byClass[c][j]);
  }
  return Int32Array.from(out).sort();
}

/** One column of the table: a way of choosing the labelled images. */
export interface ProbeSetting {
  /** "1-shot", "5-shot", ..., "1%", "full". */
  name: string;
  /** Labelled images per class. [classes] */
  perClass: number[];
  /** Labelled images in all. */
  labelled: number;
  /** Label subsets drawn (1 for "full"). */
  draws: number;
}

/** The settings of a suite for a pool with `counts[c]` images of class c. */
export function probeSettings(
  counts: readonly number[],
  opts: { shots?: number[]; onePercent?: boolean; full?: boolean; seeds?: number } = {},
): ProbeSetting[] {
  const seeds = opts.seeds ?? 3;
  if (!(Number.isInteger(seeds) && seeds >= 1)) {
    throw new Error(`probe: seeds must be a positive integer, got ${seeds}`);
  }
  const K = counts.length;
  const total = counts.reduce((a, b) => a + b, 0);
  const out: ProbeSetting[] = [];
  const smallest = Math.min(...counts);
  for (const s of opts.shots ?? [1, 5, 10, 50]) {
    if (!(Number.isInteger(s) && s >= 1)) throw new Error(`probe: shots must be positive integers, got ${s}`);
    if (s > smallest) {
      throw new Error(
        `probe: ${s}-shot needs ${s} labelled images of every class; the pool's smallest class has ${smallest}`,
      );
    }
    out.push({ name: `${s}-shot`, perClass: new Array(K).fill(s), labelled: s * K, draws: seeds });
  }
  if (opts.onePercent ?? true) {
    const per = counts.map((c) => Math.max(1, Math.round(0.01 * c)));
    out.push({ name: "1%", perClass: per, labelled: per.reduce((a, b) => a + b, 0), draws: seeds });
  }
  if (opts.full ?? true) out.push({ name: "full", perClass: [...counts], labelled: total, draws: 1 });
  if (out.length === 0) throw new Error("probe: no settings: give shots, or keep 1% or full");
  return out;
}
