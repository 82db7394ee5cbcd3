// The I-JEPA model: shapes and errors, gradients, the EMA target, determinism and leaks.
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../_assert.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { type ModelConfig, modelConfig } from "../../lib/model/config.ts";
import { IJEPA, meanFeatureStd } from "../../lib/model/ijepa.ts";
import { AdamW } from "../../lib/train/adamw.ts";
import type { CollatedMasks } from "../../lib/masks/batch.ts";
import { Rng } from "../../lib/engine/rng.ts";

/** Simple hand-made masks on a 4x4 grid (tiny preset): context of 6, two target blocks of 2. */
function tinyMasks(B: number, valid = false): CollatedMasks {
  const ctx = [0, 1, 2, 4, 5, 6];
  const contextIdx = new Int32Array(B * 6);
  for (let b = 0; b < B; b++) contextIdx.set(ctx.map((i) => (i + b) % 16), b * 6);
  const blocks = [[10, 11], [14, 15]];
  const targetIdx = new Int32Array(2 * B * 2);
  for (let m = 0; m < 2; m++) for (let b = 0; b < B; b++) targetIdx.set(blocks[m], (m * B + b) * 2);
  let contextValid: Uint8Array | null = null;
  if (valid) {
    contextValid = new Uint8Array(B * 6).fill(1);
    contextValid[5] = 0; // example 0's last slot is padding
  }
  return { batchSize: B, contextIdx, contextLen: 6, contextValid, nTargets: 2, targetLen: 2, targetIdx };
}

function images(B: number, seed = 1, size = 16, c = 1): tf.Tensor4D {
  const rng = new Rng(seed);
  const v = new Float32Array(B * size * size * c).map(() => rng.normal());
  return tf.tensor4d(v, [B, size, size, c]);
}

Deno.test("config: bad shapes and unknown options are clear errors", () => {
  assertThrows(
    () => modelConfig("tiny", { patchSize: 5 }),
    Error,
    "patch size 5 does not divide the image size 16",
  );
  assertThrows(() => modelConfig("tiny", { heads: 3 }), Error, "3 heads do not divide the width 32");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => modelConfig("tiny", { widht: 8 } as any), Error, 'unknown option "widht"');
  assertThrows(() => modelConfig("huge"), Error, 'unknown preset "huge"');
  assertThrows(() => new IJEPA("tiny", { sede: 1 } as never), Error, 'unknown option "sede"');
});

Deno.test("model: wrong images and out-of-range masks name what was expected", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const model = new IJEPA("tiny", { seed: 0 });
  try {
    const wrong = tf.zeros([2, 16, 16, 3]) as tf.Tensor4D;
    assertThrows(
      () => model.loss(wrong, tinyMasks(2)),
      Error,
      "expected images of shape [B, 16, 16, 1] (NHWC), got [2, 16, 16, 3]",
    );
    const m = tinyMasks(2);
    m.targetIdx[3] = 16;
    const x = images(2);
    assertThrows(() => model.loss(x, m), RangeError, "targetIdx[3] = 16 is outside the 16 patches");
    assertThrows(() => model.loss(x, tinyMasks(3)), Error, "masks are for a batch of 3, images are 2");
    tf.dispose([wrong, x]);
  } finally {
    model.dispose();
  }
});

Deno.test("model: shapes of encoder, predictor and targets", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const model = new IJEPA("tiny", { seed: 0 });
  const x = images(3);
  const m = tinyMasks(3);
  const pred = model.predict(x, m);
  const tgt = model.targets(x, m);
  assertEquals(pred.shape, [2 * 3, 2, 32]);
  assertEquals(tgt.shape, [2 * 3, 2, 32]);
  // targets are layer-normalised per token: mean 0, variance 1 over features
  const { mean, variance } = tf.moments(tgt, -1);
  assert(mean.abs().max().dataSync()[0] < 1e-5);
  assert(variance.sub(1).abs().max().dataSync()[0] < 1e-3);
  tf.dispose([x, pred, tgt, mean, variance]);
  model.dispose();
});

