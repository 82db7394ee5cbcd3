/**
 * Row-wise SIMD kernels on every core: {@link rowsCall} splits one call of a kernel of
 * lib/engine/simd/kernels.c by whole rows (or whole batch items) between the main thread and the
 * worker threads of lib/engine/gemm_pool.ts, each computing its rows where they are in tfjs-wasm's
 * memory. Only where that memory is shared (lib/engine/shared_heap.ts); elsewhere, and for calls
 * under {@link MIN_ELEMENTS}, the main thread makes the call alone.
 *
 * Every row is computed by the same code whoever computes it, so results are bitwise the same for
 * any number of threads; kernels that also sum over rows (bias gradients) sum fixed chunks of rows
 * and leave the sum of the chunks to the main thread (see fused_grad_kernels.ts).
 *
 * Measured 2026-12-04 (2 cores, reference step, BLAS on): the fused kernels took about 165 ms of a
 * 560 ms step on the main thread alone, GELU and its gradient 65 ms of it.
 *
 * @module
 */
import type { SimdModule } from "./fused_simd.ts";
import { runShares, startGemmPool } from "./gemm_pool.ts";

/** Below this many elements a call runs on the main thread alone (a split costs the workers' wake-up). */
export const MIN_ELEMENTS = 1 << 16;

/**
 * Call `k`'s function `name` over `units` units (rows, or batch items) of `per` elements each;
 * `args(u0, u1)` gives the arguments that compute units [u0, u1) (pointers in bytes). Split between
 * threads when the pool computes in place.
 */
export function rowsCall(
  k: SimdModule,
  name: string,
  units: number,
  per: number,
  args: (u0: number, u1: number) => number[],
): void {
  const f = k.f[name];
  if (units * per >= MIN_ELEMENTS && k.heap) {
    startGemmPool(k.f.ij_gemm_pack_floats(), k.heap);
    if (runShares({ name, units, args }, (a) => f(...a))) return;
  }
  f(...args(0, units));
}
