/**
 * The bench's `products` row: every matrix product of one reference train step, timed on the wasm
 * backend with each product kernel we can run there, so that each change to the products is a ratio
 * in one run: tfjs's stock kernel (with explicit transposes, as lib/engine/matmul.ts calls it
 * without a fast kernel), our SIMD kernel on the main thread, the same split over worker threads
 * (lib/engine/gemm_pool.ts), and native BLAS where one is found. Shapes and counts come from running
 * the step, not from a list.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { setBackend } from "../engine/backend.ts";
import { blasStatus, disableBlas, enableBlas } from "../engine/blas.ts";
import { setSimd } from "../engine/fused_simd.ts";
import { readyWorkers, setGemmWorkers, threadsWanted } from "../engine/gemm_pool.ts";
import { IJEPA } from "../model/ijepa.ts";
import { AdamW } from "../train/adamw.ts";
import type { MaskBatch } from "../masks/mod.ts";
import {
  type ProductShape,
  type ProductsRow,
  type ProductTiming,
  REFERENCE_OVERRIDES,
} from "./bench_options.ts";

/** Record the BatchMatMul calls of one reference step (after a warm-up step). */
async function stepProducts(batch: number, masks: MaskBatch): Promise<ProductShape[]> {
  const model = new IJEPA("quick", { seed: 0, overrides: REFERENCE_OVERRIDES });
  const opt = new AdamW(model.namedTrainable());
  const images = tf.randomNormal([batch, 28, 28, 1], 0, 1, "float32", 1) as tf.Tensor4D;
  const step = async () => {
    const r = model.lossAndGrads(images, masks);
    await r.loss.data();
    r.loss.dispose();
    opt.step(r.grads, { lr: 1e-4, weightDecay: 0.04 });
    model.updateTarget(0.996);
  };
  await step();
  // count the products of one step by wrapping the registered kernel (attributes included)
  const seen = new Map<string, ProductShape>();
  const kernel = tf.getKernel("BatchMatMul", "wasm")!;
  const record: tf.KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA = false, transposeB = false } = args.attrs as {
      transposeA?: boolean;
      transposeB?: boolean;
    };
    const ra = a.shape.length, rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2],
      k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const bt = Math.max(ra === 3 ? a.shape[0] : 1, rb === 3 ? b.shape[0] : 1);
    const key = [bt, m, k, n, transposeA, transposeB].join();
    const s = seen.get(key) ?? { batch: bt, m, k, n, transposeA, transposeB, calls: 0 };
    s.calls++;
    seen.set(key, s);
    return kernel.kernelFunc(args);
  };
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({ ...kernel, kernelFunc: record });
  try {
    await step();
  } finally {
    tf.unregisterKernel("BatchMatMul", "wasm");
    tf.registerKernel(kernel);
  }
  tf.dispose(images);
  opt.dispose();
  model.dispose();
  return [...seen.values()].sort((x, y) => y.calls * flop(y) - x.calls * flop(x));
}

function flop(s: ProductShape): number {
  return 2 * s.batch * s.m * s.n * s.k;
}