Deno.test("model: the target encoder gets no gradient and EMA is m*t + (1-m)*c", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const model = new IJEPA("tiny", { seed: 0 });
  const x = images(2);
  const { loss, grads } = model.lossAndGrads(x, tinyMasks(2));
  const targetNames = new Set([...model.targetEncoder.params.vars.values()].map((v) => v.name));
  for (const name of Object.keys(grads)) {
    assert(!targetNames.has(name), `target variable ${name} got a gradient`);
  }
  assertEquals(Object.keys(grads).length, model.trainableVariables().length);
  // the target encoder's variables are not trainable, so no optimizer can touch them
  for (const v of model.targetEncoder.params.vars.values()) assertEquals(v.trainable, false);
  tf.dispose([loss, x]);
  tf.dispose(Object.values(grads));

  // move the context encoder, then check the EMA formula on every parameter
  tf.tidy(() => {
    for (const v of model.encoder.params.vars.values()) {
      v.assign(v.add(tf.randomNormal(v.shape, 0, 0.1, "float32", 3)));
    }
  });
  const before = new Map([...model.targetEncoder.params.vars].map(([n, v]) => [n, v.dataSync().slice()]));
  const ctx = new Map([...model.encoder.params.vars].map(([n, v]) => [n, v.dataSync().slice()]));
  model.updateTarget(0.9);
  for (const [n, v] of model.targetEncoder.params.vars) {
    const got = v.dataSync();
    const t = before.get(n)!, c = ctx.get(n)!;
    for (let i = 0; i < got.length; i++) {
      const want = Math.fround(Math.fround(t[i] * 0.9) + Math.fround(c[i] * Math.fround(1 - 0.9)));
      assertAlmostEquals(got[i], want, 1e-7);
    }
  }
  assertThrows(() => model.updateTarget(1.5), RangeError, "momentum must be in [0, 1]");
  model.dispose();
});

/** Directional derivative check: (f(p + e v) - f(p - e v)) / 2e against <grad, v>. */
async function directionalCheck(model: IJEPA, x: tf.Tensor4D, m: CollatedMasks, seed: number) {
  const vars = model.trainableVariables();
  const rng = new Rng(seed);
  const dirs = vars.map((v) => new Float32Array(v.size).map(() => rng.normal()));
  const { loss, grads } = model.lossAndGrads(x, m);
  loss.dispose();
  let analytic = 0;
  vars.forEach((v, i) => {
    const g = grads[v.name].dataSync();
    for (let j = 0; j < g.length; j++) analytic += g[j] * dirs[i][j];
  });
  tf.dispose(Object.values(grads));
  const orig = vars.map((v) => v.dataSync().slice());
  const at = (e: number) => {
    vars.forEach((v, i) => v.assign(tf.tensor(orig[i].map((o, j) => o + e * dirs[i][j]), v.shape)));
    const l = model.loss(x, m);
    const val = l.dataSync()[0];
    l.dispose();
    return val;
  };
  const e = 1e-3;
  const numeric = (at(e) - at(-e)) / (2 * e);
  vars.forEach((v, i) => v.assign(tf.tensor(orig[i], v.shape)));
  await Promise.resolve();
  return { analytic, numeric };
}

for (const loss of ["smooth_l1", "l2"] as const) {
  for (const targetMode of ["representation", "pixel"] as const) {
    Deno.test(`model: loss gradient matches finite differences (${loss}, ${targetMode} targets)`, async () => {
      await setBackend("cpu", { quiet: true, blas: false });
      const model = new IJEPA("tiny", { seed: 2, overrides: { loss, targetMode } });
      const x = images(2, 5);
      const { analytic, numeric } = await directionalCheck(model, x, tinyMasks(2, true), 9);
      const rel = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), 1e-6);
      assert(Math.abs(analytic) > 1e-4, `gradient too small to check: ${analytic}`);
      assert(rel < 2e-2, `analytic ${analytic} vs numeric ${numeric} (relative error ${rel})`);
      x.dispose();
      model.dispose();
    });
  }
}

Deno.test("model: padded context slots do not change the loss", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const model = new IJEPA("tiny", { seed: 0 });
  const x = images(2);
  const a = tinyMasks(2, true);
  const b = tinyMasks(2, true);
  b.contextIdx[5] = 13; // example 0's padded slot points at another patch
  const la = model.loss(x, a).dataSync()[0];
  const lb = model.loss(x, b).dataSync()[0];
  assertAlmostEquals(la, lb, 1e-6);
  // ...while the same change in a real slot does change it
  const c = tinyMasks(2, true);
  c.contextIdx[4] = 13;
  assert(Math.abs(model.loss(x, c).dataSync()[0] - la) > 1e-6);
  x.dispose();
  model.dispose();
});

