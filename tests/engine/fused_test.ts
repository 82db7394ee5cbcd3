// The fused ops of lib/engine/fused.ts and the kernels of lib/engine/fused_kernels.ts: values and gradients against
// tfjs autodiff of the same maths on cpu, directional derivatives, the wasm SIMD module and the
// TypeScript loops against each other (odd sizes included, for the vector tails), erf accuracy,
// AdamW and EMA against lib/train/adamw.ts and the formula, leaks, and the SIMD module's safety checks.
// Run with `deno test -A tests/fused_test.ts`.
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../_assert.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { AdamW } from "../../lib/train/adamw.ts";
import {
  adamwUpdate,
  BLOCK_PARAMS,
  emaUpdate,
  fusedBlock,
  fusedGelu,
  fusedLayerNorm,
  fusedLinear,
  fusedSmoothL1,
} from "../../lib/engine/fused.ts";
import {
  type FusedKernelName,
  registerFusedKernels,
  runFused,
  setSimd,
  simdActive,
} from "../../lib/engine/fused_kernels.ts";
import { gelu, layerNorm, linear, smoothL1 } from "../../lib/engine/ops.ts";
import { ParamStore } from "../../lib/model/params.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { KERNELS_C_SHA256, KERNELS_WASM_BASE64 } from "../../lib/engine/simd/kernels_wasm.ts";
import { blockForward, initBlock, keyPaddingBias } from "../../lib/model/transformer.ts";

function randn(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

/** max |a - b| / max(max |b|, floor): a relative error that ignores tiny entries' own noise. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  assertEquals(a.length, b.length, "lengths differ");
  let d = 0, m = floor;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

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
  compare(
    "block",
    (xx, ...w) => fusedBlock(xx as tf.Tensor2D, w, shape),
    (xx, ...w) => {
      const q = new ParamStore();
      BLOCK_PARAMS.forEach((n, i) => q.vars.set(`b.${n}`, w[i] as tf.Variable));
      return blockForward(q, "b", xx, { ...shape, fused: false });
    },
    [x, ...ws],
    5e-5,
  );
  assertThrows(() => fusedBlock(x, ws.slice(1), shape), Error, "expected 12 weights");
  assertThrows(() => fusedBlock(x, ws, { ...shape, batch: 2 }), Error, "expected x [2 x 5, D]");
  tf.dispose([x, keyBias]);
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

/** Every kernel's inputs, at sizes whose rows are not multiples of 4 (SIMD tails). */
function kernelCases(): {
  name: FusedKernelName;
  inputs: Record<string, [number[], number]>;
  attrs: Record<string, number>;
}[] {
  const R = 13, D = 6, F = 11, B = 3, T = 5, H = 2, hd = 3;
  return [
    {
      name: "IjLayerNorm",
      inputs: { x: [[R, D], 1], gamma: [[D], 2], beta: [[D], 3] },
      attrs: { eps: 1e-6 },
    },
    { name: "IjLayerNorm", inputs: { x: [[R, 8], 1] }, attrs: { eps: 1e-5 } },
    {
      name: "IjLayerNormGrad",
      inputs: { dy: [[R, D], 4], x: [[R, D], 1], stats: [[R, 2], 0], gamma: [[D], 2], dres: [[R, D], 5] },
      attrs: {},
    },
    { name: "IjLayerNormGrad", inputs: { dy: [[R, 8], 4], x: [[R, 8], 1], stats: [[R, 2], 0] }, attrs: {} },
    { name: "IjBiasGelu", inputs: { u: [[R, F], 6], bias: [[F], 7] }, attrs: {} },
    { name: "IjBiasGelu", inputs: { u: [[R, 8], 6] }, attrs: {} },
    { name: "IjBiasGeluGrad", inputs: { dy: [[R, F], 8], u: [[R, F], 6], bias: [[F], 7] }, attrs: {} },
    { name: "IjBiasGeluGrad", inputs: { dy: [[R, 8], 8], u: [[R, 8], 6] }, attrs: {} },
    // y: the forward output gelu(u + bias) (seed -4), which gives Phi without another erf
    {
      name: "IjBiasGeluGrad",
      inputs: { dy: [[R, F], 8], u: [[R, F], 6], bias: [[F], 7], y: [[R, F], -4] },
      attrs: {},
    },
    {
      name: "IjSplitHeads",
      inputs: { qkv: [[B * T, 3 * H * hd], 9], bias: [[3 * H * hd], 10] },
      attrs: { batch: B, tokens: T, heads: H, scale: 0.5 },
    },
    {
      name: "IjMergeHeads",
      inputs: { dq: [[B * H, T, hd], 11], dk: [[B * H, T, hd], 12], dv: [[B * H, T, hd], 13] },
      attrs: { heads: H, scale: 0.5 },
    },
    { name: "IjHeadsToRows", inputs: { x: [[B * H, T, 4], 14] }, attrs: { heads: H } },
    { name: "IjRowsToHeads", inputs: { x: [[B * T, H * 4], 15] }, attrs: { batch: B, tokens: T, heads: H } },
    { name: "IjSoftmax", inputs: { s: [[B * H, T, T], 16], keyBias: [[B, 1, T], -1] }, attrs: { heads: H } },
    { name: "IjSoftmax", inputs: { s: [[B * H, T, 8], 16] }, attrs: { heads: H } },
    { name: "IjSoftmaxGrad", inputs: { p: [[R, F], -2], dp: [[R, F], 17] }, attrs: {} },
    { name: "IjResidual", inputs: { x: [[R, D], 18], y: [[R, D], 19], bias: [[D], 20] }, attrs: {} },
    { name: "IjBiasAdd", inputs: { x: [[R, D], 18], bias: [[D], 20] }, attrs: {} },
    { name: "IjColSum", inputs: { x: [[R, F], 21] }, attrs: {} },
    { name: "IjColSum", inputs: { x: [[R, 8], 21] }, attrs: {} },
    { name: "IjSmoothL1", inputs: { d: [[R, F], 22] }, attrs: {} },
    { name: "IjSmoothL1Grad", inputs: { d: [[R, F], 22], dy: [[R, F], 23] }, attrs: {} },
    {
      name: "IjAdamW",
      inputs: { p: [[R, F], 24], m: [[R, F], 25], v: [[R, F], -3], g: [[R, F], 26] },
      attrs: { lr: 0.01, decay: 0.04, beta1: 0.9, beta2: 0.999, eps: 1e-8, c1: 0.19, c2: 0.002 },
    },
    { name: "IjEma", inputs: { t: [[R, F], 27], c: [[R, F], 28] }, attrs: { momentum: 0.996 } },
  ];
}

/**
 * Input values by seed; some are special: 0 = LayerNorm stats, -1 = key padding, -2 = probabilities,
 * -3 = positive, -4 = the GELU of seeds 6 and 7.
 */
function inputValues(shape: number[], seed: number, stats?: Float32Array): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (seed === 0) return stats!;
  if (seed === -1) return Float32Array.from({ length: n }, (_, i) => (i % 4 === 3 ? -1e9 : 0));
  if (seed === -2) return randn(n, 40).map((v) => Math.exp(v) / 10);
  if (seed === -3) return randn(n, 41).map((v) => v * v);
  if (seed === -4) { // gelu(u + bias) for u and bias of seeds 6 and 7, as IjBiasGelu gives it
    const u = inputValues(shape, 6), bias = inputValues([shape[1]], 7);
    return u.map((x, i) => {
      const v = x + bias[i % shape[1]];
      return 0.5 * v * (1 + erfRef(v / Math.SQRT2));
    });
  }
  return randn(n, seed, 2);
}

