/**
 * The tfjs kernels that run matrix products through BLAS: `BatchMatMul` on the wasm heap or the cpu
 * backend's arrays, and `_FusedMatMul` as the BLAS product then the backend's own bias and activation
 * kernels. Installing them saves the stock kernels they replace; restoring puts those back.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { gemm, plan } from "./blas_gemm.ts";
import type { Sgemm } from "./blas_library.ts";

const KERNELS = ["BatchMatMul", "_FusedMatMul"] as const;
const stock = new Map<string, tf.KernelConfig>(); // "wasm/BatchMatMul" -> stock config

/**
 * Replace the matrix-product kernels of each backend in `backends` with BLAS ones (saving the stock
 * kernels). A backend without stock kernels registered (its module not loaded) is left out and
 * listed in `missing`.
 */
export function installBlasKernels(
  sgemm: Sgemm,
  backends: Iterable<string>,
): { done: string[]; missing: string[] } {
  const done: string[] = [];
  const missing: string[] = [];
  for (const backend of backends) {
    if (!KERNELS.every((k) => tf.getKernel(k, backend))) {
      missing.push(backend);
      continue;
    }
    const bmm = backend === "wasm" ? wasmBatchMatMul(sgemm) : cpuBatchMatMul(sgemm);
    install(backend, "BatchMatMul", bmm);
    install(backend, "_FusedMatMul", fusedMatMul(backend, bmm));
    done.push(backend);
  }
  return { done, missing };
}

/** Put back every stock kernel replaced by {@link installBlasKernels}. */
export function restoreStockKernels(): void {
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
}

function install(backendName: string, kernelName: string, kernelFunc: tf.KernelFunc): void {
  const key = `${backendName}/${kernelName}`;
  if (!stock.has(key)) stock.set(key, tf.getKernel(kernelName, backendName));
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ kernelName, backendName, kernelFunc });
}

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
