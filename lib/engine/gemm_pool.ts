/**
 * Matrix products on every core without native BLAS: {@link parallelGemm} splits one `BatchMatMul`
 * between the main thread and worker threads (lib/engine/gemm_worker.ts).
 *
 * Where tfjs-wasm's memory is shared (lib/engine/shared_heap.ts, the default), every thread reads
 * and writes its share in place, and the row-wise fused kernels are split the same way
 * ({@link runShares}; lib/engine/parallel_kernels.ts). Where it is not (tfjs's threaded build needs
 * classic workers, which Deno lacks, and its other builds define an unshared memory), a worker
 * cannot read tensors where they are: each worker's share of A and B is copied into a shared memory
 * of our own, the worker runs the same gemm.c there, and its rows of C are copied back, while the
 * main thread computes its own share in place. Copies are a few percent of the work on the products
 * this is used for (at least {@link MIN_FLOP}); smaller ones stay on the main thread.
 *
 * Every element of C is summed in the same order whoever computes it (the split is by whole rows or
 * whole batch items, and gemm.c's blocking does not depend on either), so results are bitwise the
 * same for any number of threads. Large products in place are not split in advance: every thread
 * claims rows from one counter as it goes ({@link CLAIMS}; the first worker from the bottom up, the
 * others from the top down), so that one held up for a while (another process on its core) does not
 * keep the others waiting; smaller ones follow the learned speeds.
 * Deep ones (few rows, a long k: weight gradients) are split along k instead, in chunks fixed by the
 * shape ({@link runOnAll}, lib/engine/gemm_deep.ts).
 *
 * Threads: `IJEPA_THREADS` (total, main thread included; 1 turns workers off), default the number of
 * cores, at most 8. Workers start with the wasm backend and do not keep the process alive.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { simdModuleBytes } from "./fused_simd.ts";
import { ARG_VALUES, ARGS_AT, SLOTS } from "./gemm_worker.ts";
import { cutUnits, learnSpeeds, resetSpeeds, rowsOf, shareWeights, split } from "./pool_shares.ts";
import { copyIn, type GemmHeap, type GemmJob, type Part } from "./gemm_copies.ts";
import { chargedWait, pollAfter, threadsWanted, workerTimeoutMs } from "./pool_env.ts";
import { claimedGemm, type ClaimRooms, claimsWanted, type GemmClaim } from "./gemm_claims.ts";

export type { GemmHeap, GemmJob, Part };
export { chargedWait, threadsWanted, WORKER_POLL, workerTimeoutMs } from "./pool_env.ts";
export { split } from "./pool_shares.ts";
export { CLAIMS, type GemmClaim, lastClaimRows, setGemmClaims } from "./gemm_claims.ts";

/**
 * Products below this many floating-point operations run on the main thread alone: with copies
 * (tfjs-wasm's memory not shared), and in place (shared: lib/engine/shared_heap.ts), where a split
 * costs only the threads' wake-up, about 40 us. Measured 2026-12-05, 2 cores: 2.1 MFLOP products took
 * 48-55 us on one thread against 74-104 split; 4.2-4.7 MFLOP ones 91-114 against 83-104.
 */
export const MIN_FLOP = { copies: 4e6, inPlace: 3.5e6 };

interface Pool extends ClaimRooms {
  /** tfjs-wasm's own memory when shared (`inPlace`), else ours, which the operands are copied into. */
  memory: WebAssembly.Memory;
  inPlace: boolean;
  workers: Worker[];
  ctl: Int32Array;
  /** Each worker's Float64 argument slots (function index, argument count, arguments). */
  args: Float64Array[];
  /** The SIMD module's exports, by index as the workers know them. */
  names: string[];
  /** Byte offset of each worker's pack buffer in `memory`. */
  packs: number[];
  /** First float of the copies' area (after control slots and pack buffers); copies only. */
  data: number;
  job: number;
  failure?: string;
  /** In place only: the allocator, for products shared by claimed rows (lib/engine/gemm_claims.ts). */
  heap?: GemmHeap;
}

let pool: Pool | null | undefined;
let enabled = true;
let splitRuns = 0;

/**
 * Use the worker threads (default) or keep every product on the main thread; for tests and
 * measurements. Returns how many products have been split between threads so far.
 */
export function setGemmWorkers(on: boolean): number {
  enabled = on;
  return splitRuns;
}

