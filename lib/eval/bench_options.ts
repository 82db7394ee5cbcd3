/**
 * The bench's settings and what it reports: which backends and rows run, how many timed runs, and
 * the result's shape (saved to `.bench/last.json`, printed by `--json`). `deno task bench` turns
 * its flags into {@link BenchOptions} with {@link benchOptions}; lib/eval/bench.ts measures.
 *
 * @example
 * ```ts
 * import { benchOptions } from "./bench_options.ts";
 * const o = benchOptions({ quick: true, backend: "cpu" });
 * if (o.backends[0].label !== "cpu" || o.batch !== 4) throw new Error("quick mode uses small batches");
 * ```
 * @module
 */
import type { ModelConfig } from "../model/config.ts";
import type { WebGpuTraffic } from "../engine/webgpu_traffic.ts";

/**
 * The `reference` row's model: the `quick` preset with the official objective, as
 * tests/reference/ijepa_step.py computes it (the preset's VICReg collapse terms are this toolkit's
 * departure, and PyTorch would not be doing the same work).
 */
export const REFERENCE_OVERRIDES: Partial<ModelConfig> = { varianceWeight: 0, covarianceWeight: 0 };

/** A backend configuration the bench can run. */
export interface BenchBackend {
  label: string;
  name: "wasm" | "cpu" | "webgpu";
  blas: boolean;
}

/** The backend configurations the bench knows, by label (`--backend`). */
export const BENCH_BACKENDS: Readonly<Record<string, BenchBackend>> = {
  "wasm+blas": { label: "wasm+blas", name: "wasm", blas: true },
  wasm: { label: "wasm", name: "wasm", blas: false },
  "cpu+blas": { label: "cpu+blas", name: "cpu", blas: true },
  cpu: { label: "cpu", name: "cpu", blas: false },
  webgpu: { label: "webgpu", name: "webgpu", blas: false },
};

/** Rows the bench can run (`--rows`). */
export const BENCH_ROWS = ["masker", "products", "encoder", "tiny", "reference", "probe"] as const;
/** One of {@link BENCH_ROWS}. */
export type BenchRow = typeof BENCH_ROWS[number];

/**
 * Train-step shapes beyond the reference row (`--shapes`): the official ViT-S/16 and ViT-B/16 at
 * 224 px (14x14 patches, 3 channels), the shapes a GPU is measured on.
 */
export const BENCH_SHAPES = ["vit_small16", "vit_base16"] as const;
/** One of {@link BENCH_SHAPES}. */
export type BenchShape = typeof BENCH_SHAPES[number];

/** The bench's defaults, as the command line shows them. */
export const BENCH_DEFAULTS = {
  backend: "wasm+blas,wasm",
  rows: BENCH_ROWS.join(","),
  seed: 0,
  python: "/usr/bin/python3",
  out: ".bench/last.json",
} as const;

/** The bench's options, checked. */
export interface BenchOptions {
  backends: BenchBackend[];
  rows: BenchRow[];
  /** Extra train-step shapes ({@link BENCH_SHAPES}); none by default. */
  shapes: BenchShape[];
  batch: number;
  runs: number;
  warmup: number;
  seed: number;
  quick: boolean;
  json: boolean;
  vsTorch: boolean;
  python: string;
  /** Where PyTorch runs for `--vs-torch`: the CPU (its BLAS setups) or CUDA (fp32 and bf16 autocast). */
  device: "cpu" | "cuda";
  /** A facebookresearch/ijepa checkout, for `--official`. */
  official?: string;
  profile: boolean;
  out: string;
}

/** What {@link benchOptions} reads: the command line's values, unset ones defaulted. */
export interface BenchInput {
  /** Comma list of {@link BENCH_BACKENDS} labels. */
  backend?: string;
  /** Comma list of {@link BENCH_ROWS}. */
  rows?: string;
  /** Comma list of {@link BENCH_SHAPES}. */
  shapes?: string;
  batch?: number;
  runs?: number;
  warmup?: number;
  seed?: number;
  quick?: boolean;
  json?: boolean;
  vsTorch?: boolean;
  python?: string;
  device?: string;
  official?: string;
  profile?: boolean;
  out?: string;
}

