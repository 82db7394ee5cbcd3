// lib/engine/simd_gemm.ts (lib/engine/simd/gemm.c): the wasm BatchMatMul without BLAS, against a float64
// product (error relative to the sum of the terms' magnitudes, as float32 accumulation allows) on shapes that cross every block edge of gemm.c (MR 4, NR 8, MC 64, KC 256, NC 512), with all
// four transpose combinations, batches and a broadcast batch of 1. The small shapes and gradients run on
// every backend in tests/engine/ops_test.ts.
// Run with `deno test -A tests/engine/simd_gemm_test.ts`.
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "../_assert.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { setSimd } from "../../lib/engine/fused_simd.ts";
import { simdGemmActive } from "../../lib/engine/simd_gemm.ts";
import {
  CLAIMS,
  gemmInPlace,
  lastClaimRows,
  readyWorkers,
  setGemmClaims,
  setGemmWorkers,
  threadsWanted,
} from "../../lib/engine/gemm_pool.ts";
import { chunkDepth, DEEP, lastDeepChunks, setGemmDeep } from "../../lib/engine/gemm_deep.ts";
import { sharedHeapReason } from "../../lib/engine/shared_heap.ts";

/** op(A) op(B) in float64, A [ba, .., ..] and B [bb, .., ..] with a batch of 1 broadcast. */
function reference(
  A: Float32Array,
  B: Float32Array,
  ba: number,
  bb: number,
  M: number,
  K: number,
  N: number,
  ta: boolean,
  tb: boolean,
): { out: Float64Array; scale: Float64Array } {
  const batch = Math.max(ba, bb);
  const out = new Float64Array(batch * M * N), scale = new Float64Array(batch * M * N);
  for (let b = 0; b < batch; b++) {
    const a0 = (ba === 1 ? 0 : b) * M * K, b0 = (bb === 1 ? 0 : b) * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0, abs = 0;
        for (let p = 0; p < K; p++) {
          const t = A[a0 + (ta ? p * M + i : i * K + p)] * B[b0 + (tb ? j * K + p : p * N + j)];
          s += t;
          abs += Math.abs(t);
        }
        out[(b * M + i) * N + j] = s;
        scale[(b * M + i) * N + j] = abs;
      }
    }
  }
  return { out, scale };
}

/** tf.matMul(a, b, ta, tb) on the active backend, read back. */
async function productValues(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): Promise<number[]> {
  const y = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, ta, tb);
  const v = await y.data();
  y.dispose();
  return Array.from(v);
}

function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.731 + seed) * (1 + (i % 7) / 7));
}