/**
 * Start the worker threads (once; a no-op with one thread wanted). `packFloats` is gemm.c's pack
 * buffer size. With `heap` shared (lib/engine/shared_heap.ts), the workers compute in it, in place;
 * otherwise in a shared memory of ours that operands are copied into. Workers that fail to start
 * leave products on the main thread.
 */
export function startGemmPool(packFloats: number, heap?: GemmHeap): void {
  if (pool !== undefined) return;
  const count = threadsWanted() - 1;
  if (count < 1) {
    pool = null;
    return;
  }
  try {
    const inPlace = heap !== undefined && heap.memory.buffer instanceof SharedArrayBuffer;
    let memory: WebAssembly.Memory, ctlAt: number, packs: number[], data = 0, claimAt = 0, mainPack = 0;
    if (inPlace) {
      memory = heap.memory;
      ctlAt = heap.malloc(count * SLOTS * 4);
      const line = heap.malloc(128);
      claimAt = line ? Math.ceil(line / 64) * 64 : 0; // a cache line of its own
      mainPack = heap.malloc(packFloats * 4);
      packs = Array.from({ length: count }, () => heap.malloc(packFloats * 4));
      if (!ctlAt || !mainPack || packs.includes(0)) throw new Error("no room in the heap for the workers");
      new Int32Array(memory.buffer, ctlAt, count * SLOTS).fill(0); // malloc'd memory holds old bytes
    } else {
      const dataStart = Math.ceil((count * SLOTS * 4 + count * packFloats * 4) / 65536) * 65536;
      memory = new WebAssembly.Memory({ initial: dataStart / 65536 + 16, maximum: 65536, shared: true });
      ctlAt = 0;
      data = dataStart / 4;
      packs = Array.from({ length: count }, (_, w) => 4 * (data - (w + 1) * packFloats)); // below the data
    }
    const module = new WebAssembly.Module(simdModuleBytes(true));
    const names = WebAssembly.Module.exports(module).filter((e) => e.kind === "function").map((e) => e.name);
    const p: Pool = {
      memory,
      inPlace,
      workers: [],
      ctl: new Int32Array(memory.buffer, ctlAt, count * SLOTS),
      args: Array.from(
        { length: count },
        (_, w) => new Float64Array(memory.buffer, ctlAt + w * SLOTS * 4 + ARGS_AT, ARG_VALUES),
      ),
      names,
      packs,
      data,
      job: 0,
      heap: inPlace && claimAt && mainPack ? heap : undefined, // no claims without their room
      claimAt,
      mainPack,
      bfull: [],
    };
    for (let w = 0; w < count; w++) {
      const worker = new Worker(new URL("./gemm_worker.ts", import.meta.url));
      worker.on("message", (msg: unknown) => p.failure = String(msg));
      worker.on("error", (e: Error) => p.failure = e.message);
      worker.on("exit", (code: number) => p.failure ??= `worker ${w + 1} exited (code ${code})`);
      worker.unref();
      worker.postMessage({ memory, module, base: ctlAt / 4 + w * SLOTS, names });
      p.workers.push(worker);
    }
    pool = p;
    resetSpeeds(count);
    // Stop the workers when the program ends rather than leaving threads parked in Atomics.wait for
    // the runtime's teardown to find.
    globalThis.addEventListener?.("unload", () => {
      for (const w of p.workers) void w.terminate();
    });
  } catch {
    pool = null; // no workers here (permissions, no shared memory): the main thread does it all
  }
}

/** Whether the workers compute in tfjs-wasm's own (shared) memory, without copies. */
export function gemmInPlace(): boolean {
  return pool?.inPlace ?? false;
}

/** Workers that have started, after {@link startGemmPool}. */
export function readyWorkers(): number {
  if (!pool || pool.failure) return 0;
  let n = 0;
  for (let w = 0; w < pool.workers.length; w++) if (Atomics.load(pool.ctl, w * SLOTS + 2) === 1) n++;
  return n === pool.workers.length ? n : 0; // all or none: shares are planned for every worker
}

/** Post function `name` of the SIMD module with `args` to worker `w`. */
function post(p: Pool, w: number, name: string, args: number[]): void {
  const index = p.names.indexOf(name);
  if (index < 0) throw new Error(`thread pool: the SIMD module has no function ${name}`);
  if (args.length > ARG_VALUES - 2) throw new Error(`thread pool: ${name} takes ${args.length} arguments`);
  p.args[w].set([index, args.length, ...args]);
  Atomics.store(p.ctl, w * SLOTS + 5, pollAfter(name));
  Atomics.store(p.ctl, w * SLOTS, p.job);
  Atomics.notify(p.ctl, w * SLOTS);
}