Deno.test("model: the same seed gives the same weights and loss on cpu and wasm", async () => {
  const results: { w: tf.TypedArray; loss: number }[] = [];
  for (const name of ["cpu", "wasm"]) {
    await setBackend(name, { quiet: true, blas: false });
    const model = new IJEPA("tiny", { seed: 7 });
    const x = images(2, 3);
    const loss = model.loss(x, tinyMasks(2)).dataSync()[0];
    results.push({ w: model.encoder.params.get("blocks.1.mlp.fc1.weight").dataSync().slice(), loss });
    x.dispose();
    model.dispose();
  }
  assertEquals(results[0].w, results[1].w); // weights are drawn in JS: bit-identical
  // tolerance: float32 sums in a different order on wasm (measured differences ~1e-7)
  assertAlmostEquals(results[0].loss, results[1].loss, 1e-5);
});

Deno.test("model: targets from the target blocks' rows only equal the whole encoding's, on cpu and wasm", async () => {
  for (const [name, blas] of [["cpu", false], ["wasm", false], ["wasm", true]] as const) {
    await setBackend(name, { quiet: true, blas });
    const model = new IJEPA("tiny", { seed: 3 });
    const B = 2, x = images(B, 5);
    // blocks that differ between examples and overlap within one (rows shared by two blocks)
    const targetIdx = Int32Array.from([10, 11, 3, 7, /* block 1: */ 11, 15, 7, 8]);
    const masks = { ...tinyMasks(B), targetIdx };
    const got = model.targets(x, masks);
    const { numPatches: N, width: D } = model.cfg;
    const want = tf.tidy(() => { // the whole encoding, normalised by hand, gathered per block
      const h = model.targetEncoder.forward(x).reshape([B * N, D]);
      const mean = h.mean(1, true), v = h.sub(mean).square().mean(1, true);
      const norm = h.sub(mean).div(v.add(1e-5).sqrt());
      const flat = Int32Array.from([0, 1, 2, 3].flatMap((r) => {
        const b = r % B;
        return [targetIdx[2 * r] + b * N, targetIdx[2 * r + 1] + b * N];
      }));
      return tf.gather(norm, tf.tensor1d(flat, "int32")).reshape([4, 2, D]);
    });
    assertEquals(got.shape, [4, 2, D]);
    const g = got.dataSync(), w = want.dataSync();
    let worst = 0;
    for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - w[i]));
    assert(
      worst < 1e-4,
      `${name}${blas ? "+blas" : ""}: targets differ from the whole encoding's by ${worst}`,
    );
    // a step that measures the targets' std encodes every row: the same loss, to the bit on our own
    // kernels (each row of a product is summed alike whatever the other rows)
    const losses = [false, true].map((measureStd) => {
      const r = model.lossAndGrads(x, masks, { measureStd });
      const v = r.loss.dataSync()[0];
      tf.dispose([r.loss, r.targetStd, ...Object.values(r.grads)]);
      return v;
    });
    if (blas) assertAlmostEquals(losses[0], losses[1], 1e-6);
    else assertEquals(losses[0], losses[1], `${name}: loss with the target rows only against every row`);
    tf.dispose([x, got, want]);
    model.dispose();
  }
});

Deno.test("model: no tensor leaks across 20 training steps on wasm", async () => {
  await setBackend("wasm", { quiet: true });
  const model = new IJEPA("tiny", { seed: 0 });
  const opt = new AdamW(model.namedTrainable());
  const x = images(4);
  const m = tinyMasks(4);
  const counts: number[] = [];
  const losses: number[] = [];
  for (let s = 0; s < 20; s++) {
    const { loss, grads } = model.lossAndGrads(x, m);
    losses.push(loss.dataSync()[0]);
    loss.dispose();
    opt.step(grads, { lr: 1e-3, weightDecay: 0.04 });
    model.updateTarget(0.996);
    counts.push(tf.memory().numTensors);
  }
  assertEquals(new Set(counts.slice(1)).size, 1, `numTensors changed: ${counts}`);
  assert(losses[19] < losses[0], `loss did not fall on a fixed batch: ${losses[0]} -> ${losses[19]}`);
  const features = model.targetEncoder.forward(x);
  const std = await meanFeatureStd(features);
  features.dispose();
  assert(std > 0.05, `target features collapsed (mean std ${std})`);
  x.dispose();
  opt.dispose();
  model.dispose();
});

