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
  const n = Number.parseInt(v, 10);
  if (v.trim() !== "" && Number.isFinite(n) && n >= 1) return Math.min(n, 8);
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8));
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
  timeoutMs = 1000 * (v.trim() !== "" && Number.isFinite(s) && s > 0 ? s : 120);
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
