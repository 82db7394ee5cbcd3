// The WebGPU fused kernels (lib/engine/fused_webgpu*.ts) against the cpu kernels (the TypeScript
// reference loops of lib/engine/fused_forward_kernels.ts and fused_grad_kernels.ts), through
// `runFused`, on the same inputs: tiny odd sizes (row kernels with several rows a workgroup, column
// tiles wider than the matrix), every optional-input variant, realistic sizes (R = 64 * 49 rows,
// D = 192, T = 49, H = 3: one row a workgroup, multi-chunk column sums), long rows (D = 1280) and a
// grid split over y (more than 65535 workgroups). Also: no tensor and no GPU buffer is left behind.
// Run with `deno test -A tests/engine/fused_webgpu_test.ts`. Without a WebGPU adapter the tests are
// reported as ignored (in CI they run and fail), as in tests/_backends.ts.
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "../_assert.ts";
import { erfRef, randn, relErr } from "./_fused.ts";
import { IN_CI, probeBackend } from "../_backends.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { type FusedKernelName, registerFusedKernels, runFused } from "../../lib/engine/fused_kernels.ts";
import { WEBGPU_KERNELS } from "../../lib/engine/fused_webgpu.ts";

/** One kernel call: inputs by name as [shape, seed] (see {@link inputValues}), attrs, tolerance. */
interface Case {
  name: FusedKernelName;
  /** What the case exercises, for the test name. */
  what: string;
  inputs: Record<string, [number[], number]>;
  attrs?: Record<string, number>;
  /** Max |webgpu - cpu| / max |cpu| per output (default {@link TOL}). */
  tol?: number;
}

/** Elementwise and row kernels: float32 with exp/erf/division rounding of lavapipe. */
const TOL = 1e-6;
/** Column sums: float32 trees against the cpu kernels' float64 sums. */
const SUM_TOL = 2e-6;

/** The tiny sizes of tests/engine/fused_kernels_test.ts (odd: partial workgroups, short rows). */
function smallCases(): Case[] {
  const R = 13, D = 6, F = 11, B = 3, T = 5, H = 2, hd = 3;
  const heads = { batch: B, tokens: T, heads: H, scale: 0.5 };
  const ln = { dy: [[R, D], 4], x: [[R, D], 1], stats: [[R, 2], 0] } as Record<string, [number[], number]>;
  return [
    { name: "IjLayerNorm", what: "gamma, beta", inputs: { x: [[R, D], 1], gamma: [[D], 2], beta: [[D], 3] } },
    { name: "IjLayerNorm", what: "no affine", inputs: { x: [[R, 8], 1] }, attrs: { eps: 1e-5 } },
    { name: "IjLayerNormGrad", what: "gamma, dres", inputs: { ...ln, gamma: [[D], 2], dres: [[R, D], 5] } },
    { name: "IjLayerNormGrad", what: "gamma", inputs: { ...ln, gamma: [[D], 2] } },
    { name: "IjLayerNormGrad", what: "dres", inputs: { ...ln, dres: [[R, D], 5] } },
    {
      name: "IjLayerNormGrad",
      what: "plain, D 8",
      inputs: { dy: [[R, 8], 4], x: [[R, 8], 1], stats: [[R, 2], 0] },
    },
    { name: "IjBiasGelu", what: "bias", inputs: { u: [[R, F], 6], bias: [[F], 7] } },
    { name: "IjBiasGelu", what: "no bias", inputs: { u: [[R, 8], 6] } },
    { name: "IjBiasGeluGrad", what: "bias", inputs: { dy: [[R, F], 8], u: [[R, F], 6], bias: [[F], 7] } },
    { name: "IjBiasGeluGrad", what: "no bias", inputs: { dy: [[R, 8], 8], u: [[R, 8], 6] } },
    {
      name: "IjBiasGeluGrad",
      what: "bias, y",
      inputs: { dy: [[R, F], 8], u: [[R, F], 6], bias: [[F], 7], y: [[R, F], -4] },
    },
    { name: "IjBiasGeluGrad", what: "y", inputs: { dy: [[R, F], 8], u: [[R, F], 6], y: [[R, F], -5] } },
    {
      name: "IjSplitHeads",
      what: "bias",
      inputs: { qkv: [[B * T, 3 * H * hd], 9], bias: [[3 * H * hd], 10] },
      attrs: heads,
    },
    { name: "IjSplitHeads", what: "no bias", inputs: { qkv: [[B * T, 3 * H * hd], 9] }, attrs: heads },
    {
      name: "IjMergeHeads",
      what: "small",
      inputs: { dq: [[B * H, T, hd], 11], dk: [[B * H, T, hd], 12], dv: [[B * H, T, hd], 13] },
      attrs: { heads: H, scale: 0.5 },
    },
    { name: "IjHeadsToRows", what: "small", inputs: { x: [[B * H, T, 4], 14] }, attrs: { heads: H } },
    { name: "IjRowsToHeads", what: "small", inputs: { x: [[B * T, H * 4], 15] }, attrs: heads },
    {
      name: "IjSoftmax",
      what: "key bias",
      inputs: { s: [[B * H, T, T], 16], keyBias: [[B, 1, T], -1] },
      attrs: { heads: H },
    },
    { name: "IjSoftmax", what: "no key bias", inputs: { s: [[B * H, T, 8], 16] }, attrs: { heads: H } },
    { name: "IjSoftmaxGrad", what: "small", inputs: { p: [[R, F], -2], dp: [[R, F], 17] } },
    { name: "IjResidual", what: "small", inputs: { x: [[R, D], 18], y: [[R, D], 19], bias: [[D], 20] } },
    { name: "IjBiasAdd", what: "small", inputs: { x: [[R, D], 18], bias: [[D], 20] } },
    { name: "IjColSum", what: "C 11", inputs: { x: [[R, F], 21] } },
    { name: "IjColSum", what: "C 8", inputs: { x: [[R, 8], 21] } },
    { name: "IjColSum", what: "1 row", inputs: { x: [[1, 5], 21] } },
    { name: "IjSmoothL1", what: "small", inputs: { d: [[R, F], 22] } },
    { name: "IjSmoothL1Grad", what: "small", inputs: { d: [[R, F], 22], dy: [[R, F], 23] } },
  ];
}

