// Tests of lib/eval/linear_probe.ts: the L-BFGS linear probe. Run: deno test -A tests/eval/linear_probe_test.ts
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { setBackend } from "../../lib/engine/backend.ts";
import { trainLinearProbe } from "../../lib/eval/linear_probe.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { IN_CI, probeBackend } from "../_backends.ts";
import { onCpu, separable } from "./_fixtures.ts";

Deno.test("probe: a linearly separable synthetic set is learned to ~100% on held-out data", async () => {
  await onCpu();
  const train = separable(300, 12, 4, 1);
  const test = separable(400, 12, 4, 1, 99); // the same class directions, fresh noise
  const probe = await trainLinearProbe(train.x, train.y, 12, 4);
  assert.ok(probe.converged, `L-BFGS should converge, ran ${probe.iterations} iterations`);
  const acc = probe.accuracy(test.x, test.y);
  assert.ok(acc >= 0.99, `expected >= 99% on a separable set, got ${(100 * acc).toFixed(1)}%`);
  const cm = probe.confusionMatrix(test.x, test.y);
  assert.equal(cm.length, 4);
  assert.equal(cm.flat().reduce((a, b) => a + b, 0), 400);
  const diag = cm.reduce((a, r, i) => a + r[i], 0);
  assert.equal(diag / 400, acc, "the confusion matrix's diagonal is the accuracy");
  assert.ok(probe.loss < 0.2, `final objective should be small, got ${probe.loss}`);
});

Deno.test("probe: a fixed linear rule with a margin is recovered on held-out points", async () => {
  await onCpu();
  // Labels from a fixed linear rule with a margin: the probe must find that rule.
  const rng = new Rng(7);
  const dim = 10, K = 3;
  const V = Array.from({ length: dim * K }, () => rng.normal());
  const make = (n: number) => {
    const x: number[] = [], y: number[] = [];
    while (y.length < n) {
      const p = Array.from({ length: dim }, () => rng.normal());
      const s = [0, 1, 2].map((k) => p.reduce((a, v, j) => a + v * V[j * K + k], 0));
      const sorted = [...s].sort((a, b) => b - a);
      if (sorted[0] - sorted[1] < 1) continue; // margin
      x.push(...p);
      y.push(s.indexOf(sorted[0]));
    }
    return { x: Float32Array.from(x), y: Int32Array.from(y) };
  };
  const tr = make(600), te = make(600);
  const probe = await trainLinearProbe(tr.x, tr.y, dim, K);
  const acc = probe.accuracy(te.x, te.y);
  assert.ok(acc >= 0.97, `expected >= 97% held-out accuracy, got ${(100 * acc).toFixed(1)}%`);
});

Deno.test("probe: the same inputs give the same probe (no randomness in the recipe)", async () => {
  await onCpu();
  const { x, y } = separable(120, 6, 3, 3);
  const a = await trainLinearProbe(x, y, 6, 3);
  const b = await trainLinearProbe(x, y, 6, 3);
  assert.deepEqual(Array.from(a.weights), Array.from(b.weights));
  assert.deepEqual(Array.from(a.bias), Array.from(b.bias));
  assert.equal(a.iterations, b.iterations);
  // Weaker regularisation (larger C) must fit the training set at least as tightly.
  const loose = await trainLinearProbe(x, y, 6, 3, { C: 100 });
  assert.ok(loose.loss <= a.loss + 1e-9, `C=100 objective ${loose.loss} should be <= C=1's ${a.loss}`);
});

const WASM_BLAS = await probeBackend({ label: "wasm+blas", name: "wasm", blas: true });
if (WASM_BLAS) console.warn(`wasm+blas probe test ignored: ${WASM_BLAS}`);

Deno.test({
  name: `probe: deterministic on wasm+blas too, and the same optimum as on cpu${
    WASM_BLAS ? ` (ignored: ${WASM_BLAS})` : ""
  }`,
  ignore: WASM_BLAS !== undefined && !IN_CI,
  fn: async () => {
    const { x, y } = separable(2000, 64, 10, 8);
    await onCpu();
    const ref = await trainLinearProbe(x, y, 64, 10);
    try {
      await setBackend("wasm", { quiet: true, blas: true });
      const a = await trainLinearProbe(x, y, 64, 10);
      const b = await trainLinearProbe(x, y, 64, 10);
      assert.deepEqual(Array.from(a.weights), Array.from(b.weights), "two fits on wasm+blas differ");
      assert.ok(a.converged && ref.converged);
      let worst = 0;
      for (let i = 0; i < a.weights.length; i++) {
        worst = Math.max(worst, Math.abs(a.weights[i] - ref.weights[i]));
      }
      assert.ok(worst < 5e-3, `wasm+blas and cpu optima differ by ${worst}`);
      assert.ok(Math.abs(a.loss - ref.loss) < 1e-6, `objective ${a.loss} vs ${ref.loss}`);
    } finally {
      await onCpu();
    }
  },
});

Deno.test("probe: no tensors leak from fitting", async () => {
  await onCpu();
  const { x, y } = separable(60, 5, 3, 4);
  await trainLinearProbe(x, y, 5, 3);
  const before = tf.memory().numTensors;
  await trainLinearProbe(x, y, 5, 3);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("probe: bad inputs are errors naming what was expected and what came", async () => {
  await onCpu();
  const { x, y } = separable(30, 4, 3, 5);
  await assert.rejects(
    () => trainLinearProbe(x.subarray(0, 100), y, 4, 3),
    /expected 30 x 4 = 120 feature values .* got 100/,
  );
  await assert.rejects(() => trainLinearProbe(x, y, 5, 3), /expected 30 x 5 = 150 feature values/);
  const bad = Int32Array.from(y);
  bad[7] = 3;
  await assert.rejects(
    () => trainLinearProbe(x, bad, 4, 3),
    /label 3 at index 7 is out of range: expected 0\.\.2/,
  );
  bad[7] = -1;
  await assert.rejects(() => trainLinearProbe(x, bad, 4, 3), /label -1 at index 7 is out of range/);
  await assert.rejects(() => trainLinearProbe(x, y, 4, 1), /at least 2 classes/);
  await assert.rejects(
    () => trainLinearProbe(x, y, 4, 3, { lr: 1 } as unknown as Record<string, number>),
    /unknown option "lr"/,
  );
  const probe = await trainLinearProbe(x, y, 4, 3);
  assert.throws(() => probe.predict(new Float32Array(10)), /expected rows of 4 features, got 10 values/);
  assert.throws(() => probe.accuracy(x, y.subarray(0, 10)), /expected 10 x 4 = 40 feature values/);
});
