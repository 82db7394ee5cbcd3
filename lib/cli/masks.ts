/**
 * `deno task masks`: draw many batches of masks and print statistics to compare with the official
 * collator (context size per example, target block size, collated lengths, fallback rate), as a
 * table or one JSON line; `--png FILE` draws example masks.
 *
 * ```sh
 * deno task masks --grid 14 --batch 64 --batches 2000 --seed 0 --json
 * deno task masks --grid 7 --strategy rasterized --min-keep 6 --png masks.png
 * ```
 *
 * @example
 * ```ts
 * import { maskStatistics } from "./masks.ts";
 * import { createMasker } from "../masks/masks.ts";
 * const s = maskStatistics(createMasker({ rows: 7, cols: 7 }), { batch: 16, batches: 5, seed: 0 });
 * if (s.contextSize.min < 10) throw new Error("minKeep 10 not respected");
 * ```
 * @module
 */

import { type CliSpec, parseFlags, runMain, UsageError } from "./args.ts";
import {
  createMasker,
  MASK_PRESETS,
  MASKER_DEFAULTS,
  type MaskerOptions,
  maskPreset,
  type MaskSample,
  type MultiBlockMasker,
  type Range2,
} from "../masks/masks.ts";
import { Rng } from "../engine/rng.ts";

const SPEC: CliSpec = {
  name: "masks",
  summary: "Sample I-JEPA masks and print statistics comparable with the official collator: context size\n" +
    "per example (after removing targets, before collation), target block size, collated lengths\n" +
    "(truncate = batch's shortest context, pad = longest), fallback rate, and masks per second.\n" +
    "Starts from the grid's preset (7x7, 8x8, 14x14, 16x16; paper defaults on larger grids).",
  flags: {
    grid: { type: "int", default: 14, help: "square patch grid, rows = cols" },
    rows: { type: "int", help: "patch-grid rows (overrides --grid)" },
    cols: { type: "int", help: "patch-grid columns (overrides --grid)" },
    batch: { type: "int", default: 64, help: "examples per batch" },
    batches: { type: "int", default: 200, help: "batches to draw" },
    seed: { type: "int", default: 0, help: "RNG seed" },
    json: { type: "bool", help: "print one JSON line instead of a table" },
    paper: { type: "bool", help: "start from the paper's defaults, not the grid's preset" },
    strategy: {
      type: "string",
      choices: ["multiblock", "rasterized", "block", "random"],
      help: "masking strategy",
    },
    targets: { type: "int", help: "M, target blocks per example (multiblock)" },
    collate: { type: "string", choices: ["truncate", "pad"], help: "context collation" },
    "min-keep": { type: "int", help: "fewest context patches per example" },
    "max-tries": { type: "int", help: "draws per example before the fallback" },
    "target-scale": { type: "string", help: "target block area fraction LO,HI" },
    "target-aspect": { type: "string", help: "target block height/width LO,HI" },
    "context-scale": { type: "string", help: "context block area fraction LO,HI" },
    "context-aspect": { type: "string", help: "context block height/width LO,HI" },
    "mask-ratio": { type: "float", help: "random strategy: fraction of patches masked" },
    png: { type: "string", help: "write example masks of the first batch to this PNG file" },
    "png-count": { type: "int", default: 16, help: "examples drawn with --png" },
  },
};

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

function parseRange(flag: string, v: string): Range2 {
  const parts = v.split(",").map((s) => Number(s.trim()));
  if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x))) {
    throw new UsageError(`masks: --${flag} expects LO,HI (two numbers), got "${v}"`);
  }
  return [parts[0], parts[1]];
}