Deno.test("collapse terms: VICReg variance and covariance are zero when healthy, large when collapsed", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const { vicReg } = await import("../../lib/model/ijepa.ts");
  const rng = new Rng(4);
  const R = 4000, D = 8;
  const healthy = tf.tensor2d(new Float32Array(R * D).map(() => rng.normal() * 1.5), [R, D]);
  const collapsed = tf.tensor2d(new Float32Array(R * D).fill(0.3), [R, D]);
  const v = (x: tf.Tensor2D, vw: number, cw: number) => vicReg(x, vw, cw).dataSync()[0];
  assert(v(healthy, 1, 0) < 1e-6, "std above 1 costs nothing");
  assertAlmostEquals(v(collapsed, 1, 0), 1 - Math.sqrt(1e-4), 1e-5);
  assert(v(healthy, 0, 1) < 0.05, `independent features have little covariance: ${v(healthy, 0, 1)}`);
  // two identical columns: covariance 2.25 between them, counted twice, over D
  const dup = tf.tidy(() => {
    const c = healthy.slice([0, 0], [R, 1]);
    return tf.concat([c, c, healthy.slice([0, 2], [R, D - 2])], 1) as tf.Tensor2D;
  });
  assert(v(dup, 0, 1) > 2 * 2.0 / D, `duplicated features must cost: ${v(dup, 0, 1)}`);
  tf.dispose([healthy, collapsed, dup]);
});

for (
  const overrides of [
    { varianceWeight: 1, covarianceWeight: 0.04 },
    { sigregWeight: 0.05 },
    { sigregWeight: 0.05, sigregOn: "tokens" },
  ] as Partial<ModelConfig>[]
) {
  Deno.test(`model: the loss with collapse terms ${JSON.stringify(overrides)} has the right gradient`, async () => {
    await setBackend("cpu", { quiet: true, blas: false });
    const model = new IJEPA("tiny", { seed: 3, overrides });
    const x = images(2, 6);
    const { analytic, numeric } = await directionalCheck(model, x, tinyMasks(2), 11);
    const rel = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), 1e-6);
    assert(rel < 2e-2, `analytic ${analytic} vs numeric ${numeric}`);
    x.dispose();
    model.dispose();
  });
}

Deno.test("model: dyntanh targets are tanh(0.5 x) of the target encoder's features, layernorm ones are not", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const { patchify } = await import("../../lib/engine/ops.ts");
  const { DYNTANH_ALPHA } = await import("../../lib/model/ijepa.ts");
  const x = images(2, 8);
  const m = tinyMasks(2);
  const dyn = new IJEPA("tiny", { seed: 4, overrides: { targetNorm: "dyntanh" } });
  const ln = new IJEPA("tiny", { seed: 4 });
  const h = tf.tidy(() => dyn.targetEncoder.encodePatches(patchify(x, 4)).out.arraySync() as number[][][]);
  const got = dyn.targets(x, m), base = ln.targets(x, m);
  const t = got.arraySync() as number[][][], b = base.arraySync() as number[][][];
  let worst = 0, differs = 0;
  for (let r = 0; r < m.nTargets * m.batchSize; r++) {
    for (let j = 0; j < m.targetLen; j++) {
      const row = h[r % m.batchSize][m.targetIdx[r * m.targetLen + j]];
      row.forEach((v, d) => {
        worst = Math.max(worst, Math.abs(t[r][j][d] - Math.tanh(DYNTANH_ALPHA * v)));
        differs = Math.max(differs, Math.abs(b[r][j][d] - t[r][j][d]));
      });
    }
  }
  assert(worst < 1e-6, `dyntanh targets differ from tanh(0.5 h) by ${worst}`);
  assert(differs > 0.1, "the layernorm model's targets should differ");
  assertThrows(
    () => modelConfig("tiny", { targetNorm: "rms" as never }),
    Error,
    'targetNorm must be "layernorm" or "dyntanh"',
  );
  tf.dispose([x, got, base]);
  dyn.dispose();
  ln.dispose();
});
