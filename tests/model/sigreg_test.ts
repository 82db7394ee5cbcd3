// SIGReg (lib/model/sigreg.ts): the statistic against a float64 reference written from its
// definition, what it rewards and punishes, its directions, its errors, the config field, and a tiny
// run with it that is killed and resumed to the same losses (its directions come from seed and step).
// Backend conformance and the numerical gradient are in tests/engine/ops_test.ts.
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../_assert.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { modelConfig } from "../../lib/model/config.ts";
import { IJEPA } from "../../lib/model/ijepa.ts";
import { sigReg, sigRegDirections, sigRegQuadrature, sigRegRng } from "../../lib/model/sigreg.ts";
import { loadFashionMnist } from "../../lib/data/load.ts";
import { CHECKPOINT_FILE, EMATrainer } from "../../lib/train/trainer.ts";

/**
 * The statistic from its definition, in float64: for each direction, N times the integral over
 * [-3, 3] of |mean_n exp(i t z_n) - exp(-t^2/2)|^2 exp(-t^2/2) dt, by a fine midpoint rule (not the
 * 17-knot trapezoid the code uses), averaged over directions.
 */
function reference(x: Float32Array, N: number, D: number, dirs: Float32Array, K: number): number {
  const steps = 6000, h = 6 / steps;
  let total = 0;
  for (let k = 0; k < K; k++) {
    const z = new Float64Array(N);
    for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) z[n] += x[n * D + d] * dirs[d * K + k];
    let integral = 0;
    for (let s = 0; s < steps; s++) {
      const t = -3 + (s + 0.5) * h;
      let re = 0, im = 0;
      for (let n = 0; n < N; n++) {
        re += Math.cos(t * z[n]);
        im += Math.sin(t * z[n]);
      }
      const g = Math.exp(-t * t / 2);
      integral += ((re / N - g) ** 2 + (im / N) ** 2) * g * h;
    }
    total += N * integral;
  }
  return total / K;
}

Deno.test("sigReg: matches the statistic's definition in float64", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const rng = new Rng(31);
  const N = 40, D = 6, K = 5;
  // a skewed, shifted, badly scaled sample: far from N(0, I), so the statistic is large
  const x = Float32Array.from({ length: N * D }, (_, i) => 0.4 + (i % D === 0 ? 2 : 0.5) * rng.normal() ** 2);
  const dirs = sigRegDirections(rng, D, K);
  const got = tf.tidy(() => sigReg(tf.tensor2d(x, [N, D]), tf.tensor2d(dirs, [D, K])).dataSync()[0]);
  const want = reference(x, N, D, dirs, K);
  assert(want > 1, `the test sample should be far from Gaussian: ${want}`);
  // the 17-knot trapezoid against a fine midpoint rule: within 2%
  assertAlmostEquals(got, want, 0.02 * want);
});

Deno.test("sigReg: small for N(0, I) tokens, large for shrunk, shifted or collapsed ones", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const rng = new Rng(5);
  const N = 2000, D = 16, K = 64;
  const g = Float32Array.from({ length: N * D }, () => rng.normal());
  const value = (v: Float32Array) =>
    tf.tidy(() =>
      sigReg(tf.tensor2d(v, [N, D]), tf.tensor2d(sigRegDirections(new Rng(9), D, K), [D, K])).dataSync()[0]
    );
  const gauss = value(g);
  // for a true N(0, I) sample the statistic's mean does not grow with N: it is the integral of
  // (1 - exp(-t^2)) exp(-t^2 / 2), sqrt(2 pi) - sqrt(2 pi / 3) = 1.06
  assert(Math.abs(gauss - 1.06) < 0.5, `Gaussian tokens: ${gauss}, expected about 1.06`);
  for (
    const [what, v] of [
      ["shrunk 0.5x", g.map((a) => a * 0.5)],
      ["shifted by 0.5", g.map((a) => a + 0.5)],
      ["collapsed to one vector", g.map((_, i) => g[i % D])],
    ] as const
  ) {
    const s = value(v as Float32Array);
    assert(s > 50 * gauss, `${what}: ${s} should be far above the Gaussian sample's ${gauss}`);
  }
});