/** A ViT-Ti block on 64 images of 49 tokens; long rows; a grid split over y. */
function largeCases(): Case[] {
  const B = 64, T = 49, H = 3, hd = 64, D = H * hd, R = B * T, F = 4 * D;
  const heads = { batch: B, tokens: T, heads: H, scale: 0.125 };
  const ln = { dy: [[R, D], 4], x: [[R, D], 1], stats: [[R, 2], 0] } as Record<string, [number[], number]>;
  const big = 2396800; // rows of 7: 16,777,600 elements > 65535 workgroups of 256, so the grid splits over y
  return [
    {
      name: "IjLayerNorm",
      what: "R 3136, D 192",
      inputs: { x: [[R, D], 1], gamma: [[D], 2], beta: [[D], 3] },
    },
    {
      name: "IjLayerNorm",
      what: "D 1280",
      inputs: { x: [[300, 1280], 1], gamma: [[1280], 2], beta: [[1280], 3] },
    },
    {
      name: "IjLayerNormGrad",
      what: "R 3136, D 192",
      inputs: { ...ln, gamma: [[D], 2], dres: [[R, D], 5] },
      tol: SUM_TOL,
    },
    {
      name: "IjLayerNormGrad",
      what: "R 3000, D 1280",
      inputs: { dy: [[3000, 1280], 4], x: [[3000, 1280], 1], stats: [[3000, 2], 0], gamma: [[1280], 2] },
      tol: SUM_TOL,
    },
    {
      name: "IjLayerNormGrad",
      what: "R 9000, D 100: 8 rows a workgroup, 2 steps",
      inputs: { dy: [[9000, 100], 4], x: [[9000, 100], 1], stats: [[9000, 2], 0], dres: [[9000, 100], 5] },
      tol: SUM_TOL,
    },
    { name: "IjBiasGelu", what: "R 3136, F 768", inputs: { u: [[R, F], 6], bias: [[F], 7] } },
    {
      name: "IjBiasGeluGrad",
      what: "R 3136, F 768",
      inputs: { dy: [[R, F], 8], u: [[R, F], 6], bias: [[F], 7], y: [[R, F], -4] },
      tol: SUM_TOL,
    },
    {
      name: "IjSplitHeads",
      what: "B 64, T 49, H 3",
      inputs: { qkv: [[R, 3 * D], 9], bias: [[3 * D], 10] },
      attrs: heads,
    },
    {
      name: "IjMergeHeads",
      what: "B 64, T 49, H 3",
      inputs: { dq: [[B * H, T, hd], 11], dk: [[B * H, T, hd], 12], dv: [[B * H, T, hd], 13] },
      attrs: { heads: H, scale: 0.125 },
      tol: SUM_TOL,
    },
    {
      name: "IjHeadsToRows",
      what: "B 64, T 49, H 3",
      inputs: { x: [[B * H, T, hd], 14] },
      attrs: { heads: H },
    },
    { name: "IjRowsToHeads", what: "B 64, T 49, H 3", inputs: { x: [[R, D], 15] }, attrs: heads },
    {
      name: "IjSoftmax",
      what: "B 64, T 49, H 3",
      inputs: { s: [[B * H, T, T], 16], keyBias: [[B, 1, T], -1] },
      attrs: { heads: H },
    },
    { name: "IjSoftmax", what: "T 256", inputs: { s: [[6, 256, 256], 16] }, attrs: { heads: 3 } },
    {
      name: "IjSoftmaxGrad",
      what: "rows of 49",
      inputs: { p: [[B * H * T, T], -2], dp: [[B * H * T, T], 17] },
    },
    {
      name: "IjResidual",
      what: "R 3136, D 192",
      inputs: { x: [[R, D], 18], y: [[R, D], 19], bias: [[D], 20] },
    },
    { name: "IjColSum", what: "R 3136, C 192", inputs: { x: [[R, D], 21] }, tol: SUM_TOL },
    { name: "IjColSum", what: "R 70000, C 3", inputs: { x: [[70000, 3], 21] }, tol: SUM_TOL },
    { name: "IjBiasAdd", what: "grid split over y", inputs: { x: [[big, 7], 18], bias: [[7], 20] } },
  ];
}

