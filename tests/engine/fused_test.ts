// The fused ops of lib/engine/fused_ops.ts, fused_block.ts and fused_update_all.ts: values and gradients
// against tfjs autodiff of the same maths on cpu, directional derivatives, erf accuracy, AdamW and EMA
// on every backend against lib/train/adamw.ts and the formula on cpu, and leaks. The kernels themselves (SIMD against the
// TypeScript loops, the SIMD module's safety checks) are tests/engine/fused_kernels_test.ts.
// Run with `deno test -A tests/engine/fused_test.ts`.
import * as tf from "@tensorflow/tfjs";
import { fusedAttentionActive } from "../../lib/engine/fused_attention.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { erfRef, randn, relErr } from "./_fused.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { AdamW } from "../../lib/train/adamw.ts";
import { BLOCK_PARAMS, fusedBlock } from "../../lib/engine/fused_block.ts";
import { releaseUnusedSaves } from "../../lib/engine/fused_save.ts";
import { fusedGelu, fusedLayerNorm, fusedLinear, fusedSmoothL1 } from "../../lib/engine/fused_ops.ts";
import { adamwUpdateAll, emaUpdateAll } from "../../lib/engine/fused_update_all.ts";
import { backendCases, caseName, onBackend, onCpu, type Outputs, type Scope } from "../_backends.ts";
import { registerFusedKernels } from "../../lib/engine/fused_kernels.ts";
import { setSimd } from "../../lib/engine/fused_simd.ts";
import { gelu, layerNorm, linear, smoothL1 } from "../../lib/engine/ops.ts";
import { ParamStore } from "../../lib/model/params.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { blockForward, initBlock, keyPaddingBias } from "../../lib/model/transformer.ts";