/**
 * How long the main thread polls a worker's done flag before it sleeps on it (Atomics.wait), in ms.
 * A worker's wake-up and its notify back take 40-90 us a round trip on the 2-core VM, and a step
 * waits on its workers some 350 times (19-34 ms in all). Polling first, the reference step without
 * BLAS took 713 ms against 724 and 674 against 691 (alternating steps, medians of 12, 2026-12-05);
 * with BLAS it was level (369 against 366, 306 against 308). The main thread has nothing else to do
 * meanwhile, and after this long it sleeps as before.
 */
const POLL_MS = 0.2;

/** Wait for the workers `ws` to finish the job posted last; throws (and stops the pool) on a failure. */
function waitFor(p: Pool, ws: number[]): void {
  for (const w of ws) {
    const s = w * SLOTS;
    let waited = 0, last = Date.now();
    const limit = workerTimeoutMs();
    for (const t0 = performance.now(); performance.now() - t0 < POLL_MS;) {
      if (Atomics.load(p.ctl, s + 1) === p.job) break;
    }
    while (Atomics.load(p.ctl, s + 1) !== p.job) {
      Atomics.wait(p.ctl, s + 1, Atomics.load(p.ctl, s + 1), 50);
      const now = Date.now();
      waited += chargedWait(now - last);
      last = now;
      if (p.failure || Atomics.load(p.ctl, s + 2) === -1 || waited > limit) {
        pool = null; // stop using the workers; later work runs on the main thread
        throw new Error(`worker thread ${w + 1} failed: ${p.failure ?? `no answer in ${limit / 1000} s`}`);
      }
    }
    // a worker that failed still says it is done: its share was not computed
    if (Atomics.load(p.ctl, s + 2) === -1) {
      pool = null;
      throw new Error(`worker thread ${w + 1} failed: ${p.failure ?? "its function trapped"}`);
    }
  }
}

/** One row-wise call of a SIMD function, split by {@link runShares}. */
export interface SharedCall {
  /** The SIMD module's function. */
  name: string;
  /** Whole units to share (rows, or blocks of rows). */
  units: number;
  /** The arguments that compute units [u0, u1), pointers in bytes. */
  args(u0: number, u1: number): number[];
}

/**
 * Run `call` split between the main thread (through `local`, the same function on tfjs-wasm's
 * memory) and the workers, in place: only where tfjs-wasm's memory is shared. Shares follow the
 * workers' learned speeds; every unit must be computed alike whoever computes it. Returns the
 * shares' unit ranges, main thread's first, or null (nothing done) when there are no ready workers,
 * the memory is not shared, or there are fewer than 2 units.
 */
export function runShares(call: SharedCall, local: (args: number[]) => void): [number, number][] | null {
  const workers = readyWorkers();
  if (!enabled || !pool || !pool.inPlace || workers === 0 || call.units < 2) return null;
  const p = pool;
  const weights = shareWeights();
  const cuts = cutUnits(call.units, weights);
  const ranges = weights.map((_, s) => [cuts[s], cuts[s + 1]] as [number, number]);
  const busy = ranges.slice(1).map((r, w) => ({ r, w })).filter(({ r }) => r[1] > r[0]);
  if (busy.length === 0) return null;
  const started = performance.now();
  p.job++;
  for (const { r, w } of busy) post(p, w, call.name, call.args(r[0], r[1]));
  const [u0, u1] = ranges[0];
  if (u1 > u0) local(call.args(u0, u1));
  const mainMs = performance.now() - started;
  waitFor(p, busy.map((b) => b.w));
  const timed = busy.map(({ r, w }) => ({
    w,
    work: r[1] - r[0],
    ms: Atomics.load(p.ctl, w * SLOTS + 3) / 1000,
  }));
  learnSpeeds(u1 - u0, mainMs, timed);
  splitRuns++;
  return ranges;
}

/**
 * Run the SIMD module's function `name` on every thread at once, in tfjs-wasm's shared memory: worker
 * w with `argsFor(pack, w)`, `pack` the byte offset of its own gemm.c pack buffer, and the main thread
 * through `local`, for work they share by claiming it as they go (gemm.c's `ij_gemm_deep`). Returns
 * each thread's result, the main thread's first, when all are done; null, having done nothing, where
 * the memory is not shared or no worker is ready.
 */