/** LayerNorm stats [R, 2] (mean, 1 / sqrt(var + 1e-6)) of x [R, D]. */
function statsOf(x: Float32Array, D: number): Float32Array {
  const R = x.length / D, out = new Float32Array(2 * R);
  for (let r = 0; r < R; r++) {
    let s = 0, q = 0;
    for (let j = 0; j < D; j++) s += x[r * D + j];
    const mean = s / D;
    for (let j = 0; j < D; j++) q += (x[r * D + j] - mean) ** 2;
    out[2 * r] = mean;
    out[2 * r + 1] = 1 / Math.sqrt(q / D + 1e-6);
  }
  return out;
}

const gelu = (v: number) => 0.5 * v * (1 + erfRef(v / Math.SQRT2));

/**
 * Input values by seed, as in tests/engine/fused_kernels_test.ts; special seeds: 0 = LayerNorm stats
 * of the case's x, -1 = key padding (every 4th key -1e9), -2 = probabilities, -4 = gelu(u + bias)
 * of seeds 6 and 7, -5 = gelu(u) of seed 6.
 */
function inputValues(c: Case, shape: number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (seed === 0) {
    const [xs, s] = c.inputs.x;
    return statsOf(inputValues(c, xs, s), xs[1]);
  }
  if (seed === -1) return Float32Array.from({ length: n }, (_, i) => (i % 4 === 3 ? -1e9 : 0));
  if (seed === -2) return randn(n, 40).map((v) => Math.exp(v) / 10);
  if (seed === -4 || seed === -5) {
    const F = shape[1], u = randn(n, 6, 2), bias = seed === -4 ? randn(F, 7, 2) : new Float32Array(F);
    return u.map((x, i) => gelu(x + bias[i % F]));
  }
  return randn(n, seed, 2);
}

/** The case's outputs on the active backend, read with `await data()`; checks for leaks. */
async function run(c: Case, values: Record<string, Float32Array>): Promise<Float32Array[]> {
  const be = tf.backend() as unknown as { numDataIds(): number };
  const tensors = tf.memory().numTensors, data = be.numDataIds();
  const ins: Record<string, tf.Tensor> = {};
  for (const [k, [shape]] of Object.entries(c.inputs)) ins[k] = tf.tensor(values[k], shape, "float32");
  const r = runFused(c.name, ins, c.attrs ?? { eps: 1e-6 });
  const outs = Array.isArray(r) ? r : [r];
  const got = [];
  for (const t of outs) got.push(Float32Array.from(await t.data()));
  tf.dispose([...outs, ...Object.values(ins)]);
  assertEquals(tf.memory().numTensors, tensors, `${c.name} leaked tensors on ${tf.getBackend()}`);
  assertEquals(be.numDataIds(), data, `${c.name} left backend data (temporaries) on ${tf.getBackend()}`);
  return got;
}