/** Value and gradients (of sum(y * r)) of f at the inputs, read back. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], seed: number) {
  return tf.tidy(() => {
    const y0 = f(...inputs);
    const r = tf.tensor(randn(y0.size, seed), y0.shape);
    const g = tf.grads((...xs: tf.Tensor[]) => f(...xs).mul(r).sum())(inputs);
    return { y: y0.dataSync().slice(), grads: g.map((t) => t.dataSync().slice()) };
  });
}

function compare(
  name: string,
  fused: (...xs: tf.Tensor[]) => tf.Tensor,
  ref: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  tol = 2e-5,
) {
  const a = valueAndGrads(fused, inputs, 99), b = valueAndGrads(ref, inputs, 99);
  const e = relErr(a.y, b.y);
  assert(e < tol, `${name}: value differs from autodiff by ${e}`);
  a.grads.forEach((g, i) => {
    const eg = relErr(g, b.grads[i]);
    assert(eg < tol, `${name}: gradient of input ${i} differs from autodiff by ${eg}`);
  });
}

Deno.test("fused ops: values and gradients match tfjs autodiff on cpu", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const x = tf.tensor2d(randn(7 * 6, 1, 2), [7, 6]);
  const x3 = tf.tensor3d(randn(2 * 3 * 6, 2), [2, 3, 6]);
  const g = tf.tensor1d(randn(6, 3, 0.5).map((v) => v + 1));
  const b = tf.tensor1d(randn(6, 4, 0.5));
  const w = tf.tensor2d(randn(6 * 5, 5, 0.3), [6, 5]);
  const wb = tf.tensor1d(randn(5, 6));
  // on cpu the ops of lib/engine/ops.ts are tfjs autodiff compositions (the fused path is wasm's)
  compare(
    "layerNorm affine",
    (t, gg, bb) => fusedLayerNorm(t, 1e-6, gg as tf.Tensor1D, bb as tf.Tensor1D),
    (t, gg, bb) => layerNorm(t, 1e-6, gg as tf.Tensor1D, bb as tf.Tensor1D),
    [x, g, b],
  );
  compare("layerNorm plain rank 3", (t) => fusedLayerNorm(t, 1e-5), (t) => layerNorm(t, 1e-5), [x3]);
  compare("gelu", (t) => fusedGelu(t), (t) => gelu(t), [x3]);
  compare("gelu + bias", (t, bb) => fusedGelu(t, bb as tf.Tensor1D), (t, bb) => gelu(t.add(bb)), [x, b]);
  compare(
    "linear",
    (t, ww, bb) => fusedLinear(t, ww as tf.Tensor2D, bb as tf.Tensor1D),
    (t, ww, bb) => linear(t, ww as tf.Tensor2D, bb as tf.Tensor1D),
    [x3, w, wb],
  );
  compare(
    "linear, no bias",
    (t, ww) => fusedLinear(t, ww as tf.Tensor2D),
    (t, ww) => linear(t, ww as tf.Tensor2D),
    [x, w],
  );
  compare("smoothL1", (t) => fusedSmoothL1(t), (t) => smoothL1(t), [x3]);
  // variables are read directly in the backward pass instead of being saved: the same gradients
  const [gv, bv, wv, wbv] = [g, b, w, wb].map((t) => tf.variable(t));
  compare(
    "layerNorm affine, variable weights",
    (t, gg, bb) => fusedLayerNorm(t, 1e-6, gg as tf.Tensor1D, bb as tf.Tensor1D),
    (t, gg, bb) => layerNorm(t, 1e-6, gg as tf.Tensor1D, bb as tf.Tensor1D),
    [x, gv, bv],
  );
  compare(
    "linear, variable weights",
    (t, ww, bb) => fusedLinear(t, ww as tf.Tensor2D, bb as tf.Tensor1D),
    (t, ww, bb) => linear(t, ww as tf.Tensor2D, bb as tf.Tensor1D),
    [x3, wv, wbv],
  );
  tf.dispose([gv, bv, wv, wbv]);
  assertThrows(() => fusedLayerNorm(x, 1e-6, g), Error, "expected gamma and beta both [6] or both absent");
  assertThrows(() => fusedLinear(x, wb.reshape([5, 1]) as tf.Tensor2D), Error, "input has 6 features");
  tf.dispose([x, x3, g, b, w, wb]);
});

/** A block's parameters (perturbed, so norms and biases matter) and shape with two padded keys. */
function blockSetup(B: number, T: number, D: number, H: number, F: number, seed: number) {
  const p = new ParamStore();
  initBlock(p, "b", D, F, 1, new Rng(seed));
  let i = 0;
  for (const v of p.vars.values()) v.assign(v.add(tf.tensor(randn(v.size, seed + 10 + i++, 0.2), v.shape)));
  const valid = new Uint8Array(B * T).fill(1);
  valid[T - 1] = 0;
  valid[2 * T - 2] = 0;
  const keyBias = keyPaddingBias(valid, B, T);
  return { p, keyBias, shape: { batch: B, tokens: T, heads: H, eps: 1e-6, keyBias } };
}

Deno.test("fused block: forward and every gradient match autodiff of the same block on cpu", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  // D = 12 with 3 heads (hd 4) and F = 10: odd sizes on purpose
  const { p, keyBias, shape } = blockSetup(3, 5, 12, 3, 10, 1);
  const x = tf.tensor2d(randn(15 * 12, 2), [15, 12]);
  const ws = BLOCK_PARAMS.map((n) => p.get(`b.${n}`));
  // variables are read directly in the backward pass; other weights are saved for it
  const plain = ws.map((v) => v.clone());
  for (const [label, weights] of [["block", ws], ["block, weights not variables", plain]] as const) {
    compare(
      label,
      (xx, ...w) => fusedBlock(xx as tf.Tensor2D, w, shape),
      (xx, ...w) => {
        const q = new ParamStore();
        BLOCK_PARAMS.forEach((n, i) => q.vars.set(`b.${n}`, w[i] as tf.Variable));
        return blockForward(q, "b", xx, { ...shape, fused: false });
      },
      [x, ...weights],
      5e-5,
    );
  }
  tf.dispose(plain);
  assertThrows(() => fusedBlock(x, ws.slice(1), shape), Error, "expected 12 weights");
  assertThrows(() => fusedBlock(x, ws, { ...shape, batch: 2 }), Error, "expected x [2 x 5, D]");
  tf.dispose([x, keyBias]);
  p.dispose();
});

