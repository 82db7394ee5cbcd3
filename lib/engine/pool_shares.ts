/**
 * How work is shared between the main thread and the worker threads of lib/engine/gemm_pool.ts:
 * {@link cutUnits} splits a count of whole units (rows, blocks of rows, batch items) by weight,
 * {@link split} cuts a matrix product that way, and {@link learnSpeeds} keeps each worker's speed
 * relative to the main thread's, learned from the work split so far, so that every thread finishes at
 * once.
 *
 * @module
 */
import type { GemmJob, Part } from "./gemm_copies.ts";

/**
 * Each worker's speed relative to the main thread's on its share (the main thread's copies
 * included). Measured 2026-12-04 on the 2-core machine: an equal split left the main thread
 * waiting 2 ms of a 15 ms product for its worker (the main thread's copies and the worker's wake-up).
 */
let speeds: number[] = [];

/** How far one timed share moves the learned speeds (an exponential average). */
const SPEED_STEP = 0.2;

/** Start learning afresh for `workers` workers, all as fast as the main thread. */
export function resetSpeeds(workers: number): void {
  speeds = Array.from({ length: workers }, () => 1);
}

/** The weights of a split: the main thread's (1), then each worker's learned speed. */
export function shareWeights(): number[] {
  return [1, ...speeds];
}

/**
 * Cut `units` whole units into consecutive shares proportional to `weights`: the returned `cuts`
 * has one more entry than `weights`, share `s` is `[cuts[s], cuts[s + 1])`. A share may be empty
 * (callers skip those), except the first (the main thread's) when there are two units or more: a
 * split whose main share is empty would go back to one thread, and nothing would be learned from it.
 */
export function cutUnits(units: number, weights: number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const cuts = [0];
  let acc = 0;
  for (const w of weights) {
    acc += w;
    cuts.push(Math.min(units, Math.round(units * acc / total)));
  }
  cuts[weights.length] = units;
  if (units >= 2 && cuts[1] === 0) {
    for (let s = 1; s < weights.length; s++) {
      cuts[s] = Math.max(cuts[s], 1);
    }
  }
  return cuts;
}

/**
 * Learn from one split: the main thread did `mainWork` (any unit proportional to time) in `mainMs`
 * (its copies included); each worker `w` did `work` in `ms` of its own compute.
 */
export function learnSpeeds(
  mainWork: number,
  mainMs: number,
  done: { w: number; work: number; ms: number }[],
) {
  const mainRate = mainWork / mainMs;
  if (!(mainMs >= 0.5) || !(mainRate > 0)) return; // too short to time
  for (const d of done) {
    if (!(d.ms >= 0.5) || d.w >= speeds.length) continue;
    // one timing is noisy on a shared machine: no single one moves a share far
    const ratio = Math.min(2, Math.max(0.5, d.work / d.ms / mainRate));
    speeds[d.w] = speeds[d.w] * (1 - SPEED_STEP) + ratio * SPEED_STEP;
  }
}

/**
 * Split a product into shares proportional to `weights` (the main thread's first), by batch items
 * (batch > 1) or by rows in multiples of 4 (see {@link cutUnits}).
 */
export function split(job: GemmJob, weights: number[]): Part[] {
  const cuts = cutUnits(job.batch > 1 ? job.batch : Math.ceil(job.m / 4), weights);
  return weights.map((_, s) =>
    job.batch > 1
      ? { b0: cuts[s], b1: cuts[s + 1], i0: 0, i1: job.m }
      : { b0: 0, b1: 1, i0: Math.min(job.m, 4 * cuts[s]), i1: Math.min(job.m, 4 * cuts[s + 1]) }
  );
}

/** Work in a share, in rows of the product (batch items count as m rows each). */
export function rowsOf(part: Part): number {
  return (part.b1 - part.b0) * (part.i1 - part.i0);
}
