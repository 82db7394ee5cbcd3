/**
 * Native BLAS for TensorFlow.js matrix products, called through Deno FFI.
 *
 * Almost all of a ViT's arithmetic is matrix products. tfjs's `wasm` backend runs them at 20-44
 * GFLOP/s and the `cpu` backend at 1-2; a system BLAS (OpenBLAS, Apple Accelerate, MKL, BLIS) runs
 * the same products at about 200 GFLOP/s on two cores. {@link enableBlas} swaps the `BatchMatMul`
 * and `_FusedMatMul` kernels of the `wasm` and `cpu` backends for ones that call `cblas_sgemm` on
 * the tensors' own memory (the wasm heap, or the cpu backend's Float32Arrays), without copies.
 * Gradients need nothing more: tfjs differentiates `BatchMatMul` with `BatchMatMul` again.
 *
 * It is an optional acceleration: where no library is found, FFI is not permitted, or
 * `IJEPA_BLAS=off`, the stock kernels stay and the returned {@link BlasStatus} says why in one line.
 * {@link disableBlas} puts the stock kernels back. Only `float32` products go to BLAS; other
 * dtypes run the stock kernel.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { disableBlas, enableBlas } from "./blas.ts";
 * await tf.setBackend("cpu");
 * const status = enableBlas({ backends: ["cpu"] }); // works, or says why not
 * console.log(status.reason);
 * const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])); // [1, 1]
 * if (y.dataSync()[0] !== 11) throw new Error("wrong product");
 * disableBlas();
 * ```
 * @module
 */

import { installBlasKernels, restoreStockKernels } from "./blas_kernels.ts";
import { type BlasLib, type BlasStatus, loadBlas, threadCount } from "./blas_library.ts";

/** The tfjs backends whose matrix-product kernels can be replaced. */
export type BlasBackend = "wasm" | "cpu";

/** Options of {@link enableBlas}. */
export interface BlasOptions {
  /**
   * Path or loader name of a library exporting `cblas_sgemm`; `"off"` keeps the stock kernels;
   * `"auto"` (or empty) searches. Default: the `IJEPA_BLAS` environment variable (same meanings),
   * then a search of the usual OpenBLAS / Accelerate / MKL / BLIS names. A generic `libblas.so.3`
   * found by the search is used only if it turns out to be OpenBLAS or BLIS (reference BLAS would
   * be slower than tfjs-wasm); name it explicitly to use it anyway.
   */
  library?: string;
  /** Backends to accelerate. Default both `wasm` and `cpu`. */
  backends?: BlasBackend[];
}

const OFF_NOT_CALLED: BlasStatus = {
  enabled: false,
  reason: "off: enableBlas() not called",
  backends: [],
};

// The only mutable module state: the loaded library and the status (blas_kernels.ts keeps the stock
// kernels it replaced).
let loaded: { lib: BlasLib; path: string } | null = null;
let current: BlasStatus = OFF_NOT_CALLED;

/**
 * Replace the `BatchMatMul` and `_FusedMatMul` kernels of the `wasm` and/or `cpu` backend with
 * ones that call a native `cblas_sgemm`. Safe to call before or after `tf.setBackend`, and again
 * (it first undoes a previous call). Never throws for the environment (no library, no FFI
 * permission, a bad path): it returns a status whose `reason` says why it is off. Throws only for
 * unknown options.
 *
 * Backends whose module is not loaded yet are left out when `backends` is not given: the wasm
 * backend registers its kernels when `@tensorflow/tfjs-backend-wasm` is imported (lib/engine/backend.ts
 * `setBackend` does so), so call this again after that.
 *
 * @example
 * ```ts
 * import { enableBlas, disableBlas } from "./blas.ts";
 * const s = enableBlas({ library: "off" });
 * if (s.enabled || s.reason !== "off: library option is \"off\"") throw new Error(s.reason);
 * disableBlas();
 * ```
 */
export function enableBlas(opts: BlasOptions = {}): BlasStatus {
  for (const k of Object.keys(opts)) {
    if (k !== "library" && k !== "backends") {
      throw new TypeError(`enableBlas: unknown option "${k}"; expected library, backends`);
    }
  }
  const backends = opts.backends ?? ["wasm", "cpu"];
  for (const b of backends) {
    if (b !== "wasm" && b !== "cpu") {
      throw new TypeError(`enableBlas: backends expects "wasm" or "cpu", got ${JSON.stringify(b)}`);
    }
  }
  const defaults = opts.backends === undefined;
  if (loaded) disableBlas();
  const found = loadBlas(opts.library);
  current = found.status;
  loaded = found.opened ?? null;
  if (!loaded) return status();

  const { done, missing } = installBlasKernels(loaded.lib.symbols.cblas_sgemm, new Set(backends));
  if (done.length === 0) {
    closeLibrary();
    current = {
      enabled: false,
      reason: `off: no stock matMul kernels registered for ${missing.join(", ")}`,
      backends: [],
    };
    return status();
  }
  // Left-out defaults are not news: a backend not loaded yet gets BLAS when enableBlas runs again.
  const skipped = missing.length && !defaults ? `; skipped ${missing.join(", ")} (not registered)` : "";
  current = { ...current, enabled: true, reason: current.reason + skipped, backends: done };
  return status();
}

/**
 * Put back the stock kernels replaced by {@link enableBlas} and unload the library. A no-op when
 * BLAS is off.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { disableBlas, enableBlas } from "./blas.ts";
 * const before = tf.getKernel("BatchMatMul", "cpu");
 * enableBlas({ backends: ["cpu"] });
 * disableBlas();
 * if (tf.getKernel("BatchMatMul", "cpu") !== before) throw new Error("not restored");
 * ```
 */
export function disableBlas(): void {
  restoreStockKernels();
  if (loaded) {
    closeLibrary();
    current = { enabled: false, reason: "off: disableBlas() called", backends: [] };
  }
}

/**
 * The current state, as last returned by {@link enableBlas} (updated by {@link disableBlas}).
 *
 * @example
 * ```ts
 * import { blasStatus } from "./blas.ts";
 * console.log(blasStatus().reason); // e.g. "off: enableBlas() not called"
 * ```
 */
export function blasStatus(): BlasStatus {
  return status();
}

/**
 * Set the number of BLAS worker threads (OpenBLAS or MKL; other libraries ignore it). Returns
 * true when the library took it. `OPENBLAS_NUM_THREADS` in the environment sets the starting value.
 *
 * @example
 * ```ts
 * import { blasStatus, disableBlas, enableBlas, setBlasThreads } from "./blas.ts";
 * if (enableBlas({ backends: ["cpu"] }).enabled && setBlasThreads(1)) {
 *   if (blasStatus().threads !== 1) throw new Error("threads not set");
 * }
 * disableBlas();
 * ```
 */
export function setBlasThreads(n: number): boolean {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`setBlasThreads: expected an integer >= 1, got ${n}`);
  }
  if (!loaded) return false;
  const s = loaded.lib.symbols;
  if (s.openblas_set_num_threads) s.openblas_set_num_threads(n);
  else if (s.MKL_Set_Num_Threads) s.MKL_Set_Num_Threads(n);
  else return false;
  current = { ...current, threads: threadCount(loaded.lib) };
  return true;
}

function status(): BlasStatus {
  return { ...current, backends: [...current.backends] };
}

function closeLibrary(): void {
  loaded?.lib.close();
  loaded = null;
}