/** GFLOP/s of `s` with the kernels now registered, timed over at least `seconds`. */
async function rate(s: ProductShape, explicitTranspose: boolean, seconds: number): Promise<number> {
  const aShape = [...(s.batch > 1 ? [s.batch] : []), ...(s.transposeA ? [s.k, s.m] : [s.m, s.k])];
  const bShape = [...(s.batch > 1 ? [s.batch] : []), ...(s.transposeB ? [s.n, s.k] : [s.k, s.n])];
  const a = tf.randomNormal(aShape, 0, 1, "float32", 2), b = tf.randomNormal(bShape, 0, 1, "float32", 3);
  const swap = (t: tf.Tensor) => tf.transpose(t, t.rank === 3 ? [0, 2, 1] : [1, 0]);
  // wasm runs a kernel when it is called, so the product is done when matMul returns: reading the
  // result back (`await y.data()`, a trip through the event loop and a copy out of the heap) would add
  // 1-4 ms to products of 5-20 ms, as it did until 2026-12-05
  const once = () => {
    const y = tf.tidy(() =>
      explicitTranspose
        ? tf.matMul(s.transposeA ? swap(a) : a, s.transposeB ? swap(b) : b)
        : tf.matMul(a, b, s.transposeA, s.transposeB)
    );
    y.dispose();
  };
  once();
  let n = 0;
  const t0 = performance.now();
  while (n < 2 || performance.now() - t0 < seconds * 1000) {
    once();
    n++;
  }
  const ms = (performance.now() - t0) / n;
  await tf.nextFrame(); // let timers and workers' messages run between shapes
  tf.dispose([a, b]);
  return flop(s) / ms / 1e6;
}

/**
 * Time every product shape of the reference step with each kernel available on wasm (BLAS is left
 * off afterwards; each backend row sets its own).
 */
export async function benchProducts(batch: number, masks: MaskBatch, seconds: number): Promise<ProductsRow> {
  await setBackend("wasm", { quiet: true, blas: false });
  const shapes = await stepProducts(batch, masks);
  const threads = threadsWanted();
  // start the workers and wait for them, so the threaded column is what a step gets
  tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])).dispose();
  for (let i = 0; i < 200 && threads > 1 && readyWorkers() === 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  const kernels: string[] = [];
  const setups: [string, () => void, boolean][] = [
    ["tfjs stock", () => setSimd(false), true],
    ["SIMD, 1 thread", () => {
      setSimd(true);
      setGemmWorkers(false);
    }, false],
  ];
  if (readyWorkers() > 0) {
    setups.push([`SIMD, ${readyWorkers() + 1} threads`, () => setGemmWorkers(true), false]);
  }
  const out: ProductTiming[] = shapes.map((s) => ({ ...s, gflops: {} }));
  try {
    for (const [label, apply, explicit] of setups) {
      apply();
      kernels.push(label);
      for (const s of out) s.gflops[label] = await rate(s, explicit, seconds);
    }
    const blas = enableBlas({ backends: ["wasm"] });
    if (blas.enabled) {
      const label = "BLAS";
      kernels.push(label);
      for (const s of out) s.gflops[label] = await rate(s, false, seconds);
    }
  } finally {
    setSimd(true);
    setGemmWorkers(true);
    if (blasStatus().enabled) disableBlas();
  }
  const msPerStep: Record<string, number> = {};
  for (const kname of kernels) {
    msPerStep[kname] = out.reduce((sum, s) => sum + s.calls * flop(s) / (s.gflops[kname] * 1e6), 0);
  }
  return {
    kernels,
    shapes: out,
    msPerStep,
    gflopPerStep: out.reduce((t, s) => t + s.calls * flop(s), 0) / 1e9,
  };
}

/** The row as text lines. */
export function formatProducts(p: ProductsRow, cores: number): string[] {
  const head = `matrix products of one reference step (${
    fix(p.gflopPerStep, 1)
  } GFLOP), wasm, ${cores} cores:`;
  const lines = [head, `  ms per step: ${p.kernels.map((k) => `${k} ${fix(p.msPerStep[k], 0)}`).join(", ")}`];
  lines.push(`  GFLOP/s per shape (calls a step): ${p.kernels.join(" | ")}`);
  for (const s of p.shapes) {
    const name = `${s.batch > 1 ? `${s.batch} x ` : ""}${s.m}x${s.k}x${s.n} ${s.transposeA ? "T" : "N"}${
      s.transposeB ? "T" : "N"
    } (${s.calls})`;
    lines.push(`    ${name.padEnd(28)} ${p.kernels.map((k) => fix(s.gflops[k], 1)).join(" | ")}`);
  }
  return lines;
}

function fix(x: number | undefined, d: number): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(d);
}
