// lib/engine/blas_advice.ts: what running without BLAS costs, said only when it applies.
// Run with `deno test -A tests/engine/blas_advice_test.ts`.
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import "@tensorflow/tfjs-backend-wasm";
import { blasAdvice, MAIN_JOB_TRAINING } from "../../lib/engine/blas_advice.ts";

Deno.test("blas: blasAdvice measures the stock kernel when no library was found, and only then", async () => {
  await tf.setBackend("wasm");
  const line = await blasAdvice({ enabled: false, reason: "off: no BLAS library found (x)", backends: [] });
  assert.match(line ?? "", /stock wasm kernel: \d+ GFLOP\/s here \(measured now\)/);
  const gflops = Number(line!.match(/kernel: (\d+) GFLOP/)![1]);
  assert.ok(gflops > 0 && gflops < 2000, line!);
  assert.ok(line!.includes(`${MAIN_JOB_TRAINING.withoutBlas} img/s without BLAS`), line!);
  for (const reason of ["off: IJEPA_BLAS=off", "off: disabled by the caller"]) {
    assert.equal(await blasAdvice({ enabled: false, reason, backends: [] }), undefined, reason);
  }
  assert.equal(await blasAdvice({ enabled: true, reason: "OpenBLAS", backends: ["wasm"] }), undefined);
});

Deno.test("blas: blasAdvice names our SIMD product kernel when the toolkit's wasm backend runs", async () => {
  const { setBackend } = await import("../../lib/engine/backend.ts");
  await setBackend("wasm", { quiet: true, blas: false });
  const line = await blasAdvice({ enabled: false, reason: "off: no BLAS library found (x)", backends: [] });
  assert.match(line ?? "", /our wasm SIMD kernel on \d+ threads?: \d+ GFLOP\/s here \(measured now\)/);
  const threads = Number(line!.match(/on (\d+) thread/)![1]);
  assert.ok(threads >= 1 && threads <= 8, line!);
});
