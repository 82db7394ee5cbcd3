/**
 * For users whose matrix products run without BLAS: {@link blasAdvice} measures what that costs
 * here and says how to fix it, beside the figures of {@link MAIN_JOB_TRAINING}.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { BlasStatus } from "./blas_library.ts";
import { readyWorkers, threadsWanted } from "./gemm_pool.ts";
import { simdGemmActive } from "./simd_gemm.ts";

/**
 * How fast the main job trained (img/s, 300 quick-preset steps) on our 2-core build machine with
 * OpenBLAS (its own AVX-512 kernels) and without it (our SIMD product kernel on both cores), both in
 * the same fast hour of 2026-12-05 (README, first section): the figures {@link blasAdvice} quotes
 * beside its own measurement.
 */
export const MAIN_JOB_TRAINING = { withBlas: 197, withoutBlas: 94 } as const;

/**
 * For a user whose products run on tfjs's stock kernels because no BLAS library was found: one
 * line saying what that costs here, measured now, and how to fix it. It times the reference
 * model's largest product ([3136, 192] x [192, 768], 0.92 GFLOP) on the active backend: about
 * 0.1 s. Returns undefined when BLAS is on, or off by the user's choice (`IJEPA_BLAS=off`, a
 * caller's `blas: false`), or when the active backend is not wasm or cpu.
 *
 * @example
 * ```ts
 * import { blasAdvice } from "./blas_advice.ts";
 * const line = await blasAdvice({ enabled: true, reason: "OpenBLAS", backends: ["wasm"] });
 * if (line !== undefined) throw new Error("BLAS on: nothing to advise");
 * ```
 */
export async function blasAdvice(status: BlasStatus): Promise<string | undefined> {
  const backend = tf.getBackend();
  if (status.enabled || (backend !== "wasm" && backend !== "cpu")) return undefined;
  if (!/no BLAS library found|may be reference BLAS|FFI not permitted/.test(status.reason)) return undefined;
  const [m, k, n] = [3136, 192, 768];
  const a = tf.randomNormal([m, k]), b = tf.randomNormal([k, n]);
  try {
    // wasm and cpu compute synchronously: the product is done when matMul returns. Reading the
    // result back (data()) would add the copy of its 9.6 MB to the time (it made a 15 ms product
    // read as 60 ms here).
    const once = async () => {
      await tf.nextFrame();
      const t0 = performance.now();
      tf.matMul(a, b).dispose();
      return performance.now() - t0;
    };
    await once(); // warm-up; it also starts the product's worker threads, which we wait for
    for (let i = 0; i < 40 && simdGemmActive() && threadsWanted() > 1 && readyWorkers() === 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const ms = Math.min(await once(), await once());
    const gflops = (2 * m * k * n) / ms / 1e6;
    const os = (globalThis as { Deno?: typeof Deno }).Deno?.build.os ?? "linux";
    const fix = os === "linux"
      ? "`sudo apt-get install libopenblas0-pthread` (Debian/Ubuntu) or your distribution's OpenBLAS"
      : os === "windows"
      ? "put libopenblas.dll on PATH or set IJEPA_BLAS=<path>"
      : "set IJEPA_BLAS=<path> to a BLAS library";
    const kernel = simdGemmActive()
      ? `our wasm SIMD kernel on ${readyWorkers() + 1} thread${readyWorkers() ? "s" : ""}`
      : `tfjs's stock ${backend} kernel`;
    return `BLAS off, so matrix products run on ${kernel}: ${gflops.toFixed(0)} GFLOP/s ` +
      `here (measured now), where OpenBLAS ran them at 140-270 GFLOP/s on 2-core machines of ours; ` +
      `there the main job trained at ${MAIN_JOB_TRAINING.withoutBlas} img/s without BLAS and ` +
      `${MAIN_JOB_TRAINING.withBlas} img/s with it. To speed up: ${fix}.`;
  } finally {
    a.dispose();
    b.dispose();
  }
}
