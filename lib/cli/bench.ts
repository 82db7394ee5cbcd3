/**
 * `deno task bench`: how fast each piece runs on each backend, and against PyTorch.
 *
 * Rows, per backend configuration (`--backend`, default `wasm+blas,wasm`):
 *
 * - masker: batches of I-JEPA masks (7x7 preset) per second, in examples (backend-independent);
 * - encoder forward: img/s of the `reference` encoder on full images (no gradient);
 * - train step: img/s of a full step (masks from the 7x7 masker, targets, loss, backward, AdamW,
 *   EMA) for `tiny` (the tiny preset at 28px, so that the 7x7 masks apply) and `reference` (the
 *   `quick` preset: 28px, patch 4, width 192, depth 6, 3 heads, predictor 96 x 4, batch 64, the
 *   paper's masks, the official objective without the preset's VICReg terms);
 * - probe features: img/s of lib/eval/features.ts `extractFeatures` (target encoder, average-pooled);
 * - peak RSS (Deno.memoryUsage().rss, sampled after every timed run) and tfjs's peak bytes during
 *   one reference step (tf.profile);
 * - top kernels of one reference step by time (tf.profile).
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
 * deno task bench --quick --json
 * ```
 *
 * @example
 * ```ts
 * import { parseBenchFlags } from "./bench.ts";
 * const o = parseBenchFlags(["--quick", "--backend", "cpu"]);
 * if (o.backends[0].label !== "cpu" || o.batch !== 4) throw new Error("quick mode uses small batches");
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { dirname } from "node:path";
import { type CliSpec, parseFlags, runMain, UsageError } from "./args.ts";
import { AdamW } from "../train/adamw.ts";
import { setBackend } from "../engine/backend.ts";
import { type ModelConfig, modelConfig } from "../model/config.ts";
import type { ImageDataset } from "../data/data.ts";
import { extractFeatures } from "../eval/features.ts";
import { fusedEnabled } from "../engine/fused.ts";
import { simdActive } from "../engine/fused_kernels.ts";
import { IJEPA } from "../model/ijepa.ts";
import { benchMasker, createMasker, type MaskBatch, maskPreset } from "../masks/masks.ts";
import { Rng } from "../engine/rng.ts";

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

const BACKENDS: Record<string, BenchBackend> = {
  "wasm+blas": { label: "wasm+blas", name: "wasm", blas: true },
  wasm: { label: "wasm", name: "wasm", blas: false },
  "cpu+blas": { label: "cpu+blas", name: "cpu", blas: true },
  cpu: { label: "cpu", name: "cpu", blas: false },
  webgpu: { label: "webgpu", name: "webgpu", blas: false },
};

/** Rows the bench can run (`--rows`). */
export const BENCH_ROWS = ["masker", "encoder", "tiny", "reference", "probe"] as const;
type Row = typeof BENCH_ROWS[number];

const SPEC: CliSpec = {
  name: "bench",
  summary: "Throughput of the masker, the encoder, full I-JEPA train steps and probe feature extraction,\n" +
    "per backend, with peak memory and the top kernels; optionally against PyTorch on the same masks.",
  flags: {
    backend: {
      type: "string",
      default: "wasm+blas,wasm",
      help: `comma-separated backends: ${Object.keys(BACKENDS).join(", ")}`,
    },
    rows: { type: "string", default: BENCH_ROWS.join(","), help: "comma-separated rows to run" },
    batch: { type: "int", help: "images per batch (default 64; 4 with --quick)" },
    runs: { type: "int", help: "timed runs per row, median reported (default 5; 2 with --quick)" },
    warmup: { type: "int", help: "untimed runs first (default 2; 1 with --quick)" },
    seed: { type: "int", default: 0, help: "seed of the weights, images and masks" },
    quick: { type: "bool", help: "few runs on small batches (for the smoke test); saves nothing" },
    json: { type: "bool", help: "print one JSON line instead of a table" },
    "vs-torch": { type: "bool", help: "also time tests/reference/ijepa_step.py on the same masks" },
    python: { type: "string", default: "/usr/bin/python3", help: "python with torch, for --vs-torch" },
    official: {
      type: "string",
      help: "with --vs-torch: a facebookresearch/ijepa checkout whose own modules are timed too",
    },
    profile: { type: "bool", default: true, help: "profile one reference step (top kernels, peak bytes)" },
    out: { type: "string", default: ".bench/last.json", help: "where to save the results ('' for nowhere)" },
  },
};

