/**
 * Matrix products on every core without native BLAS: {@link parallelGemm} splits one `BatchMatMul`
 * between the main thread and worker threads (lib/engine/gemm_worker.ts).
 *
 * tfjs-wasm's memory is not shared (its threaded build needs classic workers, which Deno lacks), so a
 * worker cannot read tensors where they are. Each worker's share of A and B is copied into a shared
 * memory of our own, the worker runs the same gemm.c there, and its rows of C are copied back; the
 * main thread computes its own share in place meanwhile. Copies are a few percent of the work on the
 * products this is used for (at least {@link MIN_FLOP}); smaller ones stay on the main thread.
 *
 * Every element of C is summed in the same order whoever computes it (the split is by whole rows or
 * whole batch items, and gemm.c's blocking does not depend on either), so results are bitwise the
 * same for any number of threads.
 *
 * Threads: `IJEPA_THREADS` (total, main thread included; 1 turns workers off), default the number of
 * cores, at most 8. Workers start with the wasm backend and do not keep the process alive.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { gemmSharedBytes } from "./fused_simd.ts";
import { SLOTS } from "./gemm_worker.ts";

/** Products below this many floating-point operations run on the main thread alone. */
export const MIN_FLOP = 4e6;

/** One product in gemm.c's terms (pointers are float offsets into `heap`). */
export interface GemmJob {
  batch: number;
  m: number;
  n: number;
  k: number;
  rsA: number;
  csA: number;
  bsA: number;
  rsB: number;
  csB: number;
  bsB: number;
  a: number;
  b: number;
  c: number;
}

interface Pool {
  memory: WebAssembly.Memory;
  workers: Worker[];
  ctl: Int32Array;
  packFloats: number;
  /** First float of the data area (after control slots and one pack buffer per worker). */
  data: number;
  job: number;
  failure?: string;
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

/** Threads wanted in all (main included): `IJEPA_THREADS`, else the cores, capped at 8. */
export function threadsWanted(): number {
  let v = "";
  try {
    v = Deno.env.get("IJEPA_THREADS") ?? "";
  } catch {
    // no --allow-env: the default
  }
  const n = Number.parseInt(v, 10);
  if (v.trim() !== "" && Number.isFinite(n) && n >= 1) return Math.min(n, 8);
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8));
}

/**
 * Start the worker threads (once; a no-op with one thread wanted). `packFloats` is gemm.c's pack
 * buffer size. Workers that fail to start leave products on the main thread.
 */
export function startGemmPool(packFloats: number): void {
  if (pool !== undefined) return;
  const count = threadsWanted() - 1;
  if (count < 1) {
    pool = null;
    return;
  }
  try {
    const dataStart = Math.ceil((count * SLOTS * 4 + count * packFloats * 4) / 65536) * 65536;
    const memory = new WebAssembly.Memory({
      initial: dataStart / 65536 + 16,
      maximum: 32768,
      shared: true,
    });
    const module = new WebAssembly.Module(gemmSharedBytes());
    const p: Pool = {
      memory,
      workers: [],
      ctl: new Int32Array(memory.buffer, 0, count * SLOTS),
      packFloats,
      data: dataStart / 4,
      job: 0,
    };
    for (let w = 0; w < count; w++) {
      const worker = new Worker(new URL("./gemm_worker.ts", import.meta.url));
      worker.on("message", (msg: unknown) => p.failure = String(msg));
      worker.on("error", (e: Error) => p.failure = e.message);
      worker.unref();
      worker.postMessage({ memory, module, base: w * SLOTS });
      p.workers.push(worker);
    }
    pool = p;
    speeds = p.workers.map(() => 1);
    // Stop the workers when the program ends rather than leaving threads parked in Atomics.wait for
    // the runtime's teardown to find.
    globalThis.addEventListener?.("unload", () => {
      for (const w of p.workers) void w.terminate();
    });
  } catch {
    pool = null; // no workers here (permissions, no shared memory): the main thread does it all
  }
}

/** Workers that have started, after {@link startGemmPool}. */
export function readyWorkers(): number {
  if (!pool || pool.failure) return 0;
  let n = 0;
  for (let w = 0; w < pool.workers.length; w++) if (Atomics.load(pool.ctl, w * SLOTS + 2) === 1) n++;
  return n === pool.workers.length ? n : 0; // all or none: shares are planned for every worker
}

/** A share of a product: batch items [b0, b1) and rows [i0, i1). */
export interface Part {
  b0: number;
  b1: number;
  i0: number;
  i1: number;
}

/**
 * Split a product into shares proportional to `weights` (the main thread's first), by batch items
 * (batch > 1) or by rows in multiples of 4. A share may come out empty (a slow thread on a small
 * product); callers skip those.
 */
export function split(job: GemmJob, weights: number[]): Part[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const units = job.batch > 1 ? job.batch : Math.ceil(job.m / 4);
  const cuts = [0];
  let acc = 0;
  for (const w of weights) {
    acc += w;
    cuts.push(Math.min(units, Math.round(units * acc / total)));
  }
  cuts[weights.length] = units;
  return weights.map((_, s) =>
    job.batch > 1
      ? { b0: cuts[s], b1: cuts[s + 1], i0: 0, i1: job.m }
      : { b0: 0, b1: 1, i0: Math.min(job.m, 4 * cuts[s]), i1: Math.min(job.m, 4 * cuts[s + 1]) }
  );
}

/** Work in a share, in rows of the product (batch items count as m rows each). */
function rowsOf(part: Part): number {
  return (part.b1 - part.b0) * (part.i1 - part.i0);
}