let dispatches = 0;

/** Compute dispatches recorded so far (counted from the first call on, tfjs's and ours alike). */
function countDispatches(): number {
  const pass = GPUComputePassEncoder.prototype as { dispatchWorkgroups: (...a: never[]) => void };
  const f = pass.dispatchWorkgroups;
  if (!(f as { counted?: boolean }).counted) {
    const counted = function (this: GPUComputePassEncoder, ...a: never[]) {
      dispatches++;
      return f.apply(this, a);
    };
    pass.dispatchWorkgroups = Object.assign(counted, { counted: true });
  }
  return dispatches;
}

function registerWebGpu(): void {
  for (const [kernelName, kernelFunc] of Object.entries(WEBGPU_KERNELS)) {
    if (!tf.getKernel(kernelName, "webgpu")) {
      tf.registerKernel({ kernelName, backendName: "webgpu", kernelFunc });
    }
  }
}

const WEBGPU = { label: "webgpu", name: "webgpu" as const };
const unavailable = await probeBackend(WEBGPU);
const ignore = unavailable !== undefined && !IN_CI;
const why = ignore ? ` (ignored: ${unavailable})` : "";

/** Largest error seen per case, printed by the last test. */
const observed: string[] = [];

function check(c: Case): () => Promise<void> {
  return async () => {
    if (unavailable) throw new Error(`webgpu is unavailable${IN_CI ? " in CI" : ""}: ${unavailable}`);
    const values: Record<string, Float32Array> = {};
    for (const [k, [shape, seed]] of Object.entries(c.inputs)) values[k] = inputValues(c, shape, seed);
    await setBackend("cpu", { quiet: true, blas: false });
    registerFusedKernels();
    const ref = await run(c, values);
    await setBackend("webgpu", { quiet: true });
    registerFusedKernels();
    registerWebGpu();
    const before = countDispatches();
    const got = await run(c, values);
    const n = countDispatches() - before;
    assert(n >= 1 && n <= 2, `${c.name} (${c.what}): ${n} dispatches`);
    assertEquals(got.length, ref.length, "output count");
    const tol = c.tol ?? TOL;
    const errs = ref.map((r, j) => {
      const e = relErr(got[j], r);
      assert(!Number.isNaN(e), `${c.name} (${c.what}) output ${j}: NaN`);
      assert(
        e <= tol,
        `${c.name} (${c.what}) output ${j}: differs from cpu by ${e.toExponential(2)} > ${tol}`,
      );
      return e.toExponential(1);
    });
    observed.push(`${c.name} (${c.what}): ${errs.join(", ")}; ${n} dispatch${n > 1 ? "es" : ""}`);
    if (c.name === "IjSoftmax" && c.inputs.keyBias) { // masked keys get exactly zero probability
      const [, T, Tk] = c.inputs.s[0], H = c.attrs!.heads;
      got[0].forEach((p, i) => {
        const b = Math.floor(i / (T * Tk * H)), j = i % Tk;
        if ((b * Tk + j) % 4 === 3) assertEquals(p, 0, `masked key ${j} of example ${b}`);
      });
    }
  };
}

const opts = { ignore, sanitizeResources: false, sanitizeOps: false }; // the GPU device stays open
for (const c of [...smallCases(), ...largeCases()]) {
  Deno.test({ name: `webgpu fused ${c.name} (${c.what}) matches cpu${why}`, ...opts, fn: check(c) });
}

Deno.test({
  name: `webgpu fused: every kernel but IjAdamW, IjEma has a shader and a case${why}`,
  ...opts,
  fn: () => {
    const names = new Set([...smallCases(), ...largeCases()].map((c) => c.name as string));
    assertEquals(Object.keys(WEBGPU_KERNELS).sort(), [...names].sort());
    assertEquals(names.size, 15);
    if (observed.length) console.log(`relative errors against cpu:\n  ${observed.join("\n  ")}`);
  },
});