/** The bench's options, checked. */
export interface BenchOptions {
  backends: BenchBackend[];
  rows: Row[];
  batch: number;
  runs: number;
  warmup: number;
  seed: number;
  quick: boolean;
  json: boolean;
  vsTorch: boolean;
  python: string;
  /** A facebookresearch/ijepa checkout, for `--official`. */
  official?: string;
  profile: boolean;
  out: string;
}

/** Parse and check the command line (unknown backends and rows are errors that list the known ones). */
export function parseBenchFlags(args: string[]): BenchOptions {
  const f = parseFlags(args, SPEC);
  const list = (v: unknown) => String(v).split(",").map((s) => s.trim()).filter((s) => s);
  const backends = list(f.backend).map((b) => {
    const cfg = BACKENDS[b];
    if (!cfg) {
      throw new UsageError(`bench: unknown backend "${b}"; expected ${Object.keys(BACKENDS).join(", ")}`);
    }
    return cfg;
  });
  const rows = list(f.rows).map((r) => {
    if (!(BENCH_ROWS as readonly string[]).includes(r)) {
      throw new UsageError(`bench: unknown row "${r}"; expected ${BENCH_ROWS.join(", ")}`);
    }
    return r as Row;
  });
  const quick = Boolean(f.quick);
  const int = (name: string, v: unknown, dflt: number, min: number) => {
    const n = v === undefined ? dflt : Number(v);
    if (!(n >= min)) throw new UsageError(`bench: --${name} must be >= ${min}, got ${n}`);
    return n;
  };
  return {
    backends,
    rows,
    batch: int("batch", f.batch, quick ? 4 : 64, 1),
    runs: int("runs", f.runs, quick ? 2 : 5, 1),
    warmup: int("warmup", f.warmup, quick ? 1 : 2, 0),
    seed: Number(f.seed),
    quick,
    json: Boolean(f.json),
    vsTorch: Boolean(f["vs-torch"]),
    python: String(f.python),
    official: officialDir(f.official as string | undefined, Boolean(f["vs-torch"])),
    profile: Boolean(f.profile),
    out: quick ? "" : String(f.out),
  };
}

