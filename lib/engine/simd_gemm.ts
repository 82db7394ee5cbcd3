/**
 * The wasm backend's `BatchMatMul` in our own WebAssembly SIMD (lib/engine/simd/gemm.c), for machines
 * without a native BLAS: {@link simdBatchMatMul}. Installed by lib/engine/wasm_fixes.ts in place of the
 * stock kernel; native BLAS (lib/engine/blas.ts), where found, replaces it in turn and puts it back
 * when turned off.
 *
 * Why: the stock kernel ran the reference step's products at 2 GFLOP/s where they are many small
 * ones (attention: 768 products of 26x32 by 32x26), 17-30 GFLOP/s on large ones, and about 12x
 * slower with its transpose flags, so callers transposed first (133 Transpose calls, 178 ms a step).
 * gemm.c packs both operands through strides (transposes are free) and runs a whole batch in one
 * call: 13-27 GFLOP/s on the small batched products, 30-35 on the large ones (one core, 2026-12-04).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { plan } from "./blas_gemm.ts";
import { simdFor, simdWanted, type WasmLike } from "./fused_simd.ts";
import { type GemmJob, parallelGemm, startGemmPool } from "./gemm_pool.ts";
import { deepChunks, deepGemm } from "./gemm_deep.ts";

/** Whether {@link simdBatchMatMul} was installed (lib/engine/wasm_fixes.ts does it when wasm loads). */
let installed = false;

interface MatMulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
}

/**
 * A `BatchMatMul` kernel for wasm running float32 products through gemm.c; other dtypes, batch
 * broadcasting other than a batch of 1 against many, and `IJEPA_SIMD=off` go to `stock`.
 */
export function simdBatchMatMul(stock: tf.KernelConfig): tf.KernelFunc {
  const kernel: tf.KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const be = args.backend as unknown as WasmLike;
    const k = a.dtype === "float32" && b.dtype === "float32" && simdWanted() ? simdFor(be) : null;
    if (!k) return stock.kernelFunc(args);
    const { transposeA = false, transposeB = false } = args.attrs as MatMulAttrs;
    const p = plan(a.shape, b.shape, transposeA, transposeB);
    const oneOrAll = (n: number) => n === 1 || n === p.batch;
    if (!oneOrAll(p.aBatch) || !oneOrAll(p.bBatch)) return stock.kernelFunc(args);
    const out = be.makeOutput(p.outShape, "float32");
    const pack = k.scratch(4 * k.f.ij_gemm_pack_floats()); // may grow the memory: offsets stay valid
    const at = (t: tf.TensorInfo) => be.dataIdMap.get(t.dataId).memoryOffset;
    const { m, n, k: depth } = p;
    // strides of op(A)(i, p) and op(B)(p, j) in elements; a batch of 1 is read by every product
    const [rsA, csA] = transposeA ? [1, m] : [depth, 1];
    const [rsB, csB] = transposeB ? [1, depth] : [n, 1];
    const bsA = p.aBatch === 1 ? 0 : m * depth, bsB = p.bBatch === 1 ? 0 : depth * n;
    const job: GemmJob = {
      batch: p.batch,
      m,
      n,
      k: depth,
      rsA,
      csA,
      bsA,
      rsB,
      csB,
      bsB,
      a: at(a) / 4,
      b: at(b) / 4,
      c: at(out) / 4,
    };
    const run = (j: GemmJob) =>
      k.f.ij_gemm(4 * j.a, 4 * j.b, 4 * j.c, j.batch, j.m, j.n, j.k, rsA, csA, bsA, rsB, csB, bsB, pack);
    startGemmPool(k.f.ij_gemm_pack_floats(), k.heap);
    const claim = {
      run: (args: number[]) => k.f.ij_gemm_claim(...args) as number,
      bFloats: (kk: number, nn: number) => k.f.ij_gemm_claim_b_floats(kk, nn) as number,
    };
    const chunks = deepChunks(job, k);
    if (chunks > 1 && deepGemm(k, job, chunks, pack)) return out;
    if (!parallelGemm(job, () => be.wasm.HEAPF32, run, claim)) run(job);
    return out;
  };
  installed = true;
  return kernel;
}

/**
 * Whether wasm products run through {@link simdBatchMatMul} (wasm active, the kernel installed, the
 * SIMD module loaded), unless native BLAS replaced it (lib/engine/matmul.ts asks that first).
 */
export function simdGemmActive(): boolean {
  if (!installed || tf.getBackend() !== "wasm" || !simdWanted()) return false;
  return simdFor(tf.backend() as unknown as WasmLike) !== null;
}