Deno.test("fused block with keepLast: the whole block's last tokens, values and every gradient", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const B = 3, T = 5, D = 12, K = 2;
  const { p, keyBias: kb0, shape: s0 } = blockSetup(B, T, D, 3, 10, 7);
  kb0.dispose();
  // padded keys among the dropped tokens (sequence 0's first) and the kept ones (sequence 1's last)
  const valid = new Uint8Array(B * T).fill(1);
  valid[0] = 0;
  valid[2 * T - 1] = 0;
  const keyBias = keyPaddingBias(valid, B, T);
  const shape = { ...s0, keyBias };
  const x = tf.tensor2d(randn(B * T * D, 8), [B * T, D]);
  const ws = BLOCK_PARAMS.map((n) => p.get(`b.${n}`));
  const reference = (keep: boolean) => (xx: tf.Tensor, ...w: tf.Tensor[]) => {
    const q = new ParamStore();
    BLOCK_PARAMS.forEach((n, i) => q.vars.set(`b.${n}`, w[i] as tf.Variable));
    if (keep) return blockForward(q, "b", xx, { ...shape, fused: false, keepLast: K });
    const y = blockForward(q, "b", xx, { ...shape, fused: false }); // the whole block, then its last K tokens
    return y.reshape([B, T, D]).slice([0, T - K, 0], [B, K, D]).reshape([B * K, D]);
  };
  const kept = (xx: tf.Tensor, ...w: tf.Tensor[]) =>
    fusedBlock(xx as tf.Tensor2D, w, { ...shape, keepLast: K });
  assertEquals(kept(x, ...ws).shape, [B * K, D]);
  compare("fused keepLast against the whole block sliced", kept, reference(false), [x, ...ws], 5e-5);
  compare(
    "reference keepLast against the whole block sliced",
    reference(true),
    reference(false),
    [x, ...ws],
    5e-5,
  );
  for (const bad of [0, T + 1, 1.5]) {
    assertThrows(
      () => fusedBlock(x, ws, { ...shape, keepLast: bad }),
      Error,
      `expected keepLast an integer in [1, ${T}] (the tokens), got ${bad}`,
    );
  }
  tf.dispose([x, keyBias]);
  p.dispose();
});

Deno.test("fused block with keepRows: the whole block's rows, forward only; bad options are refused", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const B = 2, T = 5, D = 12;
  const { p, keyBias, shape } = blockSetup(B, T, D, 3, 10, 9);
  const x = tf.tensor2d(randn(B * T * D, 4), [B * T, D]);
  const ws = BLOCK_PARAMS.map((n) => p.get(`b.${n}`));
  const rows = Int32Array.from([9, 2, 3, 7]); // any order, across both sequences
  const whole = fusedBlock(x, ws, shape);
  const want = tf.gather(whole, tf.tensor1d(rows, "int32"));
  const got = fusedBlock(x, ws, { ...shape, keepRows: rows });
  assertEquals(got.shape, [4, D]);
  assert(relErr(got.dataSync(), want.dataSync()) < 1e-6, "fused keepRows against the whole block's rows");
  const q = new ParamStore();
  BLOCK_PARAMS.forEach((n, i) => q.vars.set(`b.${n}`, ws[i] as tf.Variable));
  const ref = blockForward(q, "b", x, { ...shape, fused: false, keepRows: rows });
  assert(relErr(ref.dataSync(), want.dataSync()) < 1e-6, "reference keepRows against the whole block's rows");
  assertThrows(
    () =>
      tf.grad((xx: tf.Tensor) => fusedBlock(xx as tf.Tensor2D, ws, { ...shape, keepRows: rows }).sum())(x),
    Error,
    "keepRows is for forward passes; it has no gradient",
  );
  assertThrows(
    () => fusedBlock(x, ws, { ...shape, keepRows: rows, keepLast: 2 }),
    Error,
    "keepRows and keepLast do not go together",
  );
  assertThrows(
    () => fusedBlock(x, ws, { ...shape, keepRows: Int32Array.from([10]) }),
    Error,
    "keepRows must be row indices in [0, 10)",
  );
  tf.dispose([x, keyBias, whole, want, got, ref]);
  p.dispose();
});

