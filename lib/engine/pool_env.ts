/**
 * The thread pool's settings from the environment (lib/engine/gemm_pool.ts): how many threads, how
 * long to wait for a worker, and how a suspended process is charged.
 *
 * @module
 */

/** Threads wanted in all (main included): `IJEPA_THREADS`, else the cores, capped at 8. */
export function threadsWanted(): number {
  let v = "";
  try {
    v = Deno.env.get("IJEPA_THREADS") ?? "";
  } catch {
    // no --allow-env: the default
  }
  return parseThreads(v, navigator.hardwareConcurrency || 1);
}

/** An `IJEPA_THREADS` value: a whole number from 1 (capped at 8), or empty for `cores` (capped at 8). */
export function parseThreads(v: string, cores: number): number {
  if (v.trim() === "") return Math.max(1, Math.min(cores, 8));
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`IJEPA_THREADS: expected a whole number of threads, 1 or more, got "${v}"`);
  }
  return Math.min(n, 8);
}

/**
 * How long the main thread waits for a worker's answer before it stops using the pool (throwing
 * once): `IJEPA_WORKER_TIMEOUT_S` seconds, 120 by default. Time the whole process spends suspended
 * does not count (see lib/engine/gemm_pool.ts's waitFor).
 */
export function workerTimeoutMs(): number {
  if (timeoutMs !== undefined) return timeoutMs;
  let v = "";
  try {
    v = Deno.env.get("IJEPA_WORKER_TIMEOUT_S") ?? "";
  } catch {
    // no --allow-env: the default
  }
  const s = Number(v);
  if (v.trim() !== "" && !(Number.isFinite(s) && s > 0)) {
    throw new Error(`IJEPA_WORKER_TIMEOUT_S: expected a number of seconds above 0, got "${v}"`);
  }
  timeoutMs = 1000 * (v.trim() !== "" ? s : 120);
  return timeoutMs;
}

let timeoutMs: number | undefined;

/**
 * The wait a worker is charged for between two checks `gapMs` apart that each wait 50 ms at most: a
 * gap far over that is the whole process having been suspended (a laptop asleep, SIGSTOP), not the
 * worker hanging, and counts 1 s at most.
 */
export function chargedWait(gapMs: number): number {
  return Math.min(Math.max(gapMs, 0), 1000);
}

/**
 * How long a worker keeps polling for its next job after finishing one, before it sleeps on it
 * (Atomics.wait): `us` microseconds while our own products run on the pool (no BLAS; a product of
 * ours in the last `recentMs`), else none. Woken from sleep, a worker starts 40-90 us late on the
 * 2-core VM, and a step without BLAS waits on it some 350 times. With BLAS it must not poll: a polling
 * worker holds the core OpenBLAS's second thread needs (the step took 442 ms against 378 when
 * workers polled 1 ms after every job).
 */
export const WORKER_POLL = { us: 1000, recentMs: 10 };

let lastProductAt = -Infinity;

/** The microseconds a worker posted the SIMD function `name` polls after it (see {@link WORKER_POLL}). */
export function pollAfter(name: string, now: number = performance.now()): number {
  if (name.startsWith("ij_gemm")) lastProductAt = now;
  const since = now - lastProductAt;
  // more threads than cores (IJEPA_THREADS): a polling worker would hold a core another one needs
  pollingFits ??= threadsWanted() <= (navigator.hardwareConcurrency || 1);
  return pollingFits && since >= 0 && since < WORKER_POLL.recentMs ? WORKER_POLL.us : 0;
}

let pollingFits: boolean | undefined;
