/**
 * Matrix products that lib/engine/gemm_pool.ts's threads share by claiming rows as they go (gemm.c's
 * `ij_gemm_claim`) rather than by a fixed split: every thread packs the whole of B, then takes rows
 * from one counter until none are left, so a thread held up for a while (another process on its
 * core) claims fewer instead of keeping the others waiting. The same bits as on one thread.
 *
 * The first worker claims from the bottom of C up and the others from the top down, so that with two
 * threads each one's rows are one block, as the row-wise fused kernels after the product split them
 * (lib/engine/parallel_kernels.ts): a thread then mostly reads rows it wrote itself, from its own
 * cache. With rows claimed from the top by both, in alternate chunks, the reference step without BLAS
 * took 680 and 674 ms against 658 and 655 (medians of 10 alternating steps, 2026-12-05).
 *
 * @module
 */
import { type GemmHeap, type GemmJob, productArgs } from "./gemm_copies.ts";
import { SLOTS } from "./gemm_worker.ts";

/**
 * Products that the threads share by claiming rows as they go (gemm.c's `ij_gemm_claim`) rather than
 * by a fixed split: in place only, one product (no batch), at least `minRows` rows (smaller ones are
 * the weight gradients' thin products, where each thread packing the whole of B costs more than a
 * fixed split loses), and a B of at most `maxBFloats` floats, which every thread packs whole.
 * Measured 2026-12-05 on the 2-core VM: a fixed split lost about 5% of the products' time waiting for
 * the slower thread, whose speed moved from call to call (worker/main rate 1.0 +- 0.16-0.25).
 */
export const CLAIMS = { minRows: 512, maxBFloats: 1 << 20 };

/**
 * Share large products by claimed rows (default) or by the learned fixed split; for tests and
 * measurements. Returns how many products have been shared by claims so far.
 */
export function setGemmClaims(on: boolean): number {
  claims = on;
  return claimedRuns;
}

let claims = true;
let claimedRuns = 0;

/** The main thread's side of a product shared by claimed rows (lib/engine/simd_gemm.ts). */
export interface GemmClaim {
  /** gemm.c's ij_gemm_claim on tfjs-wasm's memory with these arguments; returns the rows it computed. */
  run(args: number[]): number;
  /** gemm.c's ij_gemm_claim_b_floats: the floats of a whole packed B, K x N. */
  bFloats(k: number, n: number): number;
}

/** What the pool holds for claimed products (lib/engine/gemm_pool.ts's Pool, in place). */
export interface ClaimRooms {
  memory: WebAssembly.Memory;
  /** The workers' control slots (their results at slot 4). */
  ctl: Int32Array;
  /** Byte offset of each worker's pack buffer (A's blocks). */
  packs: number[];
  /** Byte offset of the claimed-rows counter, on a cache line of its own. */
  claimAt: number;
  /** Byte offset of the main thread's pack buffer. */
  mainPack: number;
  /** Each thread's whole packed B (0 the main thread's), grown on demand. */
  bfull: { at: number; floats: number }[];
}

/** Whether `job`, whose whole packed B takes `bFloats` floats, is shared by claimed rows. */
export function claimsWanted(job: GemmJob, bFloats: number): boolean {
  return claims && job.batch === 1 && job.m >= CLAIMS.minRows && bFloats <= CLAIMS.maxBFloats;
}

/**
 * Thread t's (0 the main thread's) room for a whole packed B of `floats` floats, in bytes, grown on
 * demand and kept for the pool's life (4 MiB per thread at most: {@link CLAIMS}); 0 where the heap
 * has no room left.
 */
function bfullAt(
  r: ClaimRooms,
  heap: GemmHeap,
  t: number,
  floats: number,
): number {
  const have = r.bfull[t];
  if (have && have.floats >= floats) return have.at;
  const size = Math.ceil(floats / 65536) * 65536;
  const at = heap.malloc(4 * size);
  if (!at) return 0;
  if (have) heap.free(have.at);
  r.bfull[t] = { at, floats: size };
  return at;
}

/** Rows each thread computed in the last product shared by claims (the main thread's first). */
let lastClaim: number[] = [];

/** Rows each thread (the main thread first) computed in the last product shared by claimed rows. */
export function lastClaimRows(): number[] {
  return [...lastClaim];
}

/**
 * `job` (one product, in tfjs-wasm's shared heap) computed by the main thread and `workers` workers
 * claiming rows from one counter until none are left: `post(argsFor)` hands worker w the arguments
 * `argsFor(w)` of gemm.c's ij_gemm_claim, `wait()` returns when every worker is done (or throws).
 * False, having done nothing, where the heap has no room for the packed copies of B.
 */
export function claimedGemm(
  r: ClaimRooms,
  heap: GemmHeap,
  workers: number,
  job: GemmJob,
  claim: GemmClaim,
  post: (argsFor: (w: number) => number[]) => void,
  wait: () => void,
): boolean {
  const bFloats = claim.bFloats(job.k, job.n);
  // room first: an allocation may grow the memory (offsets stay valid)
  const rooms = Array.from({ length: workers + 1 }, (_, t) => bfullAt(r, heap, t, bFloats));
  if (rooms.includes(0)) return false;
  const args = (t: number) => [
    ...productArgs(job),
    rooms[t],
    t === 0 ? r.mainPack : r.packs[t - 1],
    r.claimAt,
    workers + 1,
    t === 1 ? 1 : 0, // the first worker claims from the bottom up, the others from the top down
  ];
  // the rows claimed from the top and from the bottom (gemm.c reads them as one 64-bit counter)
  const counter = new Int32Array(r.memory.buffer, r.claimAt, 2);
  Atomics.store(counter, 0, 0);
  Atomics.store(counter, 1, 0);
  post((w) => args(w + 1));
  let mine = 0;
  try {
    mine = claim.run(args(0));
  } finally {
    // even where the main thread's call failed: no worker may still be claiming when the counter is
    // reset for the next product
    wait();
  }
  lastClaim = [mine, ...Array.from({ length: workers }, (_, w) => Atomics.load(r.ctl, w * SLOTS + 4))];
  claimedRuns++;
  return true;
}
