/**
 * How fast the masker draws: {@link benchMasker} times `sample` at a batch size (used by
 * `deno task bench`).
 *
 * @module
 */

import { Rng } from "../engine/rng.ts";
import type { MultiBlockMasker } from "./masker.ts";

/** What {@link benchMasker} measured. */
export interface MaskerBench {
  /** Batches drawn. */
  batches: number;
  /** Wall-clock seconds for all of them. */
  seconds: number;
  /** Examples (one context + M targets each) per second. */
  masksPerSecond: number;
  /** Milliseconds per batch. */
  msPerBatch: number;
}

/**
 * Time `masker.sample` at `batchSize` for about `seconds` (after a short warm-up).
 *
 * @example
 * ```ts
 * import { benchMasker } from "./bench.ts";
 * import { createMasker } from "./masker.ts";
 * const r = benchMasker(createMasker({ rows: 14, cols: 14 }), 64, 0.05);
 * if (!(r.masksPerSecond > 0)) throw new Error("no speed measured");
 * ```
 */
export function benchMasker(
  masker: MultiBlockMasker,
  batchSize: number,
  seconds = 1,
  seed = 0,
): MaskerBench {
  const rng = new Rng(seed);
  const warm = performance.now();
  while (performance.now() - warm < Math.min(200, seconds * 200)) masker.sample(rng, batchSize);
  let batches = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    masker.sample(rng, batchSize);
    batches++;
    t = performance.now();
  } while (t - t0 < seconds * 1000);
  const s = (t - t0) / 1000;
  return {
    batches,
    seconds: s,
    masksPerSecond: (batches * batchSize) / s,
    msPerBatch: (1000 * s) / batches,
  };
}