export function runOnAll(
  name: string,
  argsFor: (pack: number, w: number) => number[],
  local: () => number,
): number[] | null {
  if (!enabled || !pool || !pool.inPlace || readyWorkers() === 0) return null;
  const p = pool;
  const ids = p.workers.map((_, w) => w);
  p.job++;
  for (const w of ids) post(p, w, name, argsFor(p.packs[w], w));
  let mine = 0;
  try {
    mine = local();
  } catch (e) {
    try {
      waitFor(p, ids); // even where the main thread failed: no worker may still be at work
    } catch {
      // the main thread's error is the one to report
    }
    throw e;
  }
  waitFor(p, ids);
  splitRuns++;
  return [mine, ...ids.map((w) => Atomics.load(p.ctl, w * SLOTS + 4))];
}

/**
 * Run `job` on `heap` (tfjs-wasm's memory) split between the main thread (`local`, gemm.c on that
 * memory: it receives the same arguments with its share's pointers) and the ready workers. Returns
 * false, having done nothing, when the product is too small or no worker is ready.
 */
export function parallelGemm(
  job: GemmJob,
  heap: () => Float32Array,
  local: (j: GemmJob) => void,
  claim?: GemmClaim,
): boolean {
  const workers = readyWorkers();
  const flop = 2 * job.batch * job.m * job.n * job.k;
  if (
    !enabled || !pool || workers === 0 || flop < MIN_FLOP[pool.inPlace ? "inPlace" : "copies"] || job.k === 0
  ) {
    return false;
  }
  const p = pool;
  if (claim && p.heap && claimsWanted(job, claim.bFloats(job.k, job.n))) {
    const workerIds = p.workers.map((_, w) => w);
    const start = (argsFor: (w: number) => number[]) => {
      p.job++;
      for (const w of workerIds) post(p, w, "ij_gemm_claim", argsFor(w));
    };
    if (claimedGemm(p, p.heap, workerIds.length, job, claim, start, () => waitFor(p, workerIds))) {
      splitRuns++;
      return true;
    }
  }
  const started = performance.now();
  const [mine, ...theirs] = split(job, shareWeights());
  // workers whose share came out empty sit this product out
  const busy = theirs.map((part, w) => ({ part, w })).filter((q) => rowsOf(q.part) > 0);
  if (busy.length === 0 || rowsOf(mine) === 0) return false;
  type Placed = { part: Part; w: number; a: number; b: number; c: number; cLen: number; cFrom: number };
  const placed: Placed[] = p.inPlace
    // in place: each worker reads and writes its share where it is, as the main thread does
    ? busy.map(({ part, w }) => ({
      part,
      w,
      a: job.a + part.b0 * job.bsA + part.i0 * job.rsA,
      b: job.b + part.b0 * job.bsB,
      c: job.c + part.b0 * job.m * job.n + part.i0 * job.n,
      cLen: 0,
      cFrom: 0,
    }))
    : copyIn(p.memory, p.data, job, busy, heap()) ?? [];
  if (placed.length === 0) return false;
  // post the jobs
  p.job++;
  for (const q of placed) {
    const args = [4 * q.a, 4 * q.b, 4 * q.c, q.part.b1 - q.part.b0, q.part.i1 - q.part.i0, job.n, job.k];
    post(p, q.w, "ij_gemm", [...args, job.rsA, job.csA, job.bsA, job.rsB, job.csB, job.bsB, p.packs[q.w]]);
  }
  // the main thread's share, in place
  local({
    ...job,
    batch: mine.b1 - mine.b0,
    m: mine.i1 - mine.i0,
    a: job.a + mine.b0 * job.bsA + mine.i0 * job.rsA,
    b: job.b + mine.b0 * job.bsB,
    c: job.c + mine.b0 * job.m * job.n + mine.i0 * job.n,
  });
  const localDone = performance.now();
  // wait for the workers, then copy their rows of C back
  waitFor(p, placed.map((q) => q.w));
  const waited = performance.now();
  if (!p.inPlace) {
    const dst = heap();
    const out = new Float32Array(p.memory.buffer);
    for (const q of placed) dst.set(out.subarray(q.c, q.c + q.cLen), job.c + q.cFrom);
  }
  const copiedBack = performance.now() - waited;
  learnSpeeds(
    rowsOf(mine),
    localDone - started + copiedBack,
    placed.map((q) => ({ w: q.w, work: rowsOf(q.part), ms: Atomics.load(p.ctl, q.w * SLOTS + 3) / 1000 })),
  );
  splitRuns++;
  return true;
}
