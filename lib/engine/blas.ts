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

import * as tf from "@tensorflow/tfjs";
// Registers the wasm backend's stock kernels now, so enableBlas can save them before replacing them.
import "@tensorflow/tfjs-backend-wasm";

/** The tfjs backends whose matrix-product kernels can be replaced. */
export type BlasBackend = "wasm" | "cpu";

/** What {@link enableBlas} did, in a form a caller can print as a one-line notice. */
export interface BlasStatus {
  /** True while BLAS kernels are registered for at least one backend. */
  enabled: boolean;
  /** The library that was loaded (a path or a loader name such as `libopenblas.so.0`). */
  library?: string;
  /** One line: what runs the products, or `off: <why>`. */
  reason: string;
  /** Backends whose kernels call BLAS now (empty when off). */
  backends: string[];
  /** BLAS worker threads, where the library can tell (OpenBLAS, MKL). */
  threads?: number;
}

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

// CBLAS constants (cblas.h): row-major storage, no-transpose / transpose.
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

const SYMBOLS = {
  // void cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  // 0 = single-threaded build, 1 = pthreads, 2 = OpenMP
  openblas_get_parallel: { parameters: [], result: "i32", optional: true },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  MKL_Get_Max_Threads: { parameters: [], result: "i32", optional: true },
  MKL_Set_Num_Threads: { parameters: ["i32"], result: "void", optional: true },
  bli_info_get_version_str: { parameters: [], result: "pointer", optional: true },
} as const;

type BlasLib = Deno.DynamicLibrary<typeof SYMBOLS>;
type Sgemm = BlasLib["symbols"]["cblas_sgemm"];

/**
 * Debian and Ubuntu install OpenBLAS's builds side by side (`update-alternatives` picks one as
 * libopenblas.so.0). The pthreads build is tried first: the OpenMP build runs our step at about the
 * same speed (reference step 604 ms against 582 ms, one bench run each, 2 cores), but its libgomp
 * threads make it unsafe to unload (see {@link pin}).
 */
function debianOpenblas(build: "pthread" | "openmp" | "serial"): string {
  const triplet = { x86_64: "x86_64-linux-gnu", aarch64: "aarch64-linux-gnu" }[Deno.build.arch as string] ??
    `${Deno.build.arch}-linux-gnu`;
  return `/usr/lib/${triplet}/openblas-${build}/libopenblas.so.0`;
}

/** Library names tried in order when none is given. Generic `libblas`/`libcblas` may be reference BLAS. */
const SEARCH: Record<string, () => string[]> = {
  linux: () => [
    debianOpenblas("pthread"),
    "libopenblas.so.0",
    "libopenblas.so",
    "libmkl_rt.so.2",
    "libmkl_rt.so",
    "libblis.so.4",
    "libblas.so.3",
    "libcblas.so.3",
  ],
  darwin: () => [
    "/System/Library/Frameworks/Accelerate.framework/Accelerate",
    "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
    "/usr/local/opt/openblas/lib/libopenblas.dylib",
    "libopenblas.dylib",
  ],
  windows: () => ["libopenblas.dll", "openblas.dll", "mkl_rt.2.dll", "mkl_rt.dll"],
};
/** Names that may be any implementation, reference BLAS included. */
const GENERIC = new Set(["libblas.so.3", "libcblas.so.3"]);
const INSTALL_HINT: Record<string, string> = {
  linux: "install libopenblas0-pthread",
  darwin: "Accelerate.framework was not found",
  windows: "put libopenblas.dll on PATH",
};

const KERNELS = ["BatchMatMul", "_FusedMatMul"] as const;
const OFF_NOT_CALLED: BlasStatus = {
  enabled: false,
  reason: "off: enableBlas() not called",
  backends: [],
};

// The only mutable module state: the loaded library, the stock kernels it replaced, the status.
let loaded: { lib: BlasLib; path: string } | null = null;
const stock = new Map<string, tf.KernelConfig>(); // "wasm/BatchMatMul" -> stock config
let current: BlasStatus = OFF_NOT_CALLED;