async function runKernels(backend: "cpu" | "wasm", simd: boolean): Promise<Float32Array[][]> {
  await setBackend(backend, { quiet: true, blas: false });
  registerFusedKernels();
  setSimd(simd);
  try {
    if (backend === "wasm") assertEquals(simdActive(), simd, "SIMD module state");
    const out: Float32Array[][] = [];
    for (const c of kernelCases()) {
      const x = c.inputs.x ?? c.inputs.dy;
      const stats = x
        ? tf.tidy(() => {
          const xs = tf.tensor(inputValues(x[0], 1), x[0]);
          const { mean, variance } = tf.moments(xs, -1);
          return tf.stack([mean, variance.add(1e-6).rsqrt()], 1).dataSync() as Float32Array;
        })
        : undefined;
      const before = tf.memory().numTensors;
      const ins: Record<string, tf.Tensor> = {};
      for (const [k, [shape, seed]] of Object.entries(c.inputs)) {
        ins[k] = tf.tensor(inputValues(shape, seed, stats), shape);
      }
      const r = runFused(c.name, ins, c.attrs);
      const outs = Array.isArray(r) ? r : [r];
      out.push(outs.map((t) => t.dataSync().slice() as Float32Array));
      tf.dispose([...outs, ...Object.values(ins)]);
      assertEquals(tf.memory().numTensors, before, `${c.name} leaked tensors`);
    }
    return out;
  } finally {
    setSimd(true);
  }
}

Deno.test("fused kernels: wasm SIMD, wasm TypeScript and cpu agree, tails included", async () => {
  const cpu = await runKernels("cpu", false);
  const simd = await runKernels("wasm", true);
  const plain = await runKernels("wasm", false);
  const cases = kernelCases();
  cases.forEach((c, i) => {
    cpu[i].forEach((ref, j) => {
      const tol = c.name === "IjAdamW" ? 1e-5 : 2e-6;
      const es = relErr(simd[i][j], ref), ep = relErr(plain[i][j], ref);
      assert(es < tol, `${c.name} output ${j}: SIMD differs from cpu by ${es}`);
      assert(ep < 1e-7, `${c.name} output ${j}: wasm TypeScript differs from cpu by ${ep}`);
    });
  });
  // the masked keys (every 4th entry of keyBias [B, 1, T]) get exactly zero probability
  const k = cases.findIndex((c) => c.name === "IjSoftmax");
  const T = 5, H = 2;
  for (const out of [cpu[k][0], simd[k][0], plain[k][0]]) {
    for (let i = 0; i < out.length; i++) {
      const j = i % T, b = Math.floor(i / (T * T * H));
      if ((b * T + j) % 4 === 3) assertEquals(out[i], 0, `masked key ${j} of example ${b} got ${out[i]}`);
    }
  }
});