Deno.test("SIMD matrix product on wasm without BLAS: every block edge, transposes, batches, broadcast", async () => {
  await setBackend("wasm", { quiet: true, blas: false });
  assert(simdGemmActive(), "the SIMD product should be the wasm BatchMatMul without BLAS");
  // the first product starts the worker threads; wait until they are ready
  tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])).dispose();
  for (let i = 0; i < 200 && threadsWanted() > 1 && readyWorkers() === 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  const splitBefore = setGemmWorkers(true);
  // [batch of A, batch of B, M, K, N]: edges of MR/NR, MC (70 rows), KC (600 deep), NC (530 wide)
  const shapes: number[][] = [];
  shapes.push([1, 1, 1, 1, 1], [1, 1, 7, 5, 9], [3, 3, 13, 300, 17], [2, 2, 70, 600, 530]);
  shapes.push([4, 1, 9, 33, 12], [1, 3, 5, 8, 16]);
  // k left over after the packing's four-step loops: 2 and 3
  shapes.push([1, 1, 8, 6, 16], [2, 2, 12, 7, 24]);
  for (const [ba, bb, M, K, N] of shapes) {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      const A = values(ba * M * K, M), B = values(bb * K * N, N);
      const { out: want, scale } = reference(A, B, ba, bb, M, K, N, ta, tb);
      const y = tf.tidy(() =>
        tf.matMul(
          tf.tensor3d(A, [ba, ...(ta ? [K, M] : [M, K])] as [number, number, number]),
          tf.tensor3d(B, [bb, ...(tb ? [N, K] : [K, N])] as [number, number, number]),
          ta,
          tb,
        )
      );
      assertEquals(y.shape, [Math.max(ba, bb), M, N]);
      const got = await y.data();
      y.dispose();
      let worst = 0;
      for (let i = 0; i < want.length; i++) {
        // float32 sums: error relative to the sum of the terms' magnitudes
        worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1e-6 + scale[i]));
      }
      assert(worst < 1e-6, `[${ba},${bb}] ${M}x${K}x${N} ta=${ta} tb=${tb}: relative error ${worst}`);
    }
  }
  if (threadsWanted() > 1) {
    assert(setGemmWorkers(true) > splitBefore, "no product was split between threads");
    // the same bits whoever computes which rows: one large product, split and not
    const A = tf.tensor2d(values(300 * 200, 3), [300, 200]), B = tf.tensor2d(values(200 * 90, 4), [200, 90]);
    const split = await tf.matMul(A, B).data();
    setGemmWorkers(false);
    const alone = await tf.matMul(A, B).data();
    setGemmWorkers(true);
    tf.dispose([A, B]);
    assertEquals(Array.from(split), Array.from(alone), "split and single-thread products differ");
    // rows claimed as the threads go (products of CLAIMS.minRows rows and more): the same bits as a
    // fixed split and as one thread, every transpose combination and block edges included
    const claimShapes: [number, number, number, boolean, boolean][] = [
      [CLAIMS.minRows, 300, 90, false, false],
      [1030, 530, 37, true, true],
      [700, 257, 17, false, true],
      [517, 64, 130, true, false],
    ];
    let workersClaimed = 0;
    for (const [M, K, N, ta, tb] of claimShapes) {
      const a = tf.tensor2d(values(M * K, 5), ta ? [K, M] : [M, K]);
      const b = tf.tensor2d(values(K * N, 6), tb ? [N, K] : [K, N]);
      const run = () => productValues(a, b, ta, tb);
      const claimsBefore = setGemmClaims(true);
      const claimed = await run();
      const rows = lastClaimRows();
      // claims need the workers computing in tfjs's own heap (not with IJEPA_SHARED_HEAP=off)
      assertEquals(setGemmClaims(false) > claimsBefore, gemmInPlace(), `${M}x${K}x${N}: shared by claims`);
      if (gemmInPlace()) {
        assertEquals(rows.reduce((x, y) => x + y, 0), M, `${M}x${K}x${N}: rows computed ${rows}`);
        workersClaimed += rows.slice(1).reduce((x, y) => x + y, 0);
      }
      const fixed = await run();
      setGemmWorkers(false);
      const one = await run();
      setGemmWorkers(true);
      setGemmClaims(true);
      tf.dispose([a, b]);
      assertEquals(claimed, one, `${M}x${K}x${N}: claimed and single-thread differ`);
      assertEquals(fixed, one, `${M}x${K}x${N}: fixed split and single-thread differ`);
    }
    // the workers took part: a worker that wakes after the main thread took every row computes none,
    // which a loaded machine may see on small products, so try larger ones before failing
    if (gemmInPlace()) {
      const a = tf.randomNormal([2048, 512], 0, 1, "float32", 7),
        b = tf.randomNormal([512, 256], 0, 1, "float32", 8);
      for (let i = 0; i < 5 && workersClaimed === 0; i++) {
        tf.matMul(a, b).dispose();
        workersClaimed += lastClaimRows().slice(1).reduce((x, y) => x + y, 0);
      }
      tf.dispose([a, b]);
      assert(workersClaimed > 0, "no worker claimed any row");
    }
  }
  // chunk depths: whole KC blocks of at most 1024, as many as a multiple of 4 where k allows
  assertEquals([2048, 3072, 4096, 6144, 6244, 12288].map(chunkDepth), [512, 768, 1024, 768, 1024, 1024]);
  assertEquals([3072, 6144, 12288].map((k) => k / chunkDepth(k)), [4, 8, 12]);
  // deep products (few rows, long k) split along k into chunks the threads claim, summed in chunk
  // order: close to float64, every chunk computed once, and the same bits on one thread as on all
  // (where tfjs's heap is shared: with IJEPA_SHARED_HEAP=off they are split by rows with copies)
  const heapShared = sharedHeapReason() === undefined;
  const deepShapes: [number, number, number, boolean, boolean][] = [
    [29, DEEP.minK + 2, 31, true, false], // k not a whole number of chunks, M x N not of vectors
    [96, 3 * DEEP.chunkK, 40, true, false],
    [33, DEEP.minK, 57, false, true],
    [64, 4 * DEEP.chunkK + 100, 24, true, true],
  ];
  let workersChunks = 0;
  for (const [M, K, N, ta, tb] of deepShapes) {
    const A = values(M * K, 9), B = values(K * N, 10);
    const { out: want, scale } = reference(A, B, 1, 1, M, K, N, ta, tb);
    const a = tf.tensor2d(A, ta ? [K, M] : [M, K]), b = tf.tensor2d(B, tb ? [N, K] : [K, N]);
    const run = () => productValues(a, b, ta, tb);
    const before = setGemmDeep(true);
    const shared = await run();
    assertEquals(setGemmDeep(true), before + (heapShared ? 1 : 0), `${M}x${K}x${N}: split along k`);
    if (heapShared) {
      const chunks = lastDeepChunks();
      // shared by every thread where the workers compute in tfjs's own heap
      const threads = gemmInPlace() && threadsWanted() > 1 ? readyWorkers() + 1 : 1;
      assertEquals(chunks.length, threads, `${M}x${K}x${N}: threads that claimed chunks`);
      assertEquals(
        chunks.reduce((x, y) => x + y, 0),
        Math.ceil(K / chunkDepth(K)),
        `${M}x${K}x${N}: chunks ${chunks}`,
      );
      workersChunks += chunks.slice(1).reduce((x, y) => x + y, 0);
    }
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(shared[i] - want[i]) / (1e-6 + scale[i]));
    }
    assert(worst < 1e-6, `${M}x${K}x${N} ta=${ta} tb=${tb}: relative error ${worst}`);
    setGemmWorkers(false);
    const one = await run();
    if (heapShared) {
      assertEquals(
        lastDeepChunks(),
        [Math.ceil(K / chunkDepth(K))],
        `${M}x${K}x${N}: one thread, every chunk`,
      );
    }
    setGemmWorkers(true);
    tf.dispose([a, b]);
    assertEquals(shared, one, `${M}x${K}x${N}: threads and one thread differ`);
  }
  // the workers took part (a worker that wakes after the main thread claimed every chunk computes
  // none, which a loaded machine may see on small products: try larger ones before failing), so the
  // comparisons above were between threads and one thread, not one thread twice
  if (heapShared && gemmInPlace() && threadsWanted() > 1) {
    const a = tf.randomNormal([12 * DEEP.chunkK, 96], 0, 1, "float32", 7);
    const b = tf.randomNormal([12 * DEEP.chunkK, 384], 0, 1, "float32", 8);
    for (let i = 0; i < 5 && workersChunks === 0; i++) {
      tf.matMul(a, b, true, false).dispose();
      workersChunks += lastDeepChunks().slice(1).reduce((x, y) => x + y, 0);
    }
    tf.dispose([a, b]);
    assert(workersChunks > 0, "no worker computed a chunk of a deep product");
  }
  // an empty inner dimension is a product of zeros
  const z = tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 2]));
  assertEquals(Array.from(await z.data()), [0, 0, 0, 0, 0, 0]);
  z.dispose();
  // IJEPA_SIMD=off: the stock kernel, same values to float32 rounding
  setSimd(false);
  try {
    assert(!simdGemmActive(), "setSimd(false) should leave products to the stock kernel");
    const a = tf.tensor2d(values(6, 1), [2, 3]), b = tf.tensor2d(values(12, 2), [3, 4]);
    const stock = await tf.matMul(a, b).data();
    setSimd(true);
    const ours = await tf.matMul(a, b).data();
    for (let i = 0; i < 8; i++) {
      assert(Math.abs(stock[i] - ours[i]) < 1e-5, `element ${i}: ${stock[i]} vs ${ours[i]}`);
    }
    tf.dispose([a, b]);
  } finally {
    setSimd(true);
  }
});
