/**
 * Statistics of a masker over many batches, to compare with the official collator: context size
 * per example, target block size, the collated lengths under `truncate` and `pad`, what each
 * collation drops or wastes, and how often the fallback was needed. `deno task masks` prints them.
 *
 * @example
 * ```ts
 * import { maskStatistics } from "./statistics.ts";
 * import { createMasker } from "./masker.ts";
 * const s = maskStatistics(createMasker({ rows: 7, cols: 7 }), { batch: 16, batches: 5, seed: 0 });
 * if (s.contextSize.min < 10) throw new Error("minKeep 10 not respected");
 * ```
 * @module
 */
import { Rng } from "../engine/rng.ts";
import type { MaskSample } from "./batch.ts";
import type { MultiBlockMasker } from "./masker.ts";

/** Mean, standard deviation, min and max of one quantity. */
export interface Summary {
  mean: number;
  std: number;
  min: number;
  max: number;
}

/** What {@link maskStatistics} reports. */
export interface MaskStatistics {
  examples: number;
  batches: number;
  /** Context patches per example after removing the targets, before collation. */
  contextSize: Summary;
  /** `contextSize.mean` as a fraction of the grid. */
  contextFraction: number;
  /** Patches per target block (every block of every example). */
  targetSize: Summary;
  /** Collated context length per batch with `truncate` (the batch's shortest context). */
  contextLenTruncate: Summary;
  /** Collated context length per batch with `pad` (the batch's longest context). */
  contextLenPad: Summary;
  /** Collated target length per batch (the batch's shortest target block). */
  targetLen: Summary;
  /** Fraction of context patches that `truncate` drops. */
  truncateDrops: number;
  /** Fraction of `pad` slots that are padding. */
  padWaste: number;
  /** Fraction of target patches the target collation drops. */
  targetDrops: number;
  /** Fraction of examples that needed the fallback (any level). */
  fallbackRate: number;
  /** Fraction of examples that needed the last-resort level (stacked target blocks). */
  stackedRate: number;
  /** Examples per second of `masker.sample` alone. */
  masksPerSecond: number;
}

class Welford {
  n = 0;
  mean = 0;
  m2 = 0;
  min = Infinity;
  max = -Infinity;
  add(x: number): void {
    this.n++;
    const d = x - this.mean;
    this.mean += d / this.n;
    this.m2 += d * (x - this.mean);
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }
  summary(): Summary {
    return {
      mean: this.mean,
      std: this.n > 1 ? Math.sqrt(this.m2 / this.n) : 0,
      min: this.min,
      max: this.max,
    };
  }
}

/**
 * Draw `batches` batches of `batch` examples from `masker` with `new Rng(seed)` and summarise them.
 * Both collated lengths are computed from the same examples, whatever `collate` the masker uses.
 * `onFirst` receives the first batch's examples (the CLI draws them with `--png`).
 */
export function maskStatistics(
  masker: MultiBlockMasker,
  { batch, batches, seed }: { batch: number; batches: number; seed: number },
  onFirst?: (examples: MaskSample[]) => void,
): MaskStatistics {
  if (!(Number.isInteger(batches) && batches >= 1)) {
    throw new RangeError(`masks: batches must be a positive integer, got ${batches}`);
  }
  const rng = new Rng(seed);
  const ctx = new Welford(), tgt = new Welford(), lcT = new Welford(), lcP = new Welford();
  const lt = new Welford();
  let fallbacks = 0, stacked = 0, kept = 0, truncKept = 0, padSlots = 0, tKept = 0, tTotal = 0;
  let ms = 0;
  for (let i = 0; i < batches; i++) {
    const t0 = performance.now();
    const b = masker.sample(rng, batch);
    ms += performance.now() - t0;
    if (i === 0) onFirst?.(b.examples);
    let lo = Infinity, hi = 0, tlo = Infinity, sum = 0, tsum = 0, nt = 0;
    for (const e of b.examples) {
      const L = e.context.length;
      ctx.add(L);
      sum += L;
      lo = Math.min(lo, L);
      hi = Math.max(hi, L);
      for (const t of e.targets) {
        tgt.add(t.length);
        tsum += t.length;
        nt++;
        tlo = Math.min(tlo, t.length);
      }
    }
    lcT.add(lo);
    lcP.add(hi);
    lt.add(tlo);
    kept += sum;
    truncKept += lo * batch;
    padSlots += hi * batch;
    tTotal += tsum;
    tKept += tlo * nt;
    fallbacks += b.fallbacks;
    for (const f of b.fallbackLevel) if (f === 2) stacked++;
  }
  const n = batch * batches;
  const { rows, cols } = masker.options;
  return {
    examples: n,
    batches,
    contextSize: ctx.summary(),
    contextFraction: ctx.mean / (rows * cols),
    targetSize: tgt.summary(),
    contextLenTruncate: lcT.summary(),
    contextLenPad: lcP.summary(),
    targetLen: lt.summary(),
    truncateDrops: 1 - truncKept / kept,
    padWaste: 1 - kept / padSlots,
    targetDrops: 1 - tKept / tTotal,
    fallbackRate: fallbacks / n,
    stackedRate: stacked / n,
    masksPerSecond: n / (ms / 1000),
  };
}
