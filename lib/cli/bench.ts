/**
 * `deno task bench`: how fast each piece runs on each backend, and against PyTorch.
 *
 * Rows, per backend configuration (`--backend`, default `wasm+blas,wasm`):
 *
 * - masker: batches of I-JEPA masks (7x7 preset) per second, in examples (backend-independent);
 * - products: every matrix product of one reference step on wasm, GFLOP/s per shape and ms a step with
 *   tfjs's stock kernel, our SIMD kernel on one thread and on all, and native BLAS (lib/eval/bench_products.ts);
 * - encoder forward: img/s of the `reference` encoder on full images (no gradient);
 * - train step: img/s of a full step (masks from the 7x7 masker, targets, loss, backward, AdamW,
 *   EMA) for `tiny` (the tiny preset at 28px, so that the 7x7 masks apply) and `reference` (the
 *   `quick` preset: 28px, patch 4, width 192, depth 6, 3 heads, predictor 96 x 4, batch 64, the
 *   paper's masks, the official objective without the preset's VICReg terms);
 * - probe features: img/s of lib/eval/features.ts `extractFeatures` (target encoder, average-pooled);
 * - peak RSS (Deno.memoryUsage().rss, sampled after every timed run) and tfjs's peak bytes during
 *   one reference step (tf.profile);
 * - top kernels of one reference step by time (tf.profile);
 * - with both `wasm+blas` and `wasm`: the reference step's time without BLAS over with, from the two
 *   rows and again from steps that alternate between the two in one process, which both see the same
 *   machine while its speed drifts (lib/eval/bench_alternate.ts).
 *
 * Warm-up runs are excluded; each row is the median of `--runs` timed runs. `--json` prints one
 * JSON line; `--quick` runs few, small batches (the smoke test). `--vs-torch` also runs
 * tests/reference/ijepa_step.py on the very same mask batches (where `import torch` works) and
 * prints ours / PyTorch img/s, against PyTorch at its best here: each OpenBLAS build the machine has
 * (Debian installs pthreads and OpenMP builds side by side) and BLAS thread count is tried on a short
 * run, the fastest times the full run, and the report names them all and the libraries torch mapped.
 * `--official DIR` (a facebookresearch/ijepa checkout) also times the official modules on the same
 * masks and setup, which checks that ijepa_step.py is a fair stand-in. Each full run is saved to
 * `.bench/last.json` (`--out`), and the next run prints those figures beside its own.
 *
 * ```sh
 * deno task bench                      # wasm with and without BLAS
 * deno task bench --backend wasm+blas --vs-torch --runs 7
 * deno task bench --backend wasm+blas --vs-torch --official ../ijepa   # also the official modules
 * deno task bench --backend webgpu --rows reference --vs-torch --device cuda  # against PyTorch CUDA
 * deno task bench --quick --json
 * ```
 *
 * @module
 */
import { dirname } from "node:path";
import { asUsage, type CliSpec, parseFlags, runMain } from "./args.ts";
import {
  BENCH_BACKENDS,
  BENCH_DEFAULTS,
  BENCH_ROWS,
  BENCH_SHAPES,
  type BenchOptions,
  benchOptions,
} from "../eval/bench_options.ts";
import { runBench } from "../eval/bench.ts";
import { formatReport, readPrevious } from "../eval/bench_report.ts";

const SPEC: CliSpec = {
  name: "bench",
  summary: "Throughput of the masker, the encoder, full I-JEPA train steps and probe feature extraction,\n" +
    "per backend, with peak memory and the top kernels; optionally against PyTorch on the same masks.",
  flags: {
    backend: {
      type: "string",
      default: BENCH_DEFAULTS.backend,
      help: `comma-separated backends: ${Object.keys(BENCH_BACKENDS).join(", ")}`,
    },
    rows: {
      type: "string",
      default: BENCH_DEFAULTS.rows,
      help: `comma-separated rows: ${BENCH_ROWS.join(", ")}`,
    },
    shapes: {
      type: "string",
      default: "",
      help: `comma-separated extra train-step shapes: ${BENCH_SHAPES.join(", ")} (224 px; slow on a CPU)`,
    },
    batch: { type: "int", help: "images per batch (default 64; 4 with --quick)" },
    runs: { type: "int", help: "timed runs per row, median reported (default 5; 2 with --quick)" },
    warmup: { type: "int", help: "untimed runs first (default 2; 1 with --quick)" },
    seed: { type: "int", default: BENCH_DEFAULTS.seed, help: "seed of the weights, images and masks" },
    quick: { type: "bool", help: "few runs on small batches (for the smoke test); saves nothing" },
    json: { type: "bool", help: "print one JSON line instead of a table" },
    "vs-torch": { type: "bool", help: "also time tests/reference/ijepa_step.py on the same masks" },
    python: { type: "string", default: BENCH_DEFAULTS.python, help: "python with torch, for --vs-torch" },
    device: {
      type: "string",
      default: "cpu",
      help: "with --vs-torch: where PyTorch runs, cpu (each BLAS setup) or cuda (fp32 and bf16 autocast)",
    },
    official: {
      type: "string",
      help: "with --vs-torch: a facebookresearch/ijepa checkout whose own modules are timed too",
    },
    profile: { type: "bool", default: true, help: "profile one reference step (top kernels, peak bytes)" },
    out: { type: "string", default: BENCH_DEFAULTS.out, help: "where to save the results ('' for nowhere)" },
  },
};

function parse(args: string[]): BenchOptions {
  const f = parseFlags(args, SPEC);
  return asUsage(() =>
    benchOptions({
      backend: f.backend as string,
      rows: f.rows as string,
      shapes: f.shapes as string,
      batch: f.batch as number | undefined,
      runs: f.runs as number | undefined,
      warmup: f.warmup as number | undefined,
      seed: f.seed as number,
      quick: Boolean(f.quick),
      json: Boolean(f.json),
      vsTorch: Boolean(f["vs-torch"]),
      python: f.python as string,
      device: f.device as string,
      official: f.official as string | undefined,
      profile: Boolean(f.profile),
      out: f.out as string,
    })
  );
}

async function main(args: string[]): Promise<void> {
  const o = parse(args);
  const prev = await readPrevious(o.out);
  const result = await runBench(o);
  if (o.json) console.log(JSON.stringify(result));
  else console.log(formatReport(result, prev));
  if (o.out) {
    await Deno.mkdir(dirname(o.out), { recursive: true });
    await Deno.writeTextFile(o.out, JSON.stringify(result, null, 1));
  }
}

if (import.meta.main) await runMain(main);