/**
 * Replace the `BatchMatMul` and `_FusedMatMul` kernels of the `wasm` and/or `cpu` backend with
 * ones that call a native `cblas_sgemm`. Safe to call before or after `tf.setBackend`, and again
 * (it first undoes a previous call). Never throws for the environment (no library, no FFI
 * permission, a bad path): it returns a status whose `reason` says why it is off. Throws only for
 * unknown options.
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
  if (loaded) disableBlas();
  current = load(opts.library);
  if (!loaded) return status();

  const sgemm = loaded.lib.symbols.cblas_sgemm;
  const done: string[] = [];
  const missing: string[] = [];
  for (const backend of new Set(backends)) {
    if (!KERNELS.every((k) => tf.getKernel(k, backend))) {
      missing.push(backend);
      continue;
    }
    const bmm = backend === "wasm" ? wasmBatchMatMul(sgemm) : cpuBatchMatMul(sgemm);
    install(backend, "BatchMatMul", bmm);
    install(backend, "_FusedMatMul", fusedMatMul(backend, bmm));
    done.push(backend);
  }
  if (done.length === 0) {
    closeLibrary();
    current = {
      enabled: false,
      reason: `off: no stock matMul kernels registered for ${missing.join(", ")}`,
      backends: [],
    };
    return status();
  }
  const skipped = missing.length ? `; skipped ${missing.join(", ")} (not registered)` : "";
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
  for (const [key, config] of stock) {
    tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel(config);
    // A stock wasm kernel binds its C function in setupFunc, which the engine runs when the backend
    // starts. If the backend started while ours was registered, that never ran: run it now.
    const started = (tf.engine() as unknown as { registry: Record<string, tf.KernelBackend> })
      .registry[config.backendName];
    if (started && config.setupFunc) config.setupFunc(started);
    stock.delete(key);
  }
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

/**
 * What the main job took on our 2-core build machine (README, "Speed"), with OpenBLAS and with the
 * stock wasm kernels only: the figures {@link blasAdvice} quotes beside its own measurement.
 */
export const MAIN_JOB_MINUTES = { withBlas: 4.9, withoutBlas: 13.5 } as const;