/** The masker options the flags ask for (preset or paper defaults, then the flags on top). */
export function optionsFromFlags(f: Record<string, unknown>): MaskerOptions {
  const rows = (f.rows ?? f.grid) as number, cols = (f.cols ?? f.grid) as number;
  if (!(rows >= 1 && cols >= 1)) {
    throw new UsageError(`masks: the grid must be at least 1x1, got ${rows}x${cols}`);
  }
  const key = `${rows}x${cols}`;
  const hasPreset = key in MASK_PRESETS || (rows >= 14 && cols >= 14);
  const base: MaskerOptions = !f.paper && hasPreset
    ? maskPreset(rows, cols)
    : { rows, cols, ...MASKER_DEFAULTS };
  // The strategy picks its own defaults (STRATEGY_DEFAULTS) for what the user does not set.
  if (f.strategy !== undefined && f.strategy !== "multiblock") {
    base.strategy = f.strategy as MaskerOptions["strategy"];
    delete base.nTargets;
    delete base.targetScale;
  }
  const o: MaskerOptions = { ...base };
  if (f.targets !== undefined) o.nTargets = f.targets as number;
  if (f.collate !== undefined) o.collate = f.collate as MaskerOptions["collate"];
  if (f["min-keep"] !== undefined) o.minKeep = f["min-keep"] as number;
  if (f["max-tries"] !== undefined) o.maxTries = f["max-tries"] as number;
  if (f["mask-ratio"] !== undefined) o.maskRatio = f["mask-ratio"] as number;
  const ranges = [
    ["target-scale", "targetScale"],
    ["target-aspect", "targetAspect"],
    ["context-scale", "contextScale"],
    ["context-aspect", "contextAspect"],
  ] as const;
  for (const [flag, key] of ranges) {
    if (f[flag] !== undefined) o[key] = parseRange(flag, f[flag] as string);
  }
  return o;
}

const fmt = (x: number, d = 2) => x.toFixed(d).padStart(9);

function table(title: string, s: MaskStatistics, masker: MultiBlockMasker): string {
  const o = masker.options;
  const row = (name: string, v: Summary) =>
    name.padEnd(34) + fmt(v.mean) + fmt(v.std) + fmt(v.min, 0) + fmt(v.max, 0);
  const used = (c: string) => (o.collate === c ? "  <- used" : "");
  const pct = (x: number) => `${(100 * x).toFixed(3)}%`;
  return [
    title,
    `options: ${
      Object.entries(o).map(([k, v]) => `${k} ${Array.isArray(v) ? `[${v.join(", ")}]` : v}`).join(
        ", ",
      )
    }`,
    "",
    "".padEnd(34) + "mean".padStart(9) + "std".padStart(9) + "min".padStart(9) + "max".padStart(9),
    row("context size / example", s.contextSize),
    row("target block size", s.targetSize),
    row("collated context, truncate", s.contextLenTruncate) + used("truncate"),
    row("collated context, pad", s.contextLenPad) + used("pad"),
    row("collated target length", s.targetLen),
    "",
    `context = ${(100 * s.contextFraction).toFixed(1)}% of the grid on average`,
    `truncate drops ${pct(s.truncateDrops)} of context patches; pad makes ${
      pct(s.padWaste)
    } of slots padding`,
    `target collation drops ${pct(s.targetDrops)} of target patches`,
    `fallback rate ${pct(s.fallbackRate)} (stacked targets: ${pct(s.stackedRate)})`,
    `speed: ${Math.round(s.masksPerSecond).toLocaleString("en-US")} masks/s (sampling only)`,
  ].join("\n");
}

/** The task's entry point (exported for tests; `deno task masks` runs it through `runMain`). */
export async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, SPEC);
  const opts = optionsFromFlags(f);
  let masker: MultiBlockMasker;
  try {
    masker = createMasker(opts);
  } catch (e) {
    // Bad settings are the user's input: report them as usage errors (exit 2, one line).
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const batch = f.batch as number, batches = f.batches as number, seed = f.seed as number;
  if (!(batch >= 1) || !(batches >= 1)) {
    throw new UsageError(`masks: --batch and --batches must be >= 1, got ${batch} and ${batches}`);
  }
  let first: MaskSample[] = [];
  const stats = maskStatistics(masker, { batch, batches, seed }, (ex) => (first = ex));
  const o = masker.options;
  const title = `masks: ${o.strategy} on a ${o.rows}x${o.cols} grid, ${batches} batches of ${batch}, ` +
    `seed ${seed}`;
  if (f.json) {
    console.log(JSON.stringify({ options: o, batch, seed, ...stats }));
  } else {
    console.log(table(title, stats, masker));
  }
  if (f.png !== undefined) {
    const count = Math.min(f["png-count"] as number, first.length);
    const { plotMasks, savePng } = await import("../viz/plot.ts");
    const svg = plotMasks(
      first.slice(0, count).map((e) => ({ rows: o.rows, cols: o.cols, ...e })),
      {
        columns: Math.min(8, count),
        title: `${o.strategy} masks, ${o.rows}x${o.cols} grid, seed ${seed}`,
      },
    );
    await savePng(svg, f.png as string);
    if (!f.json) console.log(`wrote ${count} examples to ${f.png}`);
  }
}

if (import.meta.main) runMain(main);
