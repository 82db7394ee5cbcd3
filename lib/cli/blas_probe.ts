/**
 * Micro-benchmark of tfjs matMul: stock wasm kernel vs BLAS on wasm vs BLAS on cpu, in GFLOP/s
 * (median of several runs), on the GEMM shapes of a small ViT train step (batch 64, 49 tokens,
 * width 192, 3 heads).
 *
 * `deno run -A lib/cli/blas_probe.ts [--runs 7] [--threads N] [--cpu-stock] [--json]`
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { disableBlas, enableBlas, setBlasThreads } from "../engine/blas.ts";
import { parseFlags, runMain } from "./args.ts";

/** One GEMM of the model: C = op(A) op(B). */
interface ProbeShape {
  name: string;
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
}

/** The model's GEMMs (B=64 images, T=49 tokens, D=192, 3 heads of 64). */
const PROBE_SHAPES: ProbeShape[] = [
  { name: "qkv proj", a: [64 * 49, 192], b: [192, 576] }, // [B*T, D] x [D, 3D]
  { name: "mlp up", a: [3136, 192], b: [192, 768] }, // [B*T, D] x [D, 4D]
  { name: "attn scores", a: [64 * 3, 49, 64], b: [64 * 3, 64, 49] }, // [B*H, T, hd] x [B*H, hd, T]
  // The backward pass of "qkv proj": dX = dY Wᵀ and dW = Xᵀ dY, as tfjs's gradient calls them.
  { name: "qkv dX (B^T)", a: [3136, 576], b: [192, 576], transposeB: true },
  { name: "qkv dW (A^T)", a: [3136, 192], b: [3136, 576], transposeA: true },
];

/** What runs the product. `cpu` stock is about 1-2 GFLOP/s: slow to measure. */
type ProbeConfig = "wasm" | "wasm+blas" | "cpu+blas" | "cpu";

/** One measurement. */
interface ProbeRow {
  shape: string;
  config: ProbeConfig;
  /** Median GFLOP/s over the runs; NaN when BLAS is off for a +blas config. */
  gflops: number;
  /** Median milliseconds per product. */
  ms: number;
}

/** Options of {@link probeBlas}. */
interface ProbeOptions {
  /** Timed runs per measurement (the median is kept). */
  runs?: number;
  /** Untimed runs first. */
  warmup?: number;
  /** Names from {@link PROBE_SHAPES}; default all. */
  shapes?: string[];
  configs?: ProbeConfig[];
  /** BLAS threads (0: the library's default). */
  threads?: number;
}

/**
 * Time every shape under every config (median GFLOP/s). Switches the tfjs backend and turns BLAS on
 * and off as it goes; BLAS is off when it returns.
 */
async function probeBlas(opts: ProbeOptions = {}): Promise<ProbeRow[]> {
  const runs = opts.runs ?? 7, warmup = opts.warmup ?? 2;
  const shapes = PROBE_SHAPES.filter((s) => !opts.shapes || opts.shapes.includes(s.name));
  if (opts.shapes && shapes.length !== opts.shapes.length) {
    throw new Error(
      `blas_probe: shapes must be among ${PROBE_SHAPES.map((s) => s.name).join(", ")}, got ` +
        JSON.stringify(opts.shapes),
    );
  }
  const rows: ProbeRow[] = [];
  for (const config of opts.configs ?? ["wasm", "wasm+blas", "cpu+blas"]) {
    const backend = config.startsWith("wasm") ? "wasm" : "cpu";
    if (backend === "wasm") await import("@tensorflow/tfjs-backend-wasm"); // registers the backend
    if (!(await tf.setBackend(backend))) throw new Error(`blas_probe: backend ${backend} failed`);
    let on = false;
    if (config.endsWith("+blas")) {
      on = enableBlas({ backends: [backend] }).enabled;
      if (on && opts.threads) setBlasThreads(opts.threads);
    } else disableBlas();
    for (const s of shapes) {
      if (config.endsWith("+blas") && !on) {
        rows.push({ shape: s.name, config, gflops: NaN, ms: NaN });
        continue;
      }
      const ms = timeMatMul(s, runs, warmup);
      rows.push({ shape: s.name, config, gflops: flops(s) / ms / 1e6, ms });
    }
    disableBlas();
  }
  return rows;
}

function flops(s: ProbeShape): number {
  const ra = s.a.length, rb = s.b.length;
  const m = s.transposeA ? s.a[ra - 1] : s.a[ra - 2];
  const k = s.transposeA ? s.a[ra - 2] : s.a[ra - 1];
  const n = s.transposeB ? s.b[rb - 2] : s.b[rb - 1];
  const batch = s.a.slice(0, -2).reduce((p, d) => p * d, 1);
  return 2 * batch * m * n * k;
}

function timeMatMul(s: ProbeShape, runs: number, warmup: number): number {
  const a = tf.randomNormal(s.a), b = tf.randomNormal(s.b);
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    // wasm and cpu kernels are synchronous: the product is done when matMul returns.
    const t0 = performance.now();
    const c = tf.matMul(a, b, s.transposeA, s.transposeB);
    const dt = performance.now() - t0;
    c.dispose();
    if (i >= warmup) times.push(dt);
  }
  tf.dispose([a, b]);
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}

async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, {
    name: "blas-probe",
    summary: "GFLOP/s of tfjs matMul: stock wasm vs wasm+BLAS vs cpu+BLAS (median of runs).",
    flags: {
      runs: { type: "int", default: 7, help: "timed runs per measurement" },
      warmup: { type: "int", default: 2, help: "untimed runs first" },
      threads: { type: "int", default: 0, help: "BLAS threads (0: library default)" },
      "cpu-stock": { type: "bool", help: "also time the stock cpu kernel (slow)" },
      json: { type: "bool", help: "print JSON rows instead of a table" },
    },
  });
  const status = enableBlas();
  disableBlas();
  const configs: ProbeConfig[] = ["wasm", "wasm+blas", "cpu+blas"];
  if (f["cpu-stock"]) configs.push("cpu");
  const rows = await probeBlas({
    runs: f.runs as number,
    warmup: f.warmup as number,
    threads: f.threads as number,
    configs,
  });
  if (f.json) {
    console.log(JSON.stringify({ blas: status.reason, threads: status.threads, rows }));
    return;
  }
  console.log(`BLAS: ${status.reason}; threads ${f.threads || status.threads || "?"}`);
  console.log("GFLOP/s, median of " + f.runs + " runs");
  console.log(["shape".padEnd(14), ...configs.map((c) => c.padStart(10))].join(" "));
  for (const s of PROBE_SHAPES) {
    const cells = configs.map((c) => {
      const r = rows.find((r) => r.shape === s.name && r.config === c)!;
      return (Number.isNaN(r.gflops) ? "off" : r.gflops.toFixed(1)).padStart(10);
    });
    console.log([s.name.padEnd(14), ...cells].join(" "));
  }
}

if (import.meta.main) runMain(main);