Deno.test("fused block: directional derivative agrees with the gradient", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const { p, keyBias, shape } = blockSetup(2, 4, 8, 2, 16, 3);
  const x = tf.tensor2d(randn(8 * 8, 4), [8, 8]);
  const ws = BLOCK_PARAMS.map((n) => p.get(`b.${n}`));
  const inputs = [x, ...ws];
  const r = tf.tensor2d(randn(64, 5), [8, 8]);
  const f = (...xs: tf.Tensor[]) => fusedBlock(xs[0] as tf.Tensor2D, xs.slice(1), shape).mul(r).sum();
  const dirs = inputs.map((t, i) => randn(t.size, 20 + i));
  const grads = tf.grads(f)(inputs);
  let analytic = 0;
  grads.forEach((g, i) => g.dataSync().forEach((v, j) => (analytic += v * dirs[i][j])));
  const at = (e: number) =>
    tf.tidy(() => f(...inputs.map((t, i) => t.add(tf.tensor(dirs[i], t.shape).mul(e)))).dataSync()[0]);
  const e = 1e-2;
  const numeric = (at(e) - at(-e)) / (2 * e);
  const rel = Math.abs(analytic - numeric) / Math.abs(analytic);
  assert(Math.abs(analytic) > 1e-2, `directional derivative too small to check: ${analytic}`);
  assert(rel < 2e-3, `analytic ${analytic} vs numeric ${numeric} (relative ${rel})`);
  tf.dispose([x, r, keyBias, ...grads]);
  p.dispose();
});

Deno.test("fused GELU is the exact-erf GELU to float32 precision, forward and backward", async () => {
  const xs = Float32Array.from({ length: 1201 }, (_, i) => -6 + i / 100); // [-6, 6]
  const want = Array.from(xs, (x) => 0.5 * x * (1 + erfRef(x / Math.SQRT2)));
  const wantGrad = Array.from(
    xs,
    (x) => 0.5 * (1 + erfRef(x / Math.SQRT2)) + x * Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI),
  );
  for (const [backend, simd] of [["cpu", false], ["wasm", true], ["wasm", false]] as const) {
    await setBackend(backend, { quiet: true, blas: false });
    registerFusedKernels();
    setSimd(simd);
    const [y, g] = tf.tidy(() => {
      const x = tf.tensor2d(xs, [1, xs.length]);
      return [fusedGelu(x).dataSync(), tf.grad((t: tf.Tensor) => fusedGelu(t).sum())(x).dataSync()];
    });
    setSimd(true);
    let e = 0, eg = 0;
    for (let i = 0; i < xs.length; i++) {
      e = Math.max(e, Math.abs(y[i] - want[i]) / Math.max(1, Math.abs(want[i])));
      eg = Math.max(eg, Math.abs(g[i] - wantGrad[i]));
    }
    const label = `${backend}${backend === "wasm" ? (simd ? " SIMD" : " TypeScript") : ""}`;
    assert(e < 1e-6, `${label}: GELU off by ${e}`);
    assert(eg < 1e-6, `${label}: GELU gradient off by ${eg}`);
  }
});

