/**
 * The bench's measurements: the masker, the encoder forward, full train steps (`tiny` and the
 * `reference` step PyTorch is compared on), probe feature extraction, peak memory and the top
 * kernels of one step, per backend configuration. `deno task bench` is its command line (the rows
 * are described there); {@link runBench} returns the result without printing.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { AdamW } from "../train/adamw.ts";
import { setBackend } from "../engine/backend.ts";
import { type ModelConfig, modelConfig } from "../model/config.ts";
import type { ImageDataset } from "../data/dataset.ts";
import { extractFeatures } from "./features.ts";
import { fusedEnabled } from "../engine/fused_mode.ts";
import { simdActive } from "../engine/fused_simd.ts";
import { IJEPA } from "../model/ijepa.ts";
import { benchMasker, createMasker, type MaskBatch, maskPreset } from "../masks/mod.ts";
import { Rng } from "../engine/rng.ts";
import { watchWebGpu, type WebGpuTraffic, webGpuTraffic } from "../engine/webgpu_traffic.ts";
import {
  type BackendResult,
  type BenchBackend,
  type BenchOptions,
  type BenchResult,
  type BenchShape,
  median,
  REFERENCE_OVERRIDES,
  type StepRow,
  type Timing,
} from "./bench_options.ts";
import { alternateTorch, benchTorch, torchAvailable } from "./bench_torch.ts";
import { benchProducts } from "./bench_products.ts";
import { alternateBlas } from "./bench_alternate.ts";

let peakRss = 0;
function sampleRss(): void {
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
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
): Promise<
  {
    peakBytes: number;
    kernels: { name: string; ms: number; calls: number }[];
    calls: number;
    gpu?: WebGpuTraffic;
  }
> {
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
    const counting = watchWebGpu();
    const before = webGpuTraffic();
    const p = await tf.profile(step);
    const after = webGpuTraffic();
    const gpu = counting
      ? {
        dispatches: after.dispatches - before.dispatches,
        copies: after.copies - before.copies,
        bytesUp: after.bytesUp - before.bytesUp,
        bytesDown: after.bytesDown - before.bytesDown,
      }
      : undefined;
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
    return { peakBytes: p.peakBytes, kernels, calls, gpu };
  } finally {
    images.dispose();
    opt.dispose();
    model.dispose();
  }
}

/** Every row of one backend configuration (a skipped result when it cannot start). */
async function benchBackend(o: BenchOptions, b: BenchBackend, masks: MaskBatch[]): Promise<BackendResult> {
  let line: string;
  try {
    const info = await setBackend(b.name, { quiet: true, blas: b.blas });
    if (b.blas && !info.blas?.enabled) {
      return { label: b.label, line: "", peakRssBytes: 0, skipped: `BLAS is off here: ${info.blas?.reason}` };
    }
    const kernels = !fusedEnabled()
      ? "tfjs kernels"
      : b.name === "webgpu"
      ? "fused kernels (WGSL)"
      : simdActive()
      ? "fused kernels (wasm SIMD)"
      : "fused kernels (TypeScript)";
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
  for (const shape of o.shapes) {
    res.shapes ??= {};
    res.shapes[shape] = await trainStepRow(o, shape, {}, shapeMasks(o, shape));
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
    res.gpuTraffic = p.gpu;
    res.topKernels = p.kernels.slice(0, 12);
  }
  sampleRss();
  res.peakRssBytes = peakRss;
  return res;
}

/** The masks of a `--shapes` row: the paper's, on that shape's patch grid (the same on both sides). */
export function shapeMasks(o: BenchOptions, shape: BenchShape): MaskBatch[] {
  const cfg = modelConfig(shape);
  const g = cfg.imageSize / cfg.patchSize;
  return drawMasks(o, o.warmup + o.runs, o.seed + 11, g);
}

function drawMasks(o: BenchOptions, count: number, seed: number, grid = 7): MaskBatch[] {
  const masker = createMasker(maskPreset(grid, grid));
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => masker.sample(rng, o.batch));
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
  if (o.rows.includes("products")) {
    result.products = await benchProducts(o.batch, masks[0], o.quick ? 0.02 : 0.25);
  }
  for (const b of o.backends) result.backends.push(await benchBackend(o, b, masks));
  // the two wasm setups' ratio again, their steps alternating (lib/eval/bench_alternate.ts)
  const labels = o.backends.map((b) => b.label);
  if (o.rows.includes("reference") && labels.includes("wasm") && labels.includes("wasm+blas")) {
    try {
      result.alternate = await alternateBlas(o, masks);
    } catch (e) {
      result.alternateSkipped = (e as Error).message.split("\n")[0]; // the rows measured so far stand
    }
  }
  if (o.vsTorch) {
    const why = await torchAvailable(o.python);
    if (why) result.torchSkipped = why;
    else {
      const t = await benchTorch(o, masks, shapeMasks);
      const first = o.backends.find((_, i) => result.backends[i].reference);
      const ours = result.backends.find((b) => b.reference)?.reference;
      // ours again after PyTorch's runs, which take minutes while the machine's speed drifts: the
      // faster of the two counts, as the fastest of PyTorch's setups does
      const after = first
        ? (await benchBackend({ ...o, rows: ["reference"], shapes: [], profile: false }, first, masks))
          .reference
        : undefined;
      // and both again, round after round, so that they see the same minutes of the machine
      const alternate = first
        ? await alternateTorch(o, masks, t.setup, async () => {
          const r = await benchBackend(
            { ...o, rows: ["reference"], shapes: [], profile: false },
            first,
            masks,
          );
          return r.reference?.medianMs ?? NaN;
        }, o.quick ? 1 : 3)
        : undefined;
      result.torch = {
        ...t,
        ratio: torchRatio(t, ours, after),
        ...(after
          ? { oursAfter: { medianMs: after.medianMs, perSecond: after.perSecond, runsMs: after.runsMs } }
          : {}),
        ...(alternate ? { alternate } : {}),
      };
      for (const [shape, ts] of Object.entries(t.shapes ?? {})) {
        const mine = result.backends.find((b) => b.shapes?.[shape as BenchShape])?.shapes
          ?.[shape as BenchShape];
        ts.ratio = mine ? mine.perSecond / ts.perSecond : NaN;
      }
    }
  }
  result.machine.loadAvg![1] = loadAvg();
  return result;
}

/**
 * Ours / PyTorch in img/s: our faster reference timing (before PyTorch's runs, and `after` them when
 * timed) against PyTorch's; NaN without ours.
 */
export function torchRatio(torch: Timing, ours?: Timing, after?: Timing): number {
  if (!ours) return NaN;
  return Math.max(ours.perSecond, after?.perSecond ?? 0) / torch.perSecond;
}

/** The 1-minute load average, or NaN where it cannot be read (no --allow-sys, Windows). */
function loadAvg(): number {
  try {
    return Deno.loadavg()[0];
  } catch {
    return NaN;
  }
}
