/**
 * One (batched) matrix product through `cblas_sgemm`: the shapes of C = op(A) op(B) as tfjs's
 * BatchMatMul defines them, numpy batch broadcasting, and the calls themselves on Float32Arrays.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Sgemm } from "./blas_library.ts";

// CBLAS constants (cblas.h): row-major storage, no-transpose / transpose.
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** Shapes of one (batched) product C = op(A) op(B), as tfjs's BatchMatMul defines it. */
export interface Plan {
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

export function plan(aShape: number[], bShape: number[], transA: boolean, transB: boolean): Plan {
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
export function gemm(
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