/**
 * For a user whose products run on tfjs's stock kernels because no BLAS library was found: one
 * line saying what that costs here, measured now, and how to fix it. It times the reference
 * model's largest product ([3136, 192] x [192, 768], 0.92 GFLOP) on the active backend: about
 * 0.1 s. Returns undefined when BLAS is on, or off by the user's choice (`IJEPA_BLAS=off`, a
 * caller's `blas: false`), or when the active backend is not wasm or cpu.
 *
 * @example
 * ```ts
 * import { blasAdvice } from "./blas.ts";
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
    const once = async () => {
      const t0 = performance.now();
      const y = tf.matMul(a, b);
      await y.data();
      y.dispose();
      return performance.now() - t0;
    };
    await once(); // warm-up
    const ms = Math.min(await once(), await once());
    const gflops = (2 * m * k * n) / ms / 1e6;
    const os = (globalThis as { Deno?: typeof Deno }).Deno?.build.os ?? "linux";
    const fix = os === "linux"
      ? "`sudo apt-get install libopenblas0-pthread` (Debian/Ubuntu) or your distribution's OpenBLAS"
      : os === "windows"
      ? "put libopenblas.dll on PATH or set IJEPA_BLAS=<path>"
      : "set IJEPA_BLAS=<path> to a BLAS library";
    return `BLAS off, so matrix products run on tfjs's stock ${backend} kernel: ${
      gflops.toFixed(0)
    } GFLOP/s ` +
      `here (measured now), where OpenBLAS ran them at 196-271 GFLOP/s on a 2-core machine of ours; ` +
      `there the main job took ${MAIN_JOB_MINUTES.withoutBlas} min without BLAS and ` +
      `${MAIN_JOB_MINUTES.withBlas} min with it. To speed up: ${fix}.`;
  } finally {
    a.dispose();
    b.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Loading the library

function status(): BlasStatus {
  return { ...current, backends: [...current.backends] };
}

function off(reason: string): BlasStatus {
  return { enabled: false, reason: `off: ${reason}`, backends: [] };
}

/** Open the library (setting `loaded`) or say why not. */
function load(option: string | undefined): BlasStatus {
  const D = (globalThis as { Deno?: typeof Deno }).Deno;
  if (!D || typeof D.dlopen !== "function") return off("not running under Deno (no FFI)");
  let requested = option;
  let source = "library option";
  if (requested === undefined) {
    requested = readEnv("IJEPA_BLAS");
    source = "IJEPA_BLAS";
  }
  const req = requested?.trim() ?? "";
  if (["off", "0", "false", "no", "none"].includes(req.toLowerCase())) {
    return off(source === "IJEPA_BLAS" ? `IJEPA_BLAS=${req}` : `library option is "${req}"`);
  }
  const explicit = req !== "" && !["on", "auto", "1", "true"].includes(req.toLowerCase());
  if (!ffiGranted(explicit ? req : undefined)) {
    return off("FFI not permitted (run deno with --allow-ffi)");
  }
  if (explicit) {
    try {
      return opened(req, D.dlopen(req, SYMBOLS));
    } catch (e) {
      return off(`cannot load BLAS library ${req} (from ${source}): ${firstLine(e)}`);
    }
  }
  const skipped: string[] = [];
  for (const name of (SEARCH[D.build.os] ?? SEARCH.linux)()) {
    let lib: BlasLib;
    try {
      lib = D.dlopen(name, SYMBOLS);
    } catch {
      continue; // not installed, or no cblas_sgemm in it
    }
    // A generic libblas/libcblas may be the reference BLAS, slower than tfjs-wasm: use it only
    // when it turns out to be an optimised one.
    if (GENERIC.has(name) && describe(lib) === "BLAS") {
      lib.close();
      skipped.push(name);
      continue;
    }
    return opened(name, lib);
  }
  const why = skipped.length
    ? `only ${skipped.join(", ")} found, which may be reference BLAS`
    : "no BLAS library found";
  return off(
    `${why} (${INSTALL_HINT[D.build.os] ?? INSTALL_HINT.linux}, or set IJEPA_BLAS=<path>)`,
  );
}

function opened(path: string, lib: BlasLib): BlasStatus {
  pin(path);
  loaded = { lib, path };
  return {
    enabled: false, // set once kernels are registered
    library: path,
    reason: `${describe(lib)} via FFI (${path})`,
    backends: [],
    threads: threadCount(lib),
  };
}

function closeLibrary(): void {
  loaded?.lib.close();
  loaded = null;
}

/**
 * Keep a library in memory until the process ends (dlopen with RTLD_NODELETE), so that closing our
 * handle, or a worker isolate ending, never unmaps it.
 *
 * Why: OpenBLAS's OpenMP build runs its products on libgomp's thread pool, whose threads stay parked
 * inside libgomp after a call. When the last handle is closed, the dynamic loader unmaps libopenblas
 * and libgomp under those threads and the process dies with SIGSEGV (exit 139). Seen with Debian's
 * libopenblas0-openmp: one `Deno.dlopen` + `cblas_sgemm` + `close()` crashed at once, and
 * `deno test --parallel` (whose test files open and close the library in their own isolates) crashed
 * in 3 of 3 runs. The pthreads build survives the same sequence, but pinning costs nothing, so every
 * BLAS we load is pinned. Returns false where it cannot pin (Windows, or no libc to ask).
 */
function pin(path: string): boolean {
  const libc = { linux: "libc.so.6", darwin: "/usr/lib/libSystem.B.dylib" }[Deno.build.os as string];
  if (!libc) return false;
  // RTLD_NOW | RTLD_NODELETE (glibc 0x2 | 0x1000; macOS 0x2 | 0x80)
  const flags = Deno.build.os === "darwin" ? 0x2 | 0x80 : 0x2 | 0x1000;
  try {
    const c = Deno.dlopen(libc, { dlopen: { parameters: ["buffer", "i32"], result: "pointer" } });
    try {
      return c.symbols.dlopen(new TextEncoder().encode(path + "\0"), flags) !== null;
    } finally {
      c.close();
    }
  } catch {
    return false;
  }
}