Deno.test("sigReg: directions are unit columns, reproducible, and the quadrature integrates exp(-t^2/2)", () => {
  const d = sigRegDirections(new Rng(1), 7, 3);
  for (let k = 0; k < 3; k++) {
    let n = 0;
    for (let i = 0; i < 7; i++) n += d[i * 3 + k] ** 2;
    assertAlmostEquals(n, 1, 1e-6);
  }
  assertEquals([...sigRegDirections(new Rng(1), 7, 3)], [...d]);
  assert(sigRegDirections(new Rng(2), 7, 3).some((v, i) => v !== d[i]), "another seed, other directions");
  // a training step's directions: the same for the same seed and step, different across either
  const at = (seed: number, step: number) => sigRegDirections(sigRegRng(seed, step), 7, 3).join();
  assertEquals(at(0, 5), at(0, 5));
  const draws = new Set([at(0, 0), at(0, 1), at(0, 2), at(1, 0), at(1, 1), at(2, 0)]);
  assertEquals(draws.size, 6, "every (seed, step) pair draws its own directions");
  // the weights integrate exp(-t^2 / 2) (times w = exp(-t^2 / 2)) over [-3, 3]: sqrt(pi) erf(3)
  const { t, weight } = sigRegQuadrature();
  const integral = weight.reduce((s, w, j) => s + w * Math.exp(-t[j] * t[j] / 2), 0);
  assertAlmostEquals(integral, Math.sqrt(Math.PI) * 0.9999779095, 2e-3);
  assertThrows(() => sigRegDirections(new Rng(0), 0, 3), RangeError, "got dim 0, slices 3");
  assertThrows(() => sigRegQuadrature(1), RangeError, "expected knots >= 2");
});

Deno.test("sigReg: a direction matrix of the wrong width is refused with both shapes", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  tf.tidy(() => {
    assertThrows(
      () => sigReg(tf.zeros([4, 6]) as tf.Tensor2D, tf.zeros([5, 3]) as tf.Tensor2D),
      Error,
      "directions [5,3] must have 6 rows",
    );
  });
  assertThrows(
    () => modelConfig("tiny", { sigregWeight: -1 }),
    Error,
    "sigregWeight must be a finite number >= 0",
  );
  assertThrows(
    () => modelConfig("tiny", { varianceWeight: NaN }),
    Error,
    "varianceWeight must be a finite number",
  );
  assertThrows(
    () => modelConfig("tiny", { sigregOn: "pixels" as never }),
    Error,
    'sigregOn must be "images" or "tokens"',
  );
  assertEquals([modelConfig("quick").sigregWeight, modelConfig("quick").sigregOn], [0, "images"]);
});

Deno.test("sigReg: a tiny run with it is killed mid-way and resumes to the same losses", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const data =
    (await loadFashionMnist({ dir: new URL("../../data/fashion-mnist/", import.meta.url).pathname })).train;
  const root = await Deno.makeTempDir();
  const make = (out: string) =>
    new EMATrainer(new IJEPA("tiny", { seed: 2, overrides: { sigregWeight: 0.05 } }), {
      steps: 6,
      batchSize: 8,
      seed: 2,
      outDir: out,
      checkpointEvery: 3,
    });
  try {
    const full = make(`${root}/full`);
    const a = (await full.fit(data)).losses;
    full.dispose();
    full.model.dispose();
    const stop = new AbortController();
    const first = make(`${root}/cut`);
    await first.fit(data, { signal: stop.signal, onStep: (s) => void (s.step === 4 && stop.abort()) });
    first.dispose();
    first.model.dispose();
    const resumed = await EMATrainer.resume(`${root}/cut/${CHECKPOINT_FILE}`);
    assertEquals(resumed.step, 4);
    const b = (await resumed.fit(data)).losses;
    resumed.dispose();
    resumed.model.dispose();
    assertEquals(b, a.slice(4)); // bit-identical: the same directions at the same steps
    // and the term is in the loss: without it the same run's first loss differs
    const plain = new EMATrainer(new IJEPA("tiny", { seed: 2 }), { steps: 1, batchSize: 8, seed: 2 });
    const c = (await plain.fit(data)).losses;
    plain.dispose();
    plain.model.dispose();
    assert(c[0] < a[0], `SIGReg adds to the loss: ${a[0]} with it, ${c[0]} without`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
