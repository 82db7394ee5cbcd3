/**
 * A worker thread of lib/engine/gemm_pool.ts: runs a function of our SIMD module (gemm.c's `ij_gemm`,
 * or a row-wise kernel of kernels.c) on a shared memory whenever the main thread posts one into its
 * control slots, and says when it is done. Not for import.
 *
 * Control slots ({@link SLOTS} Int32 per worker, at `base`): 0 the job number the main thread posted,
 * 1 the last job number done, 2 ready (1) or failed (-1), 3 the last job's compute time in
 * microseconds (the main thread balances its splits with it), 4 the last function's result (the rows
 * an `ij_gemm_claim` computed), 5 how long to poll for the next job after this one, in microseconds
 * (lib/engine/pool_env.ts's pollAfter); from byte {@link ARGS_AT}, Float64 values: the
 * function's index in `names`, the argument count, then the arguments. The error of a failed job is
 * posted as a message.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";

/** Int32 slots per worker (256 bytes: 6 control words, then {@link ARG_VALUES} Float64 values). */
export const SLOTS = 64;
/** Byte offset of the Float64 values in a worker's slots (after the control words). */
export const ARGS_AT = 24;
/** Float64 values after the control words: function index, argument count, arguments. */
export const ARG_VALUES = 29;

interface Start {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  base: number;
  names: string[];
}

parentPort?.once("message", ({ memory, module, base, names }: Start) => {
  const ctl = new Int32Array(memory.buffer, base * 4, SLOTS);
  const args = new Float64Array(memory.buffer, base * 4 + ARGS_AT, ARG_VALUES);
  let fns: ((...args: number[]) => unknown)[];
  try {
    const inst = new WebAssembly.Instance(module, { env: { memory } });
    fns = names.map((n) => inst.exports[n] as (...args: number[]) => unknown);
  } catch (e) {
    Atomics.store(ctl, 2, -1);
    parentPort?.postMessage(String(e));
    return;
  }
  Atomics.store(ctl, 2, 1);
  let seen = 0;
  for (;;) {
    Atomics.wait(ctl, 0, seen);
    seen = Atomics.load(ctl, 0);
    try {
      const f = fns[args[0]];
      const a = Array.from(args.subarray(2, 2 + args[1]));
      const t0 = performance.now();
      const r = f(...a) as unknown;
      Atomics.store(ctl, 3, Math.round((performance.now() - t0) * 1000));
      Atomics.store(ctl, 4, typeof r === "number" ? r : 0);
    } catch (e) {
      Atomics.store(ctl, 2, -1);
      parentPort?.postMessage(String(e));
    }
    Atomics.store(ctl, 1, seen);
    Atomics.notify(ctl, 1);
    // poll for the next job a while before sleeping on it, as slot 5 says (lib/engine/pool_env.ts)
    const until = performance.now() + Atomics.load(ctl, 5) / 1000;
    while (Atomics.load(ctl, 0) === seen && performance.now() < until) {
      // the next job may come within microseconds: a sleeping worker wakes 40-90 us late
    }
  }
});