/** A short name of the implementation, e.g. "OpenBLAS 0.3.21 (Cooperlake, pthreads)". */
function describe(lib: BlasLib): string {
  const s = lib.symbols;
  const cstr = (p: Deno.PointerValue) => (p ? Deno.UnsafePointerView.getCString(p) : "");
  if (s.openblas_get_config) {
    const version = cstr(s.openblas_get_config()).split(" ").slice(0, 2).join(" ") || "OpenBLAS";
    const build = s.openblas_get_parallel
      ? ["serial", "pthreads", "OpenMP"][s.openblas_get_parallel()] ?? "unknown threading"
      : "";
    const core = s.openblas_get_corename ? cstr(s.openblas_get_corename()) : "";
    const details = [core, build].filter(Boolean).join(", ");
    return details ? `${version} (${details})` : version;
  }
  if (s.MKL_Get_Max_Threads) return "Intel MKL";
  if (s.bli_info_get_version_str) return `BLIS ${cstr(s.bli_info_get_version_str())}`;
  return "BLAS";
}

function threadCount(lib: BlasLib): number | undefined {
  const s = lib.symbols;
  if (s.openblas_get_num_threads) return s.openblas_get_num_threads();
  if (s.MKL_Get_Max_Threads) return s.MKL_Get_Max_Threads();
  return undefined;
}

function readEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** True when FFI is granted; never prompts. */
function ffiGranted(path?: string): boolean {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") return true;
    return path !== undefined &&
      Deno.permissions.querySync({ name: "ffi", path }).state === "granted";
  } catch {
    return false;
  }
}

function firstLine(e: unknown): string {
  const line = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  return line.replace(/^(.+?: )\1+/, "$1"); // Deno repeats "Could not open library: "
}

function install(backendName: string, kernelName: string, kernelFunc: tf.KernelFunc): void {
  const key = `${backendName}/${kernelName}`;
  if (!stock.has(key)) stock.set(key, tf.getKernel(kernelName, backendName));
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ kernelName, backendName, kernelFunc });
}

// ---------------------------------------------------------------------------------------------
// The product itself

/** Shapes of one (batched) product C = op(A) op(B), as tfjs's BatchMatMul defines it. */
interface Plan {
  outShape: number[]; // [...batch, M, N]
  batch: number; // product of the broadcast batch dims
  m: number;
  n: number;
  k: number;
  aIndex: (i: number) => number; // output batch i reads this batch of A
  bIndex: (i: number) => number;
  aBatch: number;
  bBatch: number;
}

function plan(aShape: number[], bShape: number[], transA: boolean, transB: boolean): Plan {
  if (aShape.length < 2 || bShape.length < 2) {
    throw new Error(
      `matMul: expected both inputs of rank >= 2, got a [${aShape}] and b [${bShape}]`,
    );
  }
  const ra = aShape.length, rb = bShape.length;
  const m = transA ? aShape[ra - 1] : aShape[ra - 2];
  const ka = transA ? aShape[ra - 2] : aShape[ra - 1];
  const kb = transB ? bShape[rb - 1] : bShape[rb - 2];
  const n = transB ? bShape[rb - 2] : bShape[rb - 1];
  if (ka !== kb) {
    throw new Error(
      `matMul: inner dimensions must match, got a [${aShape}] (transposeA=${transA}) with ${ka} ` +
        `and b [${bShape}] (transposeB=${transB}) with ${kb}`,
    );
  }
  const aDims = aShape.slice(0, -2), bDims = bShape.slice(0, -2);
  const outDims = tf.broadcast_util.assertAndGetBroadcastShape(aDims, bDims);
  const batch = tf.util.sizeFromShape(outDims);
  const aBatch = tf.util.sizeFromShape(aDims), bBatch = tf.util.sizeFromShape(bDims);
  return {
    outShape: [...outDims, m, n],
    batch,
    m,
    n,
    k: ka,
    aIndex: batchIndex(aDims, outDims, aBatch, batch),
    bIndex: batchIndex(bDims, outDims, bBatch, batch),
    aBatch,
    bBatch,
  };
}