/** Three AdamW steps and one EMA of three parameters (one without decay) that share their inputs' memory. */
function updates(s: Scope, fused: boolean): Outputs {
  const shapes = [[7, 5], [5], [3, 4, 2]], flags = [1, 0, 1];
  const sizes = shapes.map((sh) => sh.reduce((a, b) => a * b, 1));
  const inits = shapes.map((sh, i) => s.input(randn(sizes[i], i + 1), sh));
  // tf.variable shares the tensor's memory: the in-place kernels must not write through to `inits`
  const ps = inits.map((t) => tf.variable(t));
  const opt = new AdamW(ps.map((p, i) => [`p${i}`, p]), { decay: (n) => flags[Number(n.slice(1))] === 1 });
  const ms = ps.map((_, i) => opt.m.get(`p${i}`)!), vs = ps.map((_, i) => opt.v.get(`p${i}`)!);
  for (let t = 1; t <= 3; t++) {
    const gs = shapes.map((sh, i) => s.input(randn(sizes[i], 10 * t + i), sh));
    const hp = { lr: 0.01, weightDecay: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: t };
    if (fused) adamwUpdateAll(ps, ms, vs, gs, flags, hp);
    else opt.step(Object.fromEntries(gs.map((g, i) => [`p${i}`, g.clone()])), hp);
  }
  const ts = ps.map((p) => tf.variable(p, false)); // shares p's memory too
  if (fused) emaUpdateAll(ts, ps.map((p) => tf.mul(p, 2)), 0.9);
  else ts.forEach((t, i) => t.assign(tf.add(tf.mul(t, 0.9), tf.mul(tf.mul(ps[i], 2), 0.1))));
  const out: Outputs = {};
  ps.forEach((p, i) => {
    out[`p${i}`] = p.clone();
    out[`m${i}`] = ms[i].clone();
    out[`v${i}`] = vs[i].clone();
    out[`t${i}`] = ts[i].clone();
    out[`init${i}`] = inits[i].clone();
  });
  tf.dispose([...ps, ...ts]);
  opt.dispose();
  return out;
}

const CASES = await backendCases();
for (const c of CASES) {
  for (const simd of c.cfg.name === "wasm" ? [true, false] : [true]) {
    const what = `adamwUpdateAll and emaUpdateAll${
      simd ? "" : " (TypeScript loops)"
    } match AdamW.step and the EMA on cpu`;
    Deno.test({ name: caseName(c, what), ignore: c.ignore }, async () => {
      // tidy: the temporaries of the unfused EMA and the doubled EMA sources
      const ref = await onCpu((s) => tf.tidy(() => updates(s, false)));
      setSimd(simd);
      try {
        const got = await onBackend(c.cfg, (s) => tf.tidy(() => updates(s, true)));
        for (const k of Object.keys(ref).filter((k) => !k.endsWith(".shape"))) {
          const e = relErr(got[k], ref[k]);
          assert(e < 2e-6, `${c.cfg.label} ${k}: differs from cpu AdamW.step/EMA by ${e}`);
        }
        for (let i = 0; i < 3; i++) {
          assertEquals(got[`init${i}`], ref[`init${i}`], "inputs were written through");
        }
      } finally {
        setSimd(true);
      }
    });
  }
}

/** A block keeping its last 3 of 7 tokens: output and the gradients of x and three weights. */
function keptBlock(s: Scope): Outputs {
  const B = 4, T = 7, D = 16, H = 2, F = 24;
  const p = new ParamStore();
  s.defer(p);
  initBlock(p, "b", D, F, 1, new Rng(11));
  const ws = BLOCK_PARAMS.map((n, i) =>
    s.input(randn(p.get(`b.${n}`).size, 30 + i, 0.3), p.get(`b.${n}`).shape)
  );
  const x = s.input(randn(B * T * D, 12), [B * T, D]);
  const shape = { batch: B, tokens: T, heads: H, eps: 1e-6, keepLast: 3 };
  const r = s.input(randn(B * 3 * D, 13), [B * 3, D]);
  const f = (...xs: tf.Tensor[]) => fusedBlock(xs[0] as tf.Tensor2D, xs.slice(1), shape);
  const [dx, ...dw] = tf.grads((...xs: tf.Tensor[]) => f(...xs).mul(r).sum())([x, ...ws]);
  // any rows, forward only (the target encoder's last block): rows of the whole block's output
  const rows = Int32Array.from([27, 0, 5, 13, 6]);
  const picked = fusedBlock(x as tf.Tensor2D, ws, {
    batch: B,
    tokens: T,
    heads: H,
    eps: 1e-6,
    keepRows: rows,
  });
  const out: Outputs = { y: f(x, ...ws), dx, dqkv: dw[2], dproj: dw[4], dfc1: dw[8], picked };
  tf.dispose(dw.filter((_, i) => ![2, 4, 8].includes(i)));
  return out;
}