/**
 * Check the bench's input and fill in the defaults (unknown backends and rows are errors that list
 * the known ones; `quick` means small batches, few runs and nothing saved).
 */
export function benchOptions(input: BenchInput): BenchOptions {
  const list = (v: string) => v.split(",").map((s) => s.trim()).filter((s) => s);
  const backends = list(input.backend ?? BENCH_DEFAULTS.backend).map((b) => {
    const cfg = BENCH_BACKENDS[b];
    if (!cfg) {
      throw new Error(`bench: unknown backend "${b}"; expected ${Object.keys(BENCH_BACKENDS).join(", ")}`);
    }
    return cfg;
  });
  const rows = list(input.rows ?? BENCH_DEFAULTS.rows).map((r) => {
    if (!(BENCH_ROWS as readonly string[]).includes(r)) {
      throw new Error(`bench: unknown row "${r}"; expected ${BENCH_ROWS.join(", ")}`);
    }
    return r as BenchRow;
  });
  const shapes = list(input.shapes ?? "").map((r) => {
    if (!(BENCH_SHAPES as readonly string[]).includes(r)) {
      throw new Error(`bench: unknown shape "${r}"; expected ${BENCH_SHAPES.join(", ")}`);
    }
    return r as BenchShape;
  });
  const quick = Boolean(input.quick);
  const int = (name: string, v: number | undefined, dflt: number, min: number) => {
    const n = v ?? dflt;
    if (!(n >= min)) throw new Error(`bench: --${name} must be >= ${min}, got ${n}`);
    return n;
  };
  const vsTorch = Boolean(input.vsTorch);
  return {
    backends,
    rows,
    shapes,
    batch: int("batch", input.batch, quick ? 4 : 64, 1),
    runs: int("runs", input.runs, quick ? 2 : 5, 1),
    warmup: int("warmup", input.warmup, quick ? 1 : 2, 0),
    seed: input.seed ?? BENCH_DEFAULTS.seed,
    quick,
    json: Boolean(input.json),
    vsTorch,
    python: input.python ?? BENCH_DEFAULTS.python,
    device: torchDevice(input.device, vsTorch),
    official: officialDir(input.official, vsTorch),
    profile: input.profile ?? true,
    out: quick ? "" : input.out ?? BENCH_DEFAULTS.out,
  };
}

function torchDevice(d: string | undefined, vsTorch: boolean): "cpu" | "cuda" {
  if (d === undefined || d === "cpu") return "cpu";
  if (d !== "cuda") throw new Error(`bench: --device expects cpu or cuda, got "${d}"`);
  if (!vsTorch) throw new Error("bench: --device cuda needs --vs-torch (it says where PyTorch runs)");
  return "cuda";
}

