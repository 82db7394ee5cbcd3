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
 * The statistics themselves: lib/masks/statistics.ts.
 *
 * @module
 */

import { checkOutputFile, type CliSpec, parseFlags, runMain, UsageError } from "./args.ts";
import { FIGURE_EXTENSIONS } from "../viz/figure_file.ts";
import { createMasker, type MultiBlockMasker } from "../masks/masker.ts";
import { type MaskStatistics, maskStatistics, type Summary } from "../masks/statistics.ts";
import type { MaskSample } from "../masks/batch.ts";
import {
  MASK_PRESETS,
  MASKER_DEFAULTS,
  type MaskerOptions,
  maskPreset,
  type Range2,
} from "../masks/options.ts";

const SPEC: CliSpec = {
  name: "masks",
  summary: "Sample I-JEPA masks and print statistics comparable with the official collator: context size\n" +
    "per example (after removing targets, before collation), target block size, collated lengths\n" +
    "(truncate = batch's shortest context, pad = longest), fallback rate, and masks per second.\n" +
    "Starts from the grid's preset (7x7, 8x8, 14x14, 16x16; paper defaults on larger grids).",
  flags: {
    grid: { type: "int", min: 1, default: 14, help: "square patch grid, rows = cols" },
    rows: { type: "int", min: 1, help: "patch-grid rows (overrides --grid)" },
    cols: { type: "int", min: 1, help: "patch-grid columns (overrides --grid)" },
    batch: { type: "int", min: 1, default: 64, help: "examples per batch" },
    batches: { type: "int", min: 1, default: 200, help: "batches to draw" },
    seed: { type: "int", min: 0, default: 0, help: "RNG seed" },
    json: { type: "bool", help: "print one JSON line instead of a table" },
    paper: { type: "bool", help: "start from the paper's defaults, not the grid's preset" },
    strategy: {
      type: "string",
      choices: ["multiblock", "rasterized", "block", "random"],
      help: "masking strategy",
    },
    targets: { type: "int", min: 1, help: "M, target blocks per example (multiblock)" },
    collate: { type: "string", choices: ["truncate", "pad"], help: "context collation" },
    "min-keep": { type: "int", min: 0, help: "fewest context patches per example" },
    "max-tries": { type: "int", min: 1, help: "draws per example before the fallback" },
    "target-scale": { type: "string", help: "target block area fraction LO,HI" },
    "target-aspect": { type: "string", help: "target block height/width LO,HI" },
    "context-scale": { type: "string", help: "context block area fraction LO,HI" },
    "context-aspect": { type: "string", help: "context block height/width LO,HI" },
    "mask-ratio": { type: "float", help: "random strategy: fraction of patches masked" },
    png: { type: "string", help: "write example masks of the first batch to this file (.png or .svg)" },
    "png-count": { type: "int", min: 1, default: 16, help: "examples drawn with --png" },
  },
};

function parseRange(flag: string, v: string): Range2 {
  const parts = v.split(",").map((s) => Number(s.trim()));
  if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x))) {
    throw new UsageError(`masks: --${flag} expects LO,HI (two numbers), got "${v}"`);
  }
  return [parts[0], parts[1]];
}

/** The masker options the flags ask for (preset or paper defaults, then the flags on top). */
function optionsFromFlags(f: Record<string, unknown>): MaskerOptions {
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
async function main(args: string[]): Promise<void> {
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
  if (f.png !== undefined) await checkOutputFile("masks", "png", f.png as string, FIGURE_EXTENSIONS);
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
    const { plotMasks } = await import("../viz/figures_images.ts");
    const { saveFigure } = await import("../viz/figure_file.ts");
    const svg = plotMasks(
      first.slice(0, count).map((e) => ({ rows: o.rows, cols: o.cols, ...e })),
      {
        columns: Math.min(8, count),
        title: `${o.strategy} masks, ${o.rows}x${o.cols} grid, seed ${seed}`,
      },
    );
    await saveFigure(svg, f.png as string);
    if (!f.json) console.log(`wrote ${count} examples to ${f.png}`);
  }
}

if (import.meta.main) runMain(main);