for (const c of CASES) {
  Deno.test({
    name: caseName(c, "fused block with keepLast matches cpu, values and gradients"),
    ignore: c.ignore,
  }, async () => {
    const ref = await onCpu((s) => keptBlock(s));
    const got = await onBackend(c.cfg, (s) => keptBlock(s));
    assertEquals(got["y.shape"], Float32Array.from([12, 16]));
    assertEquals(got["picked.shape"], Float32Array.from([5, 16]));
    for (const k of ["y", "dx", "dqkv", "dproj", "dfc1", "picked"]) {
      const e = relErr(got[k], ref[k]);
      assert(e < 1e-4, `${c.cfg.label} ${k}: differs from cpu by ${e}`);
    }
  });
}

Deno.test("adamwUpdateAll and emaUpdateAll refuse mismatched lists with the sizes", async () => {
  await setBackend("cpu", { quiet: true });
  const p = tf.variable(tf.zeros([7, 5])), g = tf.zeros([3]);
  const hp = { lr: 0.01, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 };
  assertThrows(() => adamwUpdateAll([p], [p], [p], [g], [0], hp), Error, "its gradient float32 [3]");
  assertThrows(() => adamwUpdateAll([p], [p], [p], [g, g], [0], hp), Error, "1 parameters but 2 gradient");
  assertThrows(() => emaUpdateAll([p], [g], 0.9), Error, "expected float32 of the same size");
  tf.dispose([p, g]);
});

Deno.test("fused block on wasm: no leaked tensors across forward and backward", async () => {
  await setBackend("wasm", { quiet: true });
  const { p, keyBias, shape } = blockSetup(4, 6, 16, 2, 32, 5);
  const x = tf.tensor2d(randn(24 * 16, 6), [24, 16]);
  const vars = [...p.vars.values()];
  const counts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { value, grads } = tf.variableGrads(
      () => fusedBlock(x, BLOCK_PARAMS.map((n) => p.get(`b.${n}`)), shape).square().mean() as tf.Scalar,
      vars,
    );
    tf.dispose([value, ...Object.values(grads)]);
    counts.push(tf.memory().numTensors);
  }
  assertEquals(new Set(counts).size, 1, `numTensors changed: ${counts}`);
  // one clone a block (its input; the intermediates are kept, not cloned)
  const weights = BLOCK_PARAMS.map((n) => p.get(`b.${n}`));
  const dy = tf.onesLike(x);
  const prof = await tf.profile(() => {
    tf.dispose(tf.grads((...xs: tf.Tensor[]) => fusedBlock(xs[0] as tf.Tensor2D, weights, shape))([x], dy));
  });
  dy.dispose();
  assertEquals(prof.kernels.filter((k) => k.name === "Identity").length, 1, "Identity calls in a block step");
  // a block off the path from the variables to the loss: its backward never runs; what it kept is
  // released by the next call, and a forward pass without a tape keeps nothing
  const z = tf.variable(tf.scalar(2));
  const before = tf.memory().numTensors;
  const r = tf.variableGrads(() => z.square().add(fusedBlock(x, weights, shape).mean()) as tf.Scalar, [z]);
  tf.dispose([r.value, ...Object.values(r.grads)]);
  // 8 of the block's own, and the attention's: qkv and p fused, q, k, v and p in the head layout
  assertEquals(
    releaseUnusedSaves(),
    fusedAttentionActive() ? 10 : 12,
    "intermediates released after an unused tape",
  );
  assertEquals(tf.memory().numTensors, before);
  tf.tidy(() => {
    fusedBlock(x, weights, shape);
  });
  assertEquals(releaseUnusedSaves(), 0, "nothing kept without a tape");
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([x, keyBias, z]);
  p.dispose();
});