/** erf to 1e-15 by its Taylor series (|x| <= 3) or continued fraction, as a float64 reference. */
function erfRef(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 3) {
    let term = a, sum = a;
    for (let n = 1; n < 100; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = 0;
    for (let n = 60; n >= 1; n--) f = (n / 2) / (a + f);
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
  }
  return x < 0 ? -r : r;
}

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

Deno.test("adamwUpdate and emaUpdate match lib/train/adamw.ts and the EMA formula on wasm", async () => {
  await setBackend("wasm", { quiet: true, blas: false });
  const shape = [7, 5];
  const init = randn(35, 1);
  const a = tf.variable(tf.tensor(init, shape));
  const b = tf.variable(tf.tensor(init, shape));
  const opt = new AdamW([["w", a]]);
  const m = tf.variable(tf.zeros(shape)), v = tf.variable(tf.zeros(shape));
  for (let t = 1; t <= 3; t++) {
    const g = randn(35, 10 + t);
    opt.step({ w: tf.tensor(g, shape) }, { lr: 0.01, weightDecay: 0.05 });
    const gt = tf.tensor(g, shape);
    adamwUpdate(b, m, v, gt, { lr: 0.01, weightDecay: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: t });
    gt.dispose();
  }
  const e = relErr(b.dataSync(), a.dataSync());
  assert(e < 1e-6, `adamwUpdate drifted from AdamW.step by ${e}`);
  assertAlmostEquals(relErr(m.dataSync(), opt.m.get("w")!.dataSync()), 0, 1e-6);
  const c = tf.tensor(randn(35, 50), shape);
  const t0 = b.dataSync().slice(), c0 = c.dataSync();
  emaUpdate(b, c, 0.9);
  const got = b.dataSync();
  for (let i = 0; i < 35; i++) assertAlmostEquals(got[i], 0.9 * t0[i] + 0.1 * c0[i], 1e-6);
  assertThrows(() => emaUpdate(b, tf.zeros([3]), 0.9), Error, "does not match target [7,5]");
  tf.dispose([a, b, m, v, c]);
  opt.dispose();
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
  tf.dispose([x, keyBias]);
  p.dispose();
});

Deno.test("SIMD module: built from the kernels.c in the tree, imports only memory, no data", async () => {
  const src = await Deno.readFile(new URL("../../lib/engine/simd/kernels.c", import.meta.url));
  const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", src)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  assertEquals(
    hash,
    KERNELS_C_SHA256,
    "lib/engine/simd/kernels.c changed: rebuild with `deno run -A lib/engine/simd/build.ts`",
  );
  const bytes = Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0));
  const mod = new WebAssembly.Module(bytes);
  assertEquals(WebAssembly.Module.imports(mod), [{ module: "env", name: "memory", kind: "memory" }]);
  assert(WebAssembly.Module.exports(mod).some((e) => e.name === "ij_bias_gelu"), "ij_bias_gelu not exported");
  // Section ids: 11 (data) and 12 (data count) would write into tfjs's memory at instantiation.
  const ids: number[] = [];
  for (let i = 8; i < bytes.length;) {
    ids.push(bytes[i++]);
    let size = 0, shift = 0, b = 0;
    do {
      b = bytes[i++];
      size |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    i += size;
  }
  assert(!ids.includes(11) && !ids.includes(12), `data section present: sections ${ids}`);
});

Deno.test("SIMD kernels write only their outputs", async () => {
  await setBackend("wasm", { quiet: true, blas: false });
  registerFusedKernels();
  const canaries = Array.from({ length: 4 }, (_, i) => tf.tensor1d(randn(257, 60 + i)));
  const before = canaries.map((c) => c.dataSync().slice());
  const u = tf.tensor2d(randn(33 * 11, 7), [33, 11]), b = tf.tensor1d(randn(11, 8));
  tf.tidy(() => {
    runFused("IjBiasGeluGrad", { dy: u, u, bias: b });
    runFused("IjLayerNormGrad", { dy: u, x: u, stats: tf.ones([33, 2]), gamma: b, dres: u });
    runFused("IjColSum", { x: u });
  });
  canaries.forEach((c, i) => assertEquals(c.dataSync(), before[i], `canary ${i} changed`));
  tf.dispose([...canaries, u, b]);
});
