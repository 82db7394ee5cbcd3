/**
 * The bench's `wasm without BLAS / with` ratio measured step by step: one model on the wasm backend
 * whose products alternate between native BLAS and our own SIMD kernels (lib/engine/simd_gemm.ts)
 * from one train step to the next, on the same masks. The backend rows time the two setups minutes
 * apart, while this VM's speed drifts by 10-15% in that time; alternating, both see the same machine.
 * OpenBLAS's threads sleep right after each product (lib/engine/blas_library.ts sets
 * `OPENBLAS_THREAD_TIMEOUT`), so a step with BLAS leaves none spinning into the step after it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { setBackend } from "../engine/backend.ts";
import { blasStatus, disableBlas, enableBlas } from "../engine/blas.ts";
import { IJEPA } from "../model/ijepa.ts";
import { AdamW } from "../train/adamw.ts";
import type { MaskBatch } from "../masks/mod.ts";
import { type AlternateRow, type BenchOptions, median, REFERENCE_OVERRIDES } from "./bench_options.ts";

/**
 * Time the reference step on wasm alternately with BLAS and without (ABBA order, after two warm-up
 * steps of each), at least 8 steps each; undefined where no BLAS library loads. BLAS is left off.
 */
export async function alternateBlas(o: BenchOptions, masks: MaskBatch[]): Promise<AlternateRow | undefined> {
  await setBackend("wasm", { quiet: true, blas: false });
  // switch between the two products by the kernel registered, not by loading and unloading the library
  const simd = tf.getKernel("BatchMatMul", "wasm")!;
  if (!enableBlas({ backends: ["wasm"] }).enabled) return undefined;
  const native = tf.getKernel("BatchMatMul", "wasm")!;
  const use = (k: tf.KernelConfig) => {
    if (tf.getKernel(k.kernelName, "wasm") === k) return;
    tf.unregisterKernel(k.kernelName, "wasm");
    tf.registerKernel(k);
  };
  const steps = Math.max(8, o.runs);
  const ms: [number[], number[]] = [[], []]; // with, without
  let model: IJEPA | undefined, opt: AdamW | undefined, images: tf.Tensor4D | undefined;
  try {
    const m = model = new IJEPA("quick", { seed: o.seed, overrides: REFERENCE_OVERRIDES });
    const adam = opt = new AdamW(m.namedTrainable());
    const { imageSize, channels } = m.cfg;
    const x = images = tf.randomNormal(
      [o.batch, imageSize, imageSize, channels],
      0,
      1,
      "float32",
      o.seed + 1,
    );
    const step = async (blas: boolean, i: number) => {
      use(blas ? native : simd);
      const t0 = performance.now();
      const r = m.lossAndGrads(x, masks[i % masks.length]);
      await r.loss.data();
      r.loss.dispose();
      adam.step(r.grads, { lr: 1e-4, weightDecay: 0.04 });
      m.updateTarget(0.996);
      return performance.now() - t0;
    };
    for (let i = 0; i < 2; i++) {
      await step(true, i);
      await step(false, i);
    }
    for (let i = 0; i < 2 * steps; i++) {
      const blas = (i + (i >> 1)) % 2 === 0; // with, without, without, with, ...
      ms[blas ? 0 : 1].push(await step(blas, i >> 1));
    }
  } finally {
    use(native); // disableBlas puts the SIMD kernel back
    if (blasStatus().enabled) disableBlas();
    images?.dispose();
    opt?.dispose();
    model?.dispose();
  }
  const withMs = median(ms[0]), withoutMs = median(ms[1]);
  return { withMs, withoutMs, steps, ratio: withoutMs / withMs };
}
