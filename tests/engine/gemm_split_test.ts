// lib/engine/gemm_pool.ts's shares and lib/engine/fused_simd.ts's choice of the relaxed-SIMD (FMA) build
// of gemm.c. The products themselves, split and not, are checked in tests/engine/simd_gemm_test.ts.
// Run with `deno test -A tests/engine/gemm_split_test.ts`.
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { chargedWait, type GemmJob, split, WORKER_POLL } from "../../lib/engine/gemm_pool.ts";
import { parseThreads, pollAfter } from "../../lib/engine/pool_env.ts";
import { simdFma } from "../../lib/engine/fused_simd.ts";
import { KERNELS_FMA_WASM_BASE64, KERNELS_WASM_BASE64 } from "../../lib/engine/simd/kernels_wasm.ts";

function job(batch: number, m: number): GemmJob {
  return { batch, m, n: 8, k: 8, rsA: 8, csA: 1, bsA: 64, rsB: 8, csB: 1, bsB: 64, a: 0, b: 0, c: 0 };
}

Deno.test("gemm shares: contiguous, whole row blocks or batch items, sized by the weights", () => {
  for (
    const [batch, m, weights] of [
      [1, 3136, [1, 1]],
      [1, 3136, [1, 0.6]],
      [1, 70, [1, 2, 0.5]],
      [192, 49, [1, 0.9]],
      [5, 49, [1, 1, 1, 1, 1, 1, 1, 1]],
    ] as [number, number, number[]][]
  ) {
    const parts = split(job(batch, m), weights);
    assertEquals(parts.length, weights.length);
    const units = batch > 1 ? batch : Math.ceil(m / 4);
    const total = weights.reduce((a, b) => a + b, 0);
    let next = 0;
    for (const [s, p] of parts.entries()) {
      const [from, to] = batch > 1 ? [p.b0, p.b1] : [p.i0 / 4, Math.ceil(p.i1 / 4)];
      assertEquals(from, next, `share ${s} of ${batch}x${m} starts where the last ended`);
      assert(to >= from, `share ${s} of ${batch}x${m}: [${from}, ${to})`);
      if (batch > 1) assertEquals([p.i0, p.i1], [0, m]);
      else assert(p.i0 % 4 === 0 && (p.i1 % 4 === 0 || p.i1 === m), `rows [${p.i0}, ${p.i1})`);
      // within one unit of its weight's part
      assert(Math.abs(to - from - units * weights[s] / total) <= 1, `share ${s}: ${to - from} of ${units}`);
      next = to;
    }
    assertEquals(next, units, `${batch}x${m}: every row computed`);
  }
  // a thread whose weight is tiny gets nothing on a small product (the pool skips it)
  const [, tiny] = split(job(1, 8), [1, 0.01]);
  assertEquals(tiny.i1 - tiny.i0, 0);
});

/** op(A) op(B) with gemm.c's ij_gemm from `base64` on a fresh memory; A [m, k], B [k, n] row-major. */
function gemmWith(base64: string, A: Float32Array, B: Float32Array, m: number, k: number, n: number) {
  const memory = new WebAssembly.Memory({ initial: 256 });
  const inst = new WebAssembly.Instance(
    new WebAssembly.Module(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))),
    { env: { memory } },
  );
  // deno-lint-ignore no-explicit-any
  const f = inst.exports as Record<string, (...args: number[]) => any>;
  const heap = new Float32Array(memory.buffer);
  const a = 1024, b = a + m * k, c = b + k * n, pack = c + m * n;
  assert(pack + f.ij_gemm_pack_floats() < heap.length, "test memory too small");
  heap.set(A, a);
  heap.set(B, b);
  f.ij_gemm(4 * a, 4 * b, 4 * c, 1, m, n, k, k, 1, 0, n, 1, 0, 4 * pack);
  return heap.slice(c, c + m * n);
}