/** Which batch of an input feeds output batch i, with numpy broadcasting. */
function batchIndex(dims: number[], outDims: number[], size: number, outSize: number) {
  if (size === 1) return () => 0;
  if (size === outSize) return (i: number) => i; // every non-1 dim equals the output's
  // Departs from tfjs's stock kernels, which read batch i % size: wrong when a size-1 dim sits
  // before a broadcast one (a [2, 1, ...] with b [3, ...]). Here each dim is mapped on its own.
  const table = new Int32Array(outSize);
  const off = outDims.length - dims.length;
  for (let i = 0; i < outSize; i++) {
    let rest = i, src = 0, stride = 1;
    for (let d = outDims.length - 1; d >= 0; d--) {
      const coord = rest % outDims[d];
      rest = Math.floor(rest / outDims[d]);
      if (d < off) continue;
      const dim = dims[d - off];
      if (dim !== 1) src += coord * stride;
      stride *= dim;
    }
    table[i] = src;
  }
  return (i: number) => table[i];
}

/**
 * C[i] = op(A[aIndex(i)]) op(B[bIndex(i)]) for every batch i, row-major, via cblas_sgemm.
 * `a`, `b`, `c` are Float32Arrays (possibly the same wasm heap) and the offsets are in floats.
 */
function gemm(
  sgemm: Sgemm,
  p: Plan,
  transA: boolean,
  transB: boolean,
  a: Float32Array,
  aOff: number,
  b: Float32Array,
  bOff: number,
  c: Float32Array,
  cOff: number,
): void {
  const { m, n, k, batch } = p;
  if (m * n * batch === 0) return;
  if (k === 0) {
    c.fill(0, cOff, cOff + batch * m * n); // an empty sum; BLAS may skip writing C
    return;
  }
  const lda = transA ? m : k, ldb = transB ? k : n;
  const ta = transA ? TRANS : NO_TRANS, tb = transB ? TRANS : NO_TRANS;
  // A shared B and row-major A stacked [batch*M, K] is one tall product: one call instead of batch.
  if (p.bBatch === 1 && !transA && p.aBatch === batch) {
    const rows = batch * m;
    sgemm(
      ROW_MAJOR,
      ta,
      tb,
      rows,
      n,
      k,
      1,
      a.subarray(aOff, aOff + rows * k),
      lda,
      b.subarray(bOff, bOff + k * n),
      ldb,
      0,
      c.subarray(cOff, cOff + rows * n),
      n,
    );
    return;
  }
  const sa = m * k, sb = k * n, sc = m * n;
  for (let i = 0; i < batch; i++) {
    const ai = aOff + p.aIndex(i) * sa, bi = bOff + p.bIndex(i) * sb, ci = cOff + i * sc;
    sgemm(
      ROW_MAJOR,
      ta,
      tb,
      m,
      n,
      k,
      1,
      a.subarray(ai, ai + sa), // [M, K] or [K, M]
      lda,
      b.subarray(bi, bi + sb), // [K, N] or [N, K]
      ldb,
      0,
      c.subarray(ci, ci + sc), // [M, N]
      n,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Kernels

/** The parts of tfjs-backend-wasm's BackendWasm this file touches. */
interface WasmBackendLike {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(dataId: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
}

/** The parts of tfjs-backend-cpu's MathBackendCPU this file touches. */
interface CpuBackendLike {
  data: { get(dataId: unknown): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: "float32", values: Float32Array): tf.TensorInfo;
}

interface MatMulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** Run the stock kernel for what BLAS does not cover (non-float32 dtypes). */
function stockKernel(backend: string, name: string): tf.KernelFunc {
  const k = stock.get(`${backend}/${name}`);
  if (!k) throw new Error(`blas: stock ${name} kernel for ${backend} was not saved`);
  return k.kernelFunc;
}

function wasmBatchMatMul(sgemm: Sgemm): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== "float32" || b.dtype !== "float32") {
      return stockKernel("wasm", "BatchMatMul")(args);
    }
    const { transposeA = false, transposeB = false } = args.attrs as MatMulAttrs;
    const backend = args.backend as unknown as WasmBackendLike;
    const p = plan(a.shape, b.shape, transposeA, transposeB);
    const out = backend.makeOutput(p.outShape, "float32"); // [...batch, M, N]
    // Read the heap only now: makeOutput's malloc may have grown wasm memory, which replaces it.
    const heap = backend.wasm.HEAPF32;
    const offset = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset / 4;
    gemm(sgemm, p, transposeA, transposeB, heap, offset(a), heap, offset(b), heap, offset(out));
    return out;
  };
}

function cpuBatchMatMul(sgemm: Sgemm): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const backend = args.backend as unknown as CpuBackendLike;
    const av = backend.data.get(a.dataId).values;
    const bv = backend.data.get(b.dataId).values;
    if (!(av instanceof Float32Array) || !(bv instanceof Float32Array)) {
      return stockKernel("cpu", "BatchMatMul")(args); // int32, complex
    }
    const { transposeA = false, transposeB = false } = args.attrs as MatMulAttrs;
    const p = plan(a.shape, b.shape, transposeA, transposeB);
    const out = new Float32Array(tf.util.sizeFromShape(p.outShape)); // [...batch, M, N]
    gemm(sgemm, p, transposeA, transposeB, av, 0, bv, 0, out, 0);
    return backend.makeTensorInfo(p.outShape, "float32", out);
  };
}

