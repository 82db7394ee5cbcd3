/**
 * A worker thread of lib/engine/gemm_pool.ts: runs gemm.c's `ij_gemm` on a shared memory whenever the
 * main thread posts a product into its control slots, and says when it is done. Not for import.
 *
 * Control slots (Int32, {@link SLOTS} per worker, at `base`): 0 the job number the main thread posted,
 * 1 the last job number done, 2 ready (1) or failed (-1), 3 the last job's compute time in
 * microseconds (the main thread balances its splits with it), then the 14 arguments of `ij_gemm`
 * from slot 4. The error of a failed job is posted as a message.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";

/** Int32 slots per worker. */
export const SLOTS = 32;

interface Start {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  base: number;
}

parentPort?.once("message", ({ memory, module, base }: Start) => {
  const ctl = new Int32Array(memory.buffer, base * 4, SLOTS);
  let gemm: (...args: number[]) => void;
  try {
    const inst = new WebAssembly.Instance(module, { env: { memory } });
    gemm = inst.exports.ij_gemm as (...args: number[]) => void;
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
      const a = Array.from(ctl.subarray(4, 18));
      const t0 = performance.now();
      gemm(...a);
      Atomics.store(ctl, 3, Math.round((performance.now() - t0) * 1000));
    } catch (e) {
      Atomics.store(ctl, 2, -1);
      parentPort?.postMessage(String(e));
    }
    Atomics.store(ctl, 1, seen);
    Atomics.notify(ctl, 1);
  }
});
