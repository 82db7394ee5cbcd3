/**
 * The bench's PyTorch peer: tests/reference/ijepa_step.py (or, with `--official`, the official
 * modules via official_step.py) timed on the very same mask batches, on each way of running
 * PyTorch here ({@link torchSetups}), the fastest kept.
 *
 * @module
 */
import { modelConfig } from "../model/config.ts";
import type { MaskBatch } from "../masks/mod.ts";
import {
  type BenchOptions,
  type BenchResult,
  type BenchShape,
  median,
  type TorchResult,
  type TorchSetup,
  type VersusRow,
} from "./bench_options.ts";

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
  type Choice = { name: string; env: Record<string, string>; unset?: string[] };
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
  // Where the environment forces OpenBLAS's kernel family (OPENBLAS_CORETYPE, with OPENBLAS_L2_SIZE,
  // as this build machine does), OpenBLAS's own choice is tried too: here Haswell's AVX2 kernels
  // against the Cooperlake (AVX-512) ones it picks itself, 1.9x faster on the step's products
  // (measured 2026-12-04; the results agreed with float64 products on 400 random shapes).
  const forced = getEnv("OPENBLAS_CORETYPE");
  const kernels: Choice[] = forced === undefined ? [] : [{ name: `OPENBLAS_CORETYPE=${forced}`, env: {} }, {
    name: "OpenBLAS's own kernel choice",
    env: {},
    unset: ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"],
  }];
  let out: Choice[] = [{ name: "", env: {} }];
  for (const axis of [builds, threads, waits, kernels]) {
    if (axis.length === 0) continue;
    out = out.flatMap((a) =>
      axis.map((b) => ({
        name: a.name ? `${a.name}, ${b.name}` : b.name,
        env: { ...a.env, ...b.env },
        ...(a.unset || b.unset ? { unset: [...a.unset ?? [], ...b.unset ?? []] } : {}),
      }))
    );
  }
  return out.map((c) => ({ ...c, name: c.name || "as configured by the environment" }));
}

/** Why `python` cannot run the PyTorch rows, or undefined when `import torch` works. */
export async function torchAvailable(python: string): Promise<string | undefined> {
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
  /** The model's preset: the reference row's `quick` unless a `--shapes` row. */
  preset?: string;
}

/** The child's environment: ours plus the setup's variables, less those it unsets. */
export function childEnv(setup: TorchSetup): { env: Record<string, string>; clearEnv?: boolean } {
  if (!setup.unset?.length) return { env: setup.env };
  const env = Deno.env.toObject();
  for (const k of setup.unset) delete env[k];
  return { env: { ...env, ...setup.env }, clearEnv: true };
}

async function runTorch(o: BenchOptions, masks: MaskBatch[], run: TorchRun): Promise<TorchResult> {
  const cfg = modelConfig(run.preset ?? "quick");
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
    device: run.setup.device ?? "cpu",
    autocast: run.setup.autocast ?? null,
  };
  const file = await Deno.makeTempFile({ prefix: "ijepa-bench-masks-", suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify(spec));
    const name = run.official ? "official_step.py" : "ijepa_step.py";
    const script = new URL(`../../tests/reference/${name}`, import.meta.url).pathname;
    const r = await new Deno.Command(o.python, {
      args: run.official ? [script, file, run.official] : [script, file],
      ...childEnv(run.setup),
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
      blasCores: j.blas_cores ?? [],
    };
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/** The ways PyTorch can run for `o`: on CUDA fp32 and bf16 autocast, else {@link torchSetups}. */
function setupsFor(o: BenchOptions): TorchSetup[] {
  return o.device === "cuda"
    ? [{ name: "CUDA fp32", env: {}, device: "cuda" }, {
      name: "CUDA bf16 autocast",
      env: {},
      device: "cuda",
      autocast: "bf16",
    }]
    : torchSetups(navigator.hardwareConcurrency || 2);
}

/**
 * Ours / PyTorch from `rounds` rounds that each time our reference step (`ours`, median ms) and then
 * PyTorch's on its setup named `setup` (the fastest {@link benchTorch} found), same masks and runs:
 * the two see the same minutes of a machine whose speed drifts by 10-15% in the minutes the setups
 * take. The ratio is the median of the rounds' PyTorch / ours times.
 */
export async function alternateTorch(
  o: BenchOptions,
  masks: MaskBatch[],
  setup: string,
  ours: () => Promise<number>,
  rounds: number,
): Promise<VersusRow> {
  const s = setupsFor(o).find((x) => x.name === setup);
  if (!s) throw new Error(`bench: no PyTorch setup named ${setup}`);
  const oursMs: number[] = [], torchMs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    oursMs.push(await ours());
    torchMs.push((await runTorch(o, masks, { setup: s, warmup: o.warmup, runs: o.runs })).medianMs);
  }
  return { oursMs, torchMs, ratio: median(torchMs.map((t, r) => t / oursMs[r])) };
}

/**
 * PyTorch at its best here: every setup of {@link torchSetups} (with `--device cuda`: fp32 and bf16
 * autocast on CUDA) gets the full run (its first steps
 * run 2-3x slower than later ones, so short trial runs picked badly), the fastest is the peer; with
 * `--official`, the official modules run on that setup.
 */
export async function benchTorch(
  o: BenchOptions,
  masks: MaskBatch[],
  shapeMasks: (o: BenchOptions, shape: BenchShape) => MaskBatch[] = () => [],
): Promise<NonNullable<BenchResult["torch"]>> {
  const tried: { setup: string; medianMs: number }[] = [];
  let best: TorchResult | undefined;
  let bestSetup: TorchSetup | undefined;
  const setups = setupsFor(o);
  for (const setup of setups) {
    const t = await runTorch(o, masks, { setup, warmup: o.warmup, runs: o.runs });
    tried.push({ setup: setup.name, medianMs: t.medianMs });
    if (!best || t.medianMs < best.medianMs) [best, bestSetup] = [t, setup];
  }
  const official = o.official
    ? await runTorch(o, masks, { setup: bestSetup!, warmup: o.warmup, runs: o.runs, official: o.official })
    : undefined;
  // the extra shapes: on CUDA both precisions (which wins depends on the shape), on the CPU the
  // setup that won the reference row (trying all eight at 224 px would take many minutes)
  const shapes: Partial<Record<BenchShape, TorchResult & { ratio: number }>> = {};
  for (const shape of o.shapes) {
    let top: TorchResult | undefined;
    for (const setup of o.device === "cuda" ? setups : [bestSetup!]) {
      const t = await runTorch(o, shapeMasks(o, shape), {
        setup,
        warmup: o.warmup,
        runs: o.runs,
        preset: shape,
      });
      if (!top || t.medianMs < top.medianMs) top = t;
    }
    shapes[shape] = { ...top!, ratio: NaN };
  }
  return { ...best!, ratio: NaN, tried: tried.length > 1 ? tried : [], official, shapes };
}