function officialDir(dir: string | undefined, vsTorch: boolean): string | undefined {
  if (dir === undefined) return undefined;
  if (!vsTorch) throw new Error("bench: --official needs --vs-torch");
  try {
    Deno.statSync(`${dir}/src/models/vision_transformer.py`);
  } catch {
    throw new Error(
      `bench: --official expects a checkout of facebookresearch/ijepa (with src/models/vision_transformer.py), got ${dir}`,
    );
  }
  return dir;
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** One timed row: median milliseconds per run and throughput. */
export interface Timing {
  medianMs: number;
  /** Images (or mask examples) per second at the median. */
  perSecond: number;
  runsMs: number[];
}

/** Tokens one train step processes: context per example, and target tokens (M x Lt) per example. */
export interface Tokens {
  context: number;
  target: number;
}

/** What one train-step row measured. */
export interface StepRow extends Timing {
  tokens: Tokens[];
  loss: number;
}

/** Everything measured on one backend. */
export interface BackendResult {
  label: string;
  /** The backend's one-line description (BLAS library, fused kernels). */
  line: string;
  encoder?: Timing;
  tiny?: StepRow;
  reference?: StepRow;
  /** The `--shapes` train steps, by shape. */
  shapes?: Partial<Record<BenchShape, StepRow>>;
  probe?: Timing;
  peakRssBytes: number;
  peakTfjsBytes?: number;
  kernelCalls?: number;
  /** webgpu only: dispatches, buffer copies and bytes up and down in the profiled step. */
  gpuTraffic?: WebGpuTraffic;
  topKernels?: { name: string; ms: number; calls: number }[];
  /** Why this backend did not run, when it did not. */
  skipped?: string;
}

/** What tests/reference/ijepa_step.py (or official_step.py) reported. */
export interface TorchResult {
  medianMs: number;
  perSecond: number;
  runsMs: number[];
  peakRssBytes: number;
  tokens: Tokens[];
  version: string;
  threads: number;
  /** How PyTorch was run: which OpenBLAS build and BLAS threads (see lib/eval/bench_torch.ts `torchSetups`). */
  setup: string;
  /** The BLAS / OpenMP library files the Python process mapped. */
  libraries: string[];
  /** The kernel family each OpenBLAS it mapped runs (e.g. Haswell, Cooperlake). */
  blasCores?: string[];
}

/** One way to run PyTorch here: a name for the report and the environment it needs. */
export interface TorchSetup {
  name: string;
  env: Record<string, string>;
  /** Variables of this process's environment the run does without (e.g. OPENBLAS_CORETYPE). */
  unset?: string[];
  /** CUDA instead of the CPU, optionally with bf16 autocast (as the official code trains). */
  device?: "cuda";
  autocast?: "bf16";
}

/** One product shape of the step: C[batch] = op(A) op(B), M x K by K x N, and calls per step. */
export interface ProductShape {
  batch: number;
  m: number;
  k: number;
  n: number;
  transposeA: boolean;
  transposeB: boolean;
  calls: number;
}

/** GFLOP/s per kernel for one shape (absent: the kernel is not available here). */
export interface ProductTiming extends ProductShape {
  gflops: Record<string, number>;
}

/** The row: per-shape rates and, per kernel, the ms all products of one step take at those rates. */
export interface ProductsRow {
  kernels: string[];
  shapes: ProductTiming[];
  msPerStep: Record<string, number>;
  gflopPerStep: number;
}

/** The whole result, as saved to `.bench/last.json` and printed by `--json`. */
/** Reference steps timed alternately with BLAS and without it (lib/eval/bench_alternate.ts). */
export interface AlternateRow {
  /** Median ms of a reference step with native BLAS and without, over `steps` steps each. */
  withMs: number;
  withoutMs: number;
  steps: number;
  /** withoutMs / withMs. */
  ratio: number;
}

/** Ours / PyTorch measured in rounds that alternate between the two (lib/eval/bench_torch.ts `alternateTorch`). */
export interface VersusRow {
  /** Each round's median ms of a reference step: ours, then PyTorch's (its best setup) right after. */
  oursMs: number[];
  torchMs: number[];
  /** The median over rounds of PyTorch's time / ours (ours / PyTorch in img/s). */
  ratio: number;
}

export interface BenchResult {
  date: string;
  /** `loadAvg`: the 1-minute load average before and after the run (other work on the machine). */
  machine: { cores: number; os: string; deno: string; tfjs: string; loadAvg?: [number, number] };
  options: { batch: number; runs: number; warmup: number; seed: number; quick: boolean };
  masker?: { perSecond: number; msPerBatch: number };
  /** The `products` row (lib/eval/bench_products.ts). */
  products?: ProductsRow;
  backends: BackendResult[];
  /** wasm's reference step with BLAS and without, alternating step by step (lib/eval/bench_alternate.ts). */
  alternate?: AlternateRow;
  /** Why the alternating steps failed, where they did. */
  alternateSkipped?: string;
  /** PyTorch's best setup, the setups tried (short runs) and, with `--official`, the official modules. */
  torch?: TorchResult & {
    /** Ours / PyTorch in img/s, ours the faster of its reference timings before and after PyTorch's. */
    ratio: number;
    /** Our reference step timed again after PyTorch's runs (the machine's speed drifts meanwhile). */
    oursAfter?: Timing;
    /** Ours and PyTorch's best setup timed in alternating rounds, which see the same machine. */
    alternate?: VersusRow;
    tried: { setup: string; medianMs: number }[];
    official?: TorchResult;
    /** The `--shapes` steps on PyTorch (its fastest setup for each), with ours / PyTorch in img/s. */
    shapes?: Partial<Record<BenchShape, TorchResult & { ratio: number }>>;
  };
  torchSkipped?: string;
}