/**
 * Each worker's speed relative to the main thread's on its share (the main thread's copies
 * included), learned from the products split so far: shares are sized by it so that every thread
 * finishes at once. Measured 2026-12-04 on the 2-core machine: an equal split left the main thread
 * waiting 2 ms of a 15 ms product for its worker (the main thread's copies and the worker's wake-up).
 */
let speeds: number[] = [];

/** How far one product moves the learned speeds (an exponential average). */
const SPEED_STEP = 0.2;

/** Learn from one split product: `mainMs` for the main thread's share and copies, the workers' own. */
function learnSpeeds(main: Part, mainMs: number, done: { w: number; part: Part; ms: number }[]): void {
  const mainRate = rowsOf(main) / mainMs;
  if (!(mainMs >= 0.5) || !(mainRate > 0)) return; // too short to time
  for (const d of done) {
    if (!(d.ms >= 0.5)) continue;
    // one product's timing is noisy on a shared machine: no single one moves a share far
    const ratio = Math.min(2, Math.max(0.5, rowsOf(d.part) / d.ms / mainRate));
    speeds[d.w] = speeds[d.w] * (1 - SPEED_STEP) + ratio * SPEED_STEP;
  }
}

/** n rounded up to a multiple of 4 floats (16 bytes). */
function pad4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Offset and length (floats) of the elements of an operand a part reads. */
function span(
  b0: number,
  b1: number,
  bs: number,
  r0: number,
  r1: number,
  rs: number,
  cols: number,
  cs: number,
) {
  const start = b0 * bs + r0 * rs;
  const last = (b1 - 1) * bs + (r1 - 1) * rs + (cols - 1) * cs;
  return { start, length: last - start + 1 };
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
): boolean {
  const workers = readyWorkers();
  if (!enabled || !pool || workers === 0 || 2 * job.batch * job.m * job.n * job.k < MIN_FLOP || job.k === 0) {
    return false;
  }
  const p = pool;
  const started = performance.now();
  const [mine, ...theirs] = split(job, [1, ...speeds]);
  // workers whose share came out empty sit this product out
  const busy = theirs.map((part, w) => ({ part, w })).filter((q) => rowsOf(q.part) > 0);
  if (busy.length === 0 || rowsOf(mine) === 0) return false;
  // place each worker's A, B and C in the shared memory, growing it first
  type Placed = { part: Part; w: number; a: number; b: number; c: number; cLen: number; cFrom: number };
  const placed: Placed[] = [];
  let top = p.data;
  const plans = busy.map(({ part, w }) => {
    const rows = part.i1 - part.i0;
    const a = span(part.b0, part.b1, job.bsA, part.i0, part.i1, job.rsA, job.k, job.csA);
    const b = span(part.b0, part.b1, job.bsB, 0, job.k, job.rsB, job.n, job.csB);
    const cLen = (part.b1 - part.b0) * rows * job.n;
    const cFrom = part.b0 * job.m * job.n + part.i0 * job.n;
    return { part, w, a, b, cLen, cFrom };
  });
  const need = plans.reduce((s, q) => s + pad4(q.a.length) + pad4(q.b.length) + pad4(q.cLen), 0);
  const have = p.memory.buffer.byteLength / 4 - top;
  if (need > have) p.memory.grow(Math.ceil((need - have) * 4 / 65536));
  const shared = new Float32Array(p.memory.buffer);
  const src = heap();
  for (const q of plans) {
    const a = top;
    shared.set(src.subarray(job.a + q.a.start, job.a + q.a.start + q.a.length), a);
    top += pad4(q.a.length);
    const b = top;
    shared.set(src.subarray(job.b + q.b.start, job.b + q.b.start + q.b.length), b);
    top += pad4(q.b.length);
    placed.push({ part: q.part, w: q.w, a, b, c: top, cLen: q.cLen, cFrom: q.cFrom });
    top += pad4(q.cLen);
  }
  // post the jobs
  p.job++;
  for (const q of placed) {
    const s = q.w * SLOTS;
    const args = [
      4 * q.a,
      4 * q.b,
      4 * q.c,
      q.part.b1 - q.part.b0,
      q.part.i1 - q.part.i0,
      job.n,
      job.k,
      job.rsA,
      job.csA,
      job.bsA,
      job.rsB,
      job.csB,
      job.bsB,
      4 * (p.data - (q.w + 1) * p.packFloats), // packs sit just below the data area
    ];
    p.ctl.set(args, s + 4);
    Atomics.store(p.ctl, s, p.job);
    Atomics.notify(p.ctl, s);
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
  for (const q of placed) {
    const s = q.w * SLOTS;
    const since = Date.now();
    while (Atomics.load(p.ctl, s + 1) !== p.job) {
      Atomics.wait(p.ctl, s + 1, Atomics.load(p.ctl, s + 1), 50);
      if (p.failure || Atomics.load(p.ctl, s + 2) === -1 || Date.now() - since > 120_000) {
        pool = null; // stop using the workers; later products run on the main thread
        throw new Error(`matrix product worker ${q.w + 1} failed: ${p.failure ?? "no answer in 120 s"}`);
      }
    }
  }
  const waited = performance.now();
  const dst = heap();
  const out = new Float32Array(p.memory.buffer);
  for (const q of placed) dst.set(out.subarray(q.c, q.c + q.cLen), job.c + q.cFrom);
  const copiedBack = performance.now() - waited;
  learnSpeeds(
    mine,
    localDone - started + copiedBack,
    placed.map((q) => ({ w: q.w, part: q.part, ms: Atomics.load(p.ctl, q.w * SLOTS + 3) / 1000 })),
  );
  splitRuns++;
  return true;
}