function officialDir(dir: string | undefined, vsTorch: boolean): string | undefined {
  if (dir === undefined) return undefined;
  if (!vsTorch) throw new UsageError("bench: --official needs --vs-torch");
  try {
    Deno.statSync(`${dir}/src/models/vision_transformer.py`);
  } catch {
    throw new UsageError(
      `bench: --official expects a checkout of facebookresearch/ijepa (with src/models/vision_transformer.py), got ${dir}`,
    );
  }
  return dir;
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** One timed row: median milliseconds per run and throughput. */
export interface Timing {
  medianMs: number;
  /** Images (or mask examples) per second at the median. */
  perSecond: number;
  runsMs: number[];
}

let peakRss = 0;
function sampleRss(): void {
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Run `fn(i)` warmup + runs times; time the last `runs`. `fn` must finish its work (read back). */
async function timeRuns(
  o: BenchOptions,
  perRun: number,
  fn: (i: number) => void | Promise<void>,
): Promise<Timing> {
  for (let i = 0; i < o.warmup; i++) await fn(i);
  const runsMs: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    const t0 = performance.now();
    await fn(o.warmup + i);
    runsMs.push(performance.now() - t0);
    sampleRss();
  }
  const medianMs = median(runsMs);
  return { medianMs, perSecond: (perRun * 1000) / medianMs, runsMs };
}

function randomImages(B: number, cfg: ModelConfig, seed: number): tf.Tensor4D {
  const rng = new Rng(seed);
  const n = B * cfg.imageSize * cfg.imageSize * cfg.channels;
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal();
  return tf.tensor4d(v, [B, cfg.imageSize, cfg.imageSize, cfg.channels]);
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

/** The train step as lib/train/trainer.ts runs it: masks, loss and gradients, AdamW, EMA. */
async function trainStepRow(
  o: BenchOptions,
  preset: string,
  overrides: Partial<ModelConfig>,
  masks: MaskBatch[],
): Promise<StepRow> {
  const model = new IJEPA(preset, { seed: o.seed, overrides });
  const opt = new AdamW(model.namedTrainable());
  const images = randomImages(o.batch, model.cfg, o.seed + 1);
  let loss = NaN;
  try {
    const t = await timeRuns(o, o.batch, async (i) => {
      const m = masks[i % masks.length];
      const r = model.lossAndGrads(images, m);
      loss = (await r.loss.data())[0];
      r.loss.dispose();
      opt.step(r.grads, { lr: 1e-4, weightDecay: 0.04 });
      model.updateTarget(0.996);
    });
    const tokens = masks.slice(o.warmup, o.warmup + o.runs).map((m) => ({
      context: m.contextLen,
      target: m.nTargets * m.targetLen,
    }));
    return { ...t, tokens, loss };
  } finally {
    images.dispose();
    opt.dispose();
    model.dispose();
  }
}

/** The top kernels of one reference train step, and tfjs's peak bytes during it. */
async function profileStep(
  o: BenchOptions,
  masks: MaskBatch,
): Promise<{ peakBytes: number; kernels: { name: string; ms: number; calls: number }[]; calls: number }> {
  const model = new IJEPA("quick", { seed: o.seed, overrides: REFERENCE_OVERRIDES });
  const opt = new AdamW(model.namedTrainable());
  const images = randomImages(o.batch, model.cfg, o.seed + 1);
  try {
    const step = async () => {
      const r = model.lossAndGrads(images, masks);
      await r.loss.data(); // not dataSync: webgpu cannot read synchronously under Deno
      r.loss.dispose();
      opt.step(r.grads, { lr: 1e-4, weightDecay: 0.04 });
      model.updateTarget(0.996);
    };
    await step(); // warm
    const p = await tf.profile(step);
    const agg = new Map<string, { ms: number; calls: number }>();
    for (const k of p.kernels) {
      // customGrad forwards show up as an "unnamed scope" holding the kernels listed on their own
      if (k.name === "unnamed scope") continue;
      const a = agg.get(k.name) ?? { ms: 0, calls: 0 };
      a.ms += Number(k.kernelTimeMs) || 0;
      a.calls++;
      agg.set(k.name, a);
    }
    const kernels = [...agg].map(([name, a]) => ({ name, ms: a.ms, calls: a.calls }))
      .sort((a, b) => b.ms - a.ms);
    const calls = kernels.reduce((s, k) => s + k.calls, 0);
    return { peakBytes: p.peakBytes, kernels, calls };
  } finally {
    images.dispose();
    opt.dispose();
    model.dispose();
  }
}

/** Everything measured on one backend. */
export interface BackendResult {
  label: string;
  /** The backend's one-line description (BLAS library, fused kernels). */
  line: string;
  encoder?: Timing;
  tiny?: StepRow;
  reference?: StepRow;
  probe?: Timing;
  peakRssBytes: number;
  peakTfjsBytes?: number;
  kernelCalls?: number;
  topKernels?: { name: string; ms: number; calls: number }[];
  /** Why this backend did not run, when it did not. */
  skipped?: string;
}

async function benchBackend(o: BenchOptions, b: BenchBackend, masks: MaskBatch[]): Promise<BackendResult> {
  let line: string;
  try {
    const info = await setBackend(b.name, { quiet: true, blas: b.blas });
    if (b.blas && !info.blas?.enabled) {
      return { label: b.label, line: "", peakRssBytes: 0, skipped: `BLAS is off here: ${info.blas?.reason}` };
    }
    const kernels = fusedEnabled()
      ? (simdActive() ? "fused kernels (wasm SIMD)" : "fused kernels (TypeScript)")
      : "tfjs kernels";
    line = `${info.line} | ${kernels}`;
  } catch (e) {
    return { label: b.label, line: "", peakRssBytes: 0, skipped: (e as Error).message.split("\n")[0] };
  }
  peakRss = Deno.memoryUsage().rss;
  const res: BackendResult = { label: b.label, line, peakRssBytes: 0 };
  const ref = modelConfig("quick");
  if (o.rows.includes("encoder")) {
    const model = new IJEPA("quick", { seed: o.seed, overrides: REFERENCE_OVERRIDES });
    const x = randomImages(o.batch, ref, o.seed + 1);
    res.encoder = await timeRuns(o, o.batch, async () => {
      const y = tf.tidy(() => model.targetEncoder.forward(x));
      await y.data();
      y.dispose();
    });
    x.dispose();
    model.dispose();
  }
  if (o.rows.includes("tiny")) {
    const tinyMasks = drawMasks(o, o.warmup + o.runs, o.seed + 7);
    res.tiny = await trainStepRow(o, "tiny", { imageSize: 28 }, tinyMasks);
  }
  if (o.rows.includes("reference")) {
    res.reference = await trainStepRow(o, "quick", REFERENCE_OVERRIDES, masks);
  }
  if (o.rows.includes("probe")) {
    const model = new IJEPA("quick", { seed: o.seed, overrides: REFERENCE_OVERRIDES });
    const n = o.batch * 2;
    const rng = new Rng(o.seed + 3);
    const ds: ImageDataset = {
      images: new Uint8Array(n * 28 * 28).map(() => rng.int(0, 256)),
      labels: new Int32Array(n),
      n,
      height: 28,
      width: 28,
      channels: 1,
      classNames: ["x"],
      source: "bench (random pixels)",
    };
    res.probe = await timeRuns(o, n, async () => {
      await extractFeatures(model.targetEncoder, ds, { batchSize: o.batch, mean: [0.5], std: [0.25] });
    });
    model.dispose();
  }
  if (o.profile && o.rows.includes("reference")) {
    const p = await profileStep(o, masks[o.warmup % masks.length]);
    res.peakTfjsBytes = p.peakBytes;
    res.kernelCalls = p.calls;
    res.topKernels = p.kernels.slice(0, 12);
  }
  sampleRss();
  res.peakRssBytes = peakRss;
  return res;
}

function drawMasks(o: BenchOptions, count: number, seed: number): MaskBatch[] {
  const masker = createMasker(maskPreset(7, 7));
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => masker.sample(rng, o.batch));
}

// ---------------------------------------------------------------------------------------------
// PyTorch

/** What tests/reference/ijepa_step.py (or official_step.py) reported. */
export interface TorchResult {
  medianMs: number;
  perSecond: number;
  runsMs: number[];
  peakRssBytes: number;
  tokens: Tokens[];
  version: string;
  threads: number;
  /** How PyTorch was run: which OpenBLAS build and BLAS threads (see {@link torchSetups}). */
  setup: string;
  /** The BLAS / OpenMP library files the Python process mapped. */
  libraries: string[];
}

/** One way to run PyTorch here: a name for the report and the environment it needs. */
export interface TorchSetup {
  name: string;
  env: Record<string, string>;
}

/**
 * The ways of running PyTorch worth trying on this machine, so that the comparison is against
 * PyTorch at its best. Debian's torch calls libblas.so.3, which `update-alternatives` points at one
 * OpenBLAS build; the others are reached by putting their folder first on LD_LIBRARY_PATH. Measured
 * here (2 cores, the reference step): the OpenMP build 418-578 ms, the pthreads build 668-929 ms,
 * so the choice matters. Each build is tried with one BLAS thread (inside torch's own parallel
 * regions) and with one per core, and with libgomp's default (spinning) wait policy and passive
 * waiting (spinning threads collapse when another process shares the cores: a step took 7.4 s
 * instead of 0.87 s here). What the user set in the environment (LD_LIBRARY_PATH,
 * OPENBLAS_NUM_THREADS, OMP_WAIT_POLICY) is kept and not varied.
 */
export function torchSetups(cores: number, getEnv = (k: string) => Deno.env.get(k)): TorchSetup[] {
  type Choice = { name: string; env: Record<string, string> };
  const mine = (k: string) => getEnv(k) !== undefined;
  const triplet = `${Deno.build.arch}-linux-gnu`;
  const builds: Choice[] = mine("LD_LIBRARY_PATH") ? [] : ["openmp", "pthread"].flatMap((b) => {
    const dir = `/usr/lib/${triplet}/openblas-${b}`;
    try {
      return Deno.statSync(`${dir}/libblas.so.3`).isFile
        ? [{ name: `openblas-${b}`, env: { LD_LIBRARY_PATH: dir } }]
        : [];
    } catch {
      return [];
    }
  });
  const threads: Choice[] = mine("OPENBLAS_NUM_THREADS") ? [] : [...new Set([1, cores])].map((t) => ({
    name: `${t} BLAS thread${t > 1 ? "s" : ""}`,
    env: { OPENBLAS_NUM_THREADS: String(t) },
  }));
  const waits: Choice[] = mine("OMP_WAIT_POLICY") ? [] : [{ name: "OpenMP default wait", env: {} }, {
    name: "passive wait",
    env: { OMP_WAIT_POLICY: "passive" },
  }];
  let out: Choice[] = [{ name: "", env: {} }];
  for (const axis of [builds, threads, waits]) {
    if (axis.length === 0) continue;
    out = out.flatMap((a) =>
      axis.map((b) => ({ name: a.name ? `${a.name}, ${b.name}` : b.name, env: { ...a.env, ...b.env } }))
    );
  }
  return out.map((c) => ({ name: c.name || "as configured by the environment", env: c.env }));
}

async function torchAvailable(python: string): Promise<string | undefined> {
  try {
    const r = await new Deno.Command(python, {
      args: ["-c", "import torch"],
      stdout: "null",
      stderr: "piped",
    })
      .output();
    return r.success ? undefined : `${python} cannot import torch (Debian: apt-get install python3-torch)`;
  } catch (e) {
    return `cannot run ${python}: ${(e as Error).message.split("\n")[0]}`;
  }
}

/** The masks as index lists: context [B][Lc] and targets [M][B][Lt]. */
function masksJson(m: MaskBatch): { context: number[][]; targets: number[][][] } {
  const B = m.batchSize, Lc = m.contextLen, Lt = m.targetLen;
  const context = Array.from(
    { length: B },
    (_, b) => Array.from(m.contextIdx.subarray(b * Lc, (b + 1) * Lc)),
  );
  const targets = Array.from(
    { length: m.nTargets },
    (_, t) =>
      Array.from(
        { length: B },
        (_, b) => Array.from(m.targetIdx.subarray((t * B + b) * Lt, (t * B + b + 1) * Lt)),
      ),
  );
  return { context, targets };
}

interface TorchRun {
  setup: TorchSetup;
  warmup: number;
  runs: number;
  /** Time the official modules (official_step.py, given the checkout) instead of ijepa_step.py. */
  official?: string;
}

async function runTorch(o: BenchOptions, masks: MaskBatch[], run: TorchRun): Promise<TorchResult> {
  const cfg = modelConfig("quick");
  const spec = {
    config: {
      image: cfg.imageSize,
      patch: cfg.patchSize,
      channels: cfg.channels,
      width: cfg.width,
      depth: cfg.depth,
      heads: cfg.heads,
      mlp: cfg.mlpHidden,
      pred_width: cfg.predictorWidth,
      pred_depth: cfg.predictorDepth,
      pred_heads: cfg.predictorHeads,
      eps: cfg.layerNormEps,
    },
    batch: o.batch,
    threads: navigator.hardwareConcurrency || 2,
    warmup: run.warmup,
    runs: run.runs,
    masks: masks.map(masksJson),
  };
  const file = await Deno.makeTempFile({ prefix: "ijepa-bench-masks-", suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify(spec));
    const name = run.official ? "official_step.py" : "ijepa_step.py";
    const script = new URL(`../../tests/reference/${name}`, import.meta.url).pathname;
    const r = await new Deno.Command(o.python, {
      args: run.official ? [script, file, run.official] : [script, file],
      env: run.setup.env,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const out = new TextDecoder().decode(r.stdout).trim();
    if (!r.success) {
      throw new Error(
        `${name} failed (${run.setup.name}): ${
          new TextDecoder().decode(r.stderr).trim().split("\n").slice(-3).join(" ")
        }`,
      );
    }
    const j = JSON.parse(out.split("\n").at(-1)!);
    return {
      medianMs: j.median_ms,
      perSecond: j.img_per_s,
      runsMs: j.step_ms,
      peakRssBytes: j.peak_rss_bytes,
      tokens: (j.context_len as number[]).map((c, i) => ({
        context: c,
        target: masks[0].nTargets * j.target_len[i],
      })),
      version: j.torch,
      threads: j.threads,
      setup: run.setup.name,
      libraries: j.libraries ?? [],
    };
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/**
 * PyTorch at its best here: every setup of {@link torchSetups} gets the full run (its first steps
 * run 2-3x slower than later ones, so short trial runs picked badly), the fastest is the peer; with
 * `--official`, the official modules run on that setup.
 */
async function benchTorch(o: BenchOptions, masks: MaskBatch[]): Promise<NonNullable<BenchResult["torch"]>> {
  const tried: { setup: string; medianMs: number }[] = [];
  let best: TorchResult | undefined;
  let bestSetup: TorchSetup | undefined;
  for (const setup of torchSetups(navigator.hardwareConcurrency || 2)) {
    const t = await runTorch(o, masks, { setup, warmup: o.warmup, runs: o.runs });
    tried.push({ setup: setup.name, medianMs: t.medianMs });
    if (!best || t.medianMs < best.medianMs) [best, bestSetup] = [t, setup];
  }
  const official = o.official
    ? await runTorch(o, masks, { setup: bestSetup!, warmup: o.warmup, runs: o.runs, official: o.official })
    : undefined;
  return { ...best!, ratio: NaN, tried: tried.length > 1 ? tried : [], official };
}

// ---------------------------------------------------------------------------------------------
// Report

/** The whole result, as saved to `.bench/last.json` and printed by `--json`. */
export interface BenchResult {
  date: string;
  /** `loadAvg`: the 1-minute load average before and after the run (other work on the machine). */
  machine: { cores: number; os: string; deno: string; tfjs: string; loadAvg?: [number, number] };
  options: { batch: number; runs: number; warmup: number; seed: number; quick: boolean };
  masker?: { perSecond: number; msPerBatch: number };
  backends: BackendResult[];
  /** PyTorch's best setup, the setups tried (short runs) and, with `--official`, the official modules. */
  torch?: TorchResult & {
    ratio: number;
    tried: { setup: string; medianMs: number }[];
    official?: TorchResult;
  };
  torchSkipped?: string;
}

const GiB = 2 ** 30, MiB = 2 ** 20;
const fix = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(d));
const avgTokens = (t: Tokens[]) =>
  t.length
    ? `${fix(t.reduce((s, x) => s + x.context, 0) / t.length)} / ${
      fix(t.reduce((s, x) => s + x.target, 0) / t.length)
    }`
    : "-";

/** The table `deno task bench` prints, with the previous run's figures in brackets. */
export function formatReport(r: BenchResult, prev?: BenchResult): string {
  const lines: string[] = [];
  lines.push(
    `bench: ${r.machine.cores} cores, ${r.machine.os}, deno ${r.machine.deno}, tfjs ${r.machine.tfjs}; ` +
      `batch ${r.options.batch}, median of ${r.options.runs} runs after ${r.options.warmup} warm-up`,
  );
  const load = r.machine.loadAvg;
  if (load && Number.isFinite(load[0])) {
    const busy = Math.max(load[0], load[1]) > 0.5 * r.machine.cores;
    lines.push(
      `load average ${fix(load[0], 2)} before, ${fix(load[1], 2)} after` +
        (busy ? ": other work shared the cores, so timings (PyTorch's most) are pessimistic" : ""),
    );
  }
  if (r.masker) {
    const p = prev?.masker;
    lines.push(
      `masker (7x7 preset): ${fix(r.masker.perSecond, 0)} examples/s` +
        (p ? ` [prev ${fix(p.perSecond, 0)}]` : ""),
    );
  }
  const cols = r.backends.filter((b) => !b.skipped);
  for (const b of r.backends.filter((b) => b.skipped)) lines.push(`${b.label}: skipped (${b.skipped})`);
  const before = (label: string) => prev?.backends.find((p) => p.label === label && !p.skipped);
  const rows: [string, (b: BackendResult) => string][] = [
    ["encoder forward img/s", (b) => fix(b.encoder?.perSecond)],
    ["train step img/s, tiny", (b) => fix(b.tiny?.perSecond)],
    ["train step img/s, reference", (b) => fix(b.reference?.perSecond)],
    ["  ms per reference step", (b) => fix(b.reference?.medianMs, 0)],
    ["  tokens: context / target", (b) => (b.reference ? avgTokens(b.reference.tokens) : "-")],
    ["probe features img/s", (b) => fix(b.probe?.perSecond)],
    ["peak RSS GiB", (b) => fix(b.peakRssBytes / GiB, 2)],
    [
      "peak tfjs MiB (one step)",
      (b) => fix(b.peakTfjsBytes !== undefined ? b.peakTfjsBytes / MiB : undefined, 0),
    ],
    ["kernel calls per step", (b) => (b.kernelCalls !== undefined ? String(b.kernelCalls) : "-")],
  ];
  const w0 = Math.max(...rows.map(([n]) => n.length)) + 2;
  const cell = (b: BackendResult, f: (b: BackendResult) => string) => {
    const p = before(b.label);
    const now = f(b);
    const then = p ? f(p) : "-";
    return now + (p && then !== "-" ? ` [${then}]` : "");
  };
  const widths = cols.map((b) => Math.max(b.label.length, ...rows.map(([, f]) => cell(b, f).length)) + 3);
  lines.push("".padEnd(w0) + cols.map((b, i) => b.label.padEnd(widths[i])).join("").trimEnd());
  for (const [name, f] of rows) {
    lines.push((name.padEnd(w0) + cols.map((b, i) => cell(b, f).padEnd(widths[i])).join("")).trimEnd());
  }
  if (prev) lines.push(`[brackets: the previous run, ${prev.date}]`);
  for (const b of cols) {
    lines.push(`${b.label}: ${b.line}`);
    if (b.topKernels?.length) {
      lines.push(
        `  top kernels, one reference step: ` +
          b.topKernels.slice(0, 8).map((k) => `${k.name} ${fix(k.ms, 0)} ms (${k.calls})`).join(", "),
      );
    }
  }
  if (r.torch) {
    const ours = cols[0]?.reference;
    if (r.torch.tried?.length) {
      lines.push(
        `PyTorch setups tried (median ms per step): ` +
          r.torch.tried.map((t) => `${t.setup} ${fix(t.medianMs, 0)} ms`).join("; "),
      );
    }
    lines.push(
      `PyTorch ${r.torch.version} (${r.torch.threads} threads, ${r.torch.setup}): ${
        fix(r.torch.perSecond)
      } img/s, ` +
        `${fix(r.torch.medianMs, 0)} ms per step, peak RSS ${fix(r.torch.peakRssBytes / GiB, 2)} GiB, ` +
        `tokens ${avgTokens(r.torch.tokens)}`,
    );
    if (r.torch.libraries?.length) lines.push(`  torch loaded: ${r.torch.libraries.join(", ")}`);
    const off = r.torch.official;
    if (off) {
      const gap = r.torch.medianMs / off.medianMs;
      lines.push(
        `official ijepa modules, same masks and setup: ${fix(off.medianMs, 0)} ms per step, tokens ` +
          `${avgTokens(off.tokens)}; tests/reference/ijepa_step.py / official = ${fix(gap, 2)}x time ` +
          `(${Math.abs(gap - 1) <= 0.15 ? "within" : "OUTSIDE"} 15%)`,
      );
    }
    if (ours) {
      lines.push(
        `ours (${cols[0].label}) / PyTorch: ${fix(r.torch.ratio, 2)}x img/s on the same masks ` +
          `(tokens ours ${avgTokens(ours.tokens)}, PyTorch ${avgTokens(r.torch.tokens)})`,
      );
    }
  } else if (r.torchSkipped) lines.push(`PyTorch: skipped (${r.torchSkipped})`);
  return lines.join("\n");
}

async function readPrevious(path: string): Promise<BenchResult | undefined> {
  if (!path) return undefined;
  try {
    return JSON.parse(await Deno.readTextFile(path)) as BenchResult;
  } catch {
    return undefined;
  }
}

/** Run the bench with parsed options and return the result (printing nothing). */
export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const masks = drawMasks(o, o.warmup + o.runs, o.seed + 5);
  const result: BenchResult = {
    date: new Date().toISOString(),
    machine: {
      cores: navigator.hardwareConcurrency,
      os: `${Deno.build.os}-${Deno.build.arch}`,
      deno: Deno.version.deno,
      tfjs: tf.version.tfjs,
      loadAvg: [loadAvg(), NaN],
    },
    options: { batch: o.batch, runs: o.runs, warmup: o.warmup, seed: o.seed, quick: o.quick },
    backends: [],
  };
  if (o.rows.includes("masker")) {
    const m = benchMasker(createMasker(maskPreset(7, 7)), o.batch, o.quick ? 0.1 : 1, o.seed);
    result.masker = { perSecond: m.masksPerSecond, msPerBatch: m.msPerBatch };
  }
  for (const b of o.backends) result.backends.push(await benchBackend(o, b, masks));
  if (o.vsTorch) {
    const why = await torchAvailable(o.python);
    if (why) result.torchSkipped = why;
    else {
      const t = await benchTorch(o, masks);
      const ours = result.backends.find((b) => b.reference)?.reference;
      result.torch = { ...t, ratio: ours ? ours.perSecond / t.perSecond : NaN };
    }
  }
  result.machine.loadAvg![1] = loadAvg();
  return result;
}

/** The 1-minute load average, or NaN where it cannot be read (no --allow-sys, Windows). */
function loadAvg(): number {
  try {
    return Deno.loadavg()[0];
  } catch {
    return NaN;
  }
}

async function main(args: string[]): Promise<void> {
  const o = parseBenchFlags(args);
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
