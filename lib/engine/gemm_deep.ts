/**
 * "Deep" matrix products on the wasm backend without BLAS: few rows and columns and a long inner
 * dimension, as in the weight gradients X^T dY, which sum over every token of the batch (the
 * reference step's 96x6144x384, 384x6144x96, ...). gemm.c's `ij_gemm_deep` splits them along k into
 * chunks that the threads claim (the first worker from the last chunk down, the others from the first
 * up), each chunk into a buffer of its own, and `ij_gemm_deep_sum` adds the buffers up in chunk order.
 *
 * Why: split by rows (lib/engine/gemm_pool.ts), each thread packs the whole of B to use it for half
 * the rows, and B streams from memory twice: these products ran at 60-78 GFLOP/s on the 2-core VM
 * where the others reach 80-95. Split along k, the reference step's four 6144-deep shapes took 67.3 ms
 * a step against 72.8 (alternating steps in one process, 2026-12-05).
 *
 * The chunks and the order of the sum depend on the shape alone, so one thread computes the same bits
 * as many (it claims every chunk).
 *
 * @module
 */
import { type GemmJob, productArgs } from "./gemm_copies.ts";
import type { SimdModule } from "./fused_simd.ts";
import { CLAIMS, MIN_FLOP, runOnAll } from "./gemm_pool.ts";

/**
 * Which products are deep: one product (no batch), fewer than `maxRows` rows (larger ones are shared
 * by claimed rows, lib/engine/gemm_claims.ts), at least `minK` deep, in chunks of at most `chunkK`
 * ({@link chunkDepth}), with at most `maxPartFloats` floats of partial products.
 */
export const DEEP = { maxRows: CLAIMS.minRows, minK: 2048, chunkK: 1024, maxPartFloats: 1 << 21 };

let deep = true;
let deepRuns = 0;
let lastDeep: number[] = [];

/**
 * Split deep products along k (default) or by rows like the others; for tests and measurements.
 * Returns how many products have been split along k so far.
 */
export function setGemmDeep(on: boolean): number {
  deep = on;
  return deepRuns;
}

/**
 * The chunks `job` is split into along k, or 0 where it is not a deep product, or where `k`'s heap is
 * not shared (the workers could not compute in it: such products are split by rows with copies). Shape
 * and heap decide, never the thread count, so one thread computes what many do.
 */
export function deepChunks(job: GemmJob, k: SimdModule): number {
  if (!deep || job.batch !== 1 || job.m >= DEEP.maxRows || job.k < DEEP.minK) return 0;
  if (2 * job.m * job.n * job.k < MIN_FLOP.inPlace) return 0; // not worth waking the workers
  if (!(k.heap?.memory.buffer instanceof SharedArrayBuffer)) return 0;
  const chunks = Math.ceil(job.k / chunkDepth(job.k));
  return (chunks - 1) * job.m * job.n <= DEEP.maxPartFloats ? chunks : 0;
}

/**
 * The depth of a deep product's chunks: at most {@link DEEP}'s `chunkK`, a whole number of gemm.c's
 * KC (256) blocks, aiming at a multiple of 4 chunks (k a multiple of 1024 gets one; rounding up to
 * whole blocks can leave fewer, e.g. 3 of 768 for k = 2304), so that 2 or 4 threads share them
 * evenly (3 chunks of 1024 kept one of 2 threads busy twice as long: the
 * predictor's 3072-deep products ran at 60-62 GFLOP/s, in 4 chunks of 768 at 78-82; the 6144-deep
 * ones, in 8 chunks of 768 instead of 6 of 1024, are level, 2026-12-05). The shape alone decides.
 */
export function chunkDepth(k: number): number {
  const chunks = 4 * Math.ceil(k / (4 * DEEP.chunkK));
  return 256 * Math.ceil(k / (256 * chunks));
}

/**
 * Per module: the claim counter (on a cache line of its own) and the partial products after it, grown
 * on demand up to {@link DEEP}'s `maxPartFloats` and kept.
 */
const rooms = new WeakMap<SimdModule, { at: number; bytes: number }>();

/** The byte offset of `bytes` bytes (counter line, then partial products) in `k`'s heap, or 0. */
function roomFor(k: SimdModule, bytes: number): number {
  const have = rooms.get(k);
  if (have && have.bytes >= bytes) return have.at;
  if (!k.heap) return 0;
  const size = Math.max(bytes, Math.min(2 * (have?.bytes ?? 0), 64 + 4 * DEEP.maxPartFloats));
  const at = k.heap.malloc(size + 64);
  if (!at) return 0;
  if (have) k.heap.free(have.at);
  rooms.set(k, { at, bytes: size });
  return at;
}

/**
 * Compute `job`, split into `chunks` along k ({@link deepChunks}), on every thread the pool has, or
 * on this one; `pack` is this thread's gemm.c pack buffer (bytes). False, having done nothing, where
 * the heap has no room for the partial products.
 */
export function deepGemm(k: SimdModule, job: GemmJob, chunks: number, pack: number): boolean {
  const mn = job.m * job.n;
  const at = roomFor(k, 64 + 4 * (chunks - 1) * mn);
  if (!at) return false;
  const line = Math.ceil(at / 64) * 64; // the counter, alone on its cache line
  const part = line + 64;
  const args = (p: number, back: number) => [
    ...productArgs(job),
    chunkDepth(job.k),
    part,
    p,
    line,
    back,
  ];
  const memory = k.heap!.memory;
  const counter = new Int32Array(memory.buffer, line, 2); // chunks claimed from the first and the last
  Atomics.store(counter, 0, 0);
  Atomics.store(counter, 1, 0);
  const local = () => k.f.ij_gemm_deep(...args(pack, 0)) as number;
  // the first worker claims from the last chunk down, the main thread and the others from the first up
  const worker = (p: number, w: number) => args(p, w === 0 ? 1 : 0);
  try {
    lastDeep = runOnAll("ij_gemm_deep", worker, local) ?? [local()];
  } catch (e) {
    // a worker that failed or timed out may still be claiming from this counter and writing into
    // these partial products: leave them to it (never freed) and start the next product on new ones
    rooms.delete(k);
    throw e;
  }
  k.f.ij_gemm_deep_sum(4 * job.c, part, chunks, mn, 0, mn);
  deepRuns++;
  return true;
}

/** Chunks each thread (the main thread first) computed in the last deep product. */
export function lastDeepChunks(): number[] {
  return [...lastDeep];
}