/** tfjs's fusable activations and the kernels that apply them. */
const ACTIVATION_KERNELS: Record<string, string | null> = {
  linear: null,
  relu: "Relu",
  relu6: "Relu6",
  elu: "Elu",
  sigmoid: "Sigmoid",
  leakyrelu: "LeakyRelu",
  prelu: "Prelu",
};

/**
 * `_FusedMatMul` (tf.fused.matMul: product, + bias, activation) as three passes: the BLAS product,
 * then the backend's own Add and activation kernels, which handle broadcasting.
 */
function fusedMatMul(backendName: string, bmm: tf.KernelFunc): tf.KernelFunc {
  const run = (name: string, args: KernelArgs) => {
    const k = tf.getKernel(name, backendName);
    if (!k) throw new Error(`blas: _FusedMatMul needs the ${name} kernel on ${backendName}`);
    return k.kernelFunc(args) as tf.TensorInfo;
  };
  return (args: KernelArgs) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo>;
    if (a.dtype !== "float32" || b.dtype !== "float32") {
      return stockKernel(backendName, "_FusedMatMul")(args);
    }
    const { transposeA, transposeB, activation = "linear", leakyreluAlpha } = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    if (!(activation in ACTIVATION_KERNELS)) {
      throw new Error(
        `fused matMul: activation must be one of ${Object.keys(ACTIVATION_KERNELS).join(", ")}, ` +
          `got "${activation}"`,
      );
    }
    const backend = args.backend as unknown as tf.KernelBackend;
    let y = bmm({ inputs: { a, b }, backend, attrs: { transposeA, transposeB } }) as tf.TensorInfo;
    const step = (next: tf.TensorInfo) => {
      backend.disposeData(y.dataId);
      y = next;
    };
    if (bias) step(run("Add", { inputs: { a: y, b: bias }, backend, attrs: {} }));
    const act = ACTIVATION_KERNELS[activation];
    if (act === "Prelu") {
      step(run(act, { inputs: { x: y, alpha: preluActivationWeights }, backend, attrs: {} }));
    } else if (act === "LeakyRelu") {
      step(run(act, { inputs: { x: y }, backend, attrs: { alpha: leakyreluAlpha ?? 0.2 } }));
    } else if (act) {
      step(run(act, { inputs: { x: y }, backend, attrs: {} }));
    }
    return y;
  };
}