Deno.test("gemm FMA build: chosen where relaxed SIMD validates, as accurate as the plain one", async () => {
  const fmaBytes = Uint8Array.from(atob(KERNELS_FMA_WASM_BASE64), (c) => c.charCodeAt(0));
  assertEquals(simdFma(), WebAssembly.validate(fmaBytes), "FMA build used exactly where it validates");
  const [m, k, n] = [70, 600, 530];
  const A = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
  const B = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.11));
  const builds = [KERNELS_WASM_BASE64, ...(WebAssembly.validate(fmaBytes) ? [KERNELS_FMA_WASM_BASE64] : [])];
  for (const [which, base64] of builds.entries()) {
    const got = gemmWith(base64, A, B, m, k, n);
    let worst = 0;
    for (let i = 0; i < m; i += 7) {
      for (let j = 0; j < n; j += 5) {
        let s = 0, abs = 0;
        for (let p = 0; p < k; p++) {
          s += A[i * k + p] * B[p * n + j];
          abs += Math.abs(A[i * k + p] * B[p * n + j]);
        }
        worst = Math.max(worst, Math.abs(got[i * n + j] - s) / abs);
      }
    }
    assert(worst < 1e-6, `${which ? "FMA" : "plain"} build: relative error ${worst}`);
  }
  // IJEPA_FMA=off keeps the plain build
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { simdFma } from "${new URL("../../lib/engine/fused_simd.ts", import.meta.url)}";
console.log(simdFma());`,
    ],
    env: { IJEPA_FMA: "off" },
    stdout: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(out.stdout).trim(), "false");
});

Deno.test("worker watchdog: a suspended process is not a hung worker", () => {
  // the main thread checks every 50 ms; a 3-minute gap between checks (the laptop slept) costs 1 s
  // of the worker's allowance, ordinary gaps count in full
  assertEquals(chargedWait(50), 50);
  assertEquals(chargedWait(180_000), 1000);
  assertEquals(chargedWait(-5), 0); // the clock stepped back
  let waited = 0;
  for (const gap of [50, 50, 180_000, 50]) waited += chargedWait(gap);
  assertEquals(waited, 1150, "a 3-minute suspension between ordinary checks");
});

Deno.test("worker polling: only while our own products run on the pool, never after BLAS took over", () => {
  const { us, recentMs } = WORKER_POLL;
  const t = 1e9; // far from any product the other tests ran
  assertEquals(pollAfter("ij_layer_norm", t), 0, "no product of ours yet: a row-wise kernel alone sleeps");
  assertEquals(pollAfter("ij_gemm_claim", t + 1), us, "a product of ours polls");
  assertEquals(pollAfter("ij_bias_gelu", t + 1 + recentMs / 2), us, "a kernel between products polls");
  // with BLAS, the products go to OpenBLAS: the pool only sees row-wise kernels, and stops polling
  assertEquals(pollAfter("ij_layer_norm", t + 1 + 2 * recentMs), 0);
  assertEquals(pollAfter("ij_gemm", t + 100), us);
  // a clock before the last product (another caller's timeline) never polls; real time is far before t
  assertEquals(pollAfter("ij_layer_norm", t + 99), 0);
  assertEquals(pollAfter("ij_layer_norm"), 0);
});

// The parser, given the value: tests run in parallel in one process, and setting the variable would
// change the thread count another test's pool starts with.
Deno.test("IJEPA_THREADS: a whole number from 1 (capped at 8), else a clear error; unset, the cores", () => {
  assertEquals(parseThreads("3", 2), 3);
  assertEquals(parseThreads(" 2 ", 16), 2);
  assertEquals(parseThreads("64", 2), 8);
  for (const bad of ["abc", "0", "2.5", "-1"]) {
    assertThrows(
      () => parseThreads(bad, 2),
      Error,
      `IJEPA_THREADS: expected a whole number of threads, 1 or more, got "${bad}"`,
    );
  }
  assertEquals([parseThreads("", 2), parseThreads(" ", 1), parseThreads("", 32)], [2, 1, 8]);
});
