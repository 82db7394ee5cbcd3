// Backend conformance for lib/engine/ops.ts and lib/model/transformer.ts: every op the model is built from, forward
// and gradient, on each backend we ship (tests/_backends.ts) against tfjs's stock `cpu` backend;
// plain-JS float64 references where the op has a closed form; numerical gradient checks on `cpu`;
// error messages; and a tensor-leak check around every op + gradient (inside onBackend).
// Run with `deno test -A tests/engine/ops_test.ts`.
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import {
  type BackendCase,
  backendCases,
  caseName,
  onBackend,
  onCpu,
  type Outputs,
  type Scope,
  type Values,
} from "../_backends.ts";
import { groupReasons, setBackend } from "../../lib/engine/backend.ts";
import {
  gatherRows,
  gelu,
  layerNorm,
  linear,
  patchify,
  smoothL1,
  takeRows,
  uniqueRows,
  unpatchify,
} from "../../lib/engine/ops.ts";
import { matMul } from "../../lib/engine/matmul.ts";
import {
  attention,
  blockForward,
  type BlockShape,
  initBlock,
  keyPaddingBias,
} from "../../lib/model/transformer.ts";
import { ParamStore } from "../../lib/model/params.ts";
import { sigReg, sigRegDirections } from "../../lib/model/sigreg.ts";
import { Rng } from "../../lib/engine/rng.ts";

// ---------------------------------------------------------------------------------------------
// Tolerances: max |got - cpu| over an output, divided by max |cpu| of that output (so a gradient
// of size 1e-3 is held to the same relative standard as an activation of size 1). Measured maxima
// on the 2-core node machine (OpenBLAS 0.3.21, lavapipe LLVM 15) are printed by the last test.
const TOL: Record<string, number> = {
  "wasm+blas": 1e-5, // float32 with a different summation order (OpenBLAS blocking)
  "wasm": 1e-5, // float32, explicit transposes; different exp/erf code than cpu
  "webgpu": 1e-4, // float32 shaders on lavapipe; its exp/erf and reductions differ more
};
/** gelu against the exact erf formula in float64: abs error per element <= this * max(1, |x|). */
const GELU_ABS_TOL = 1e-6;
/** Numerical gradient checks (cpu, float32): central difference with step EPS, relative tolerance. */
const EPS = 1e-3;
const NUM_RTOL = 2e-3;

const CASES: BackendCase[] = await backendCases();

/** Largest relative error seen per backend label and op, printed at the end. */
const observed = new Map<string, Map<string, number>>();
function note(label: string, op: string, err: number): void {
  if (!observed.has(label)) observed.set(label, new Map());
  const m = observed.get(label)!;
  m.set(op, Math.max(m.get(op) ?? 0, err));
}

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

/** Max |a - b| / max |b| with the index of the worst element. */
function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): { err: number; at: number } {
  let worst = 0, at = -1, scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    if (Number.isNaN(d)) return { err: Infinity, at: i };
    if (d > worst) {
      worst = d;
      at = i;
    }
  }
  return { err: scale > 0 ? worst / scale : worst, at };
}

/** Every output of `got` matches `ref` in shape and within `tol` (relative to max |ref|). */
function assertClose(what: string, label: string, got: Values, ref: Values, tol: number): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(ref).sort(), `${what}: outputs differ`);
  for (const k of Object.keys(ref)) {
    if (k.endsWith(".shape")) {
      assert.deepEqual([...got[k]], [...ref[k]], `${what} [${label}]: ${k} differs from cpu`);
      continue;
    }
    const { err, at } = relErr(got[k], ref[k]);
    note(label, what, err);
    assert.ok(
      err <= tol,
      `${what} [${label}]: ${k} differs from cpu by ${err.toExponential(2)} relative (tolerance ${tol}); ` +
        `worst element ${at}: got ${got[k][at]}, cpu ${ref[k][at]}`,
    );
  }
}

/**
 * One op under test: `run` builds it from fixed data on the active backend and returns its outputs
 * and gradients; `check` (optional) asserts backend-independent facts on every backend's values.
 */
interface OpCase {
  name: string;
  run: (s: Scope) => Outputs;
  check?: (v: Values, label: string) => void;
}

const refs = new Map<string, Promise<Values>>();
function reference(c: OpCase): Promise<Values> {
  if (!refs.has(c.name)) refs.set(c.name, onCpu(c.run));
  return refs.get(c.name)!;
}

/** Register `c` on cpu (its checks) and on every shipped backend (against cpu). */
function conformance(c: OpCase): void {
  Deno.test(`${c.name} [cpu reference]`, async () => {
    const ref = await reference(c);
    c.check?.(ref, "cpu");
  });
  for (const bc of CASES) {
    Deno.test({
      name: caseName(bc, c.name),
      ignore: bc.ignore,
      sanitizeResources: false, // the WebGPU device and the BLAS library stay open between tests
      sanitizeOps: false,
      fn: async () => {
        const ref = await reference(c);
        const got = await onBackend(bc.cfg, c.run);
        assertClose(c.name, bc.cfg.label, got, ref, TOL[bc.cfg.label]);
        c.check?.(got, bc.cfg.label);
      },
    });
  }
}

/** sum(f(...xs) * w) differentiated with tf.grads: the gradients of a random linear readout. */
function gradsOf(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], w: tf.Tensor): tf.Tensor[] {
  return tf.grads((...a: tf.Tensor[]) => f(...a).mul(w).sum())(xs);
}

// ---------------------------------------------------------------------------------------------
// Plain-JS references (float64)

function refMatMul(
  a: Float32Array,
  b: Float32Array,
  batch: [number, number],
  m: number,
  k: number,
  n: number,
  ta: boolean,
  tb: boolean,
): Float64Array {
  const out = new Float64Array(Math.max(...batch) * m * n);
  for (let bi = 0; bi < Math.max(...batch); bi++) {
    const ao = (batch[0] === 1 ? 0 : bi) * m * k, bo = (batch[1] === 1 ? 0 : bi) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) {
          s += (ta ? a[ao + q * m + i] : a[ao + i * k + q]) * (tb ? b[bo + j * k + q] : b[bo + q * n + j]);
        }
        out[(bi * m + i) * n + j] = s;
      }
    }
  }
  return out;
}

/**
 * erf in float64 from the series erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1*3*...*(2n+1)),
 * whose terms are all positive (no cancellation), so it is accurate to ~1e-15 for |x| <= 6.
 */
function erf64(x: number): number {
  const ax = Math.abs(x);
  let term = ax, sum = ax;
  for (let n = 1; n < 500 && term > sum * 1e-17; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
  }
  const r = Math.min(1, (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum);
  return x < 0 ? -r : r;
}
const gelu64 = (x: number) => 0.5 * x * (1 + erf64(x / Math.SQRT2));

/** Multi-head attention on qkv [B*T, 3D] in float64, with the official column layout (3, H, hd). */
function refAttention(
  qkv: Float32Array,
  B: number,
  T: number,
  D: number,
  H: number,
  bias?: Float32Array,
): Float64Array {
  const hd = D / H, scale = 1 / Math.sqrt(hd);
  const out = new Float64Array(B * T * D);
  const at = (b: number, t: number, part: number, h: number, j: number) =>
    qkv[(b * T + t) * 3 * D + part * D + h * hd + j];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const s = new Float64Array(T);
        for (let u = 0; u < T; u++) {
          for (let j = 0; j < hd; j++) s[u] += at(b, t, 0, h, j) * scale * at(b, u, 1, h, j);
          if (bias) s[u] += bias[b * T + u];
        }
        const mx = Math.max(...s);
        let z = 0;
        for (let u = 0; u < T; u++) z += s[u] = Math.exp(s[u] - mx);
        for (let j = 0; j < hd; j++) {
          let o = 0;
          for (let u = 0; u < T; u++) o += (s[u] / z) * at(b, u, 2, h, j);
          out[(b * T + t) * D + h * hd + j] = o;
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// matMul: 2-D and 3-D, all four transpose combinations, and a batch-1 side broadcast.

const M = 3, K = 5, N = 4;
for (const rank of [2, 3] as const) {
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const rng = new Rng(100 + rank * 10 + Number(ta) * 2 + Number(tb));
    const lead = rank === 3 ? [2] : [];
    const aShape = [...lead, ...(ta ? [K, M] : [M, K])];
    const bShape = [...lead, ...(tb ? [N, K] : [K, N])];
    const yShape = [...lead, M, N];
    const A = randn(rng, size(aShape)), B = randn(rng, size(bShape)), W = randn(rng, size(yShape));
    const mm = (a: tf.Tensor, b: tf.Tensor) => matMul(a as tf.Tensor3D, b as tf.Tensor3D, ta, tb);
    conformance({
      name: `matMul ${rank}-D transposeA=${ta} transposeB=${tb}`,
      run: (s) => {
        const a = s.input(A, aShape), b = s.input(B, bShape), w = s.input(W, yShape);
        const y = mm(a, b); // [.., M, N]
        const [ga, gb] = gradsOf(mm, [a, b], w);
        return { y, ga, gb };
      },
      check: (v) => {
        const bs = rank === 3 ? 2 : 1;
        const want = refMatMul(A, B, [bs, bs], M, K, N, ta, tb);
        assert.ok(relErr(v.y, want).err < 1e-5, `matMul forward vs float64: ${relErr(v.y, want).err}`);
      },
    });
  }
}

// Batch broadcast: ops.matMul's forward accepts a batch of 1 on either side on every backend.
for (const [ba, bb] of [[1, 2], [2, 1]] as const) {
  const rng = new Rng(140 + ba);
  const A = randn(rng, ba * M * K), B = randn(rng, bb * K * N);
  conformance({
    name: `matMul 3-D broadcast [${ba},${M},${K}] x [${bb},${K},${N}] (forward)`,
    run: (s) => ({ y: matMul(s.input(A, [ba, M, K]) as tf.Tensor3D, s.input(B, [bb, K, N]) as tf.Tensor3D) }),
    check: (v) => {
      assert.deepEqual([...v["y.shape"]], [2, M, N]);
      const want = refMatMul(A, B, [ba, bb], M, K, N, false, false);
      assert.ok(relErr(v.y, want).err < 1e-5, `broadcast forward vs float64: ${relErr(v.y, want).err}`);
    },
  });
}
// Its gradient works only on wasm without BLAS (ops.ts's custom gradient sums over the broadcast
// batch); elsewhere tfjs 4.22's BatchMatMul gradient keeps the batch of 2 and throws. No model code
// broadcasts today. Flip to true once lib/engine/ops.ts handles it (see the conformance report).
const BROADCAST_GRAD_FIXED = true;
Deno.test({
  name: "matMul 3-D broadcast gradient on every backend" +
    (BROADCAST_GRAD_FIXED ? "" : " (ignored: known gap in lib/engine/ops.ts matMul, reported to the lead)"),
  ignore: !BROADCAST_GRAD_FIXED,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const rng = new Rng(150);
    const A = randn(rng, M * K), B = randn(rng, 2 * K * N), W = randn(rng, 2 * M * N);
    const run = (s: Scope): Outputs => {
      const a = s.input(A, [1, M, K]), b = s.input(B, [2, K, N]);
      const mm = (x: tf.Tensor, y: tf.Tensor) => matMul(x as tf.Tensor3D, y as tf.Tensor3D);
      const [ga, gb] = gradsOf(mm, [a, b], s.input(W, [2, M, N]));
      return { ga, gb };
    };
    const ref = await onCpu(run);
    for (const bc of CASES.filter((c) => !c.ignore)) {
      assertClose(
        "matMul broadcast gradient",
        bc.cfg.label,
        await onBackend(bc.cfg, run),
        ref,
        TOL[bc.cfg.label],
      );
    }
  },
});

// ---------------------------------------------------------------------------------------------
// linear, gatherRows, takeRows

{
  const rng = new Rng(200);
  const X = randn(rng, 2 * 3 * 5), Wt = randn(rng, 5 * 4), Bi = randn(rng, 4), Wo = randn(rng, 2 * 3 * 4);
  for (const withBias of [true, false]) {
    conformance({
      name: `linear 3-D input${withBias ? " with bias" : " without bias"}`,
      run: (s): Outputs => {
        const x = s.input(X, [2, 3, 5]), w = s.input(Wt, [5, 4]), wo = s.input(Wo, [2, 3, 4]);
        if (!withBias) {
          const f = (x: tf.Tensor, w: tf.Tensor) => linear(x, w as tf.Tensor2D);
          const [gx, gw] = gradsOf(f, [x, w], wo);
          return { y: f(x, w), gx, gw }; // y: [2, 3, 4]
        }
        const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => linear(x, w as tf.Tensor2D, b as tf.Tensor1D);
        const b = s.input(Bi, [4]);
        const [gx, gw, gb] = gradsOf(f, [x, w, b], wo);
        return { y: f(x, w, b), gx, gw, gb }; // y: [2, 3, 4]
      },
      check: (v) => {
        assert.deepEqual([...v["y.shape"]], [2, 3, 4]);
        if (withBias) {
          // d/db sum(y * Wo) = Wo summed over the rows
          const want = [0, 1, 2, 3].map((j) => [0, 1, 2, 3, 4, 5].reduce((s, r) => s + Wo[r * 4 + j], 0));
          assert.ok(relErr(v.gb, want).err < 1e-5, `linear bias gradient: ${[...v.gb]} vs ${want}`);
        }
      },
    });
  }
}

{
  // Repeated indices in one row (example 0 takes row 1 twice, example 1 takes row 2 three times):
  // the gradient of x must add the upstream rows together.
  const B = 2, Nn = 5, D = 3, k = 4;
  const idx = new Int32Array([1, 1, 4, 0, 2, 2, 2, 3]);
  const rng = new Rng(300);
  const X = randn(rng, B * Nn * D), W = randn(rng, B * k * D);
  conformance({
    name: "gatherRows with repeated indices",
    run: (s) => {
      const x = s.input(X, [B, Nn, D]);
      const f = (x: tf.Tensor) => gatherRows(x as tf.Tensor3D, idx, k);
      const y = f(x); // [B, k, D]
      const [gx] = gradsOf(f, [x], s.input(W, [B, k, D]));
      return { y, gx };
    },
    check: (v) => {
      const y = new Float32Array(B * k * D), gx = new Float32Array(B * Nn * D);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < k; j++) {
          for (let d = 0; d < D; d++) {
            const src = (b * Nn + idx[b * k + j]) * D + d, dst = (b * k + j) * D + d;
            y[dst] = X[src];
            gx[src] += W[dst];
          }
        }
      }
      assert.deepEqual([...v.y], [...y], "gatherRows forward vs plain JS");
      assert.ok(relErr(v.gx, gx).err < 1e-6, `gatherRows gradient must accumulate repeats: ${[...v.gx]}`);
    },
  });
}

{
  const T = randn(new Rng(310), 6 * 3);
  const idx = new Int32Array([5, 0, 0, 2]);
  conformance({
    name: "takeRows",
    run: (s) => ({ y: takeRows(s.input(T, [6, 3]) as tf.Tensor2D, idx) }),
    check: (v) => {
      assert.deepEqual([...v["y.shape"]], [4, 3]);
      const want = [...idx].flatMap((i) => [...T.subarray(i * 3, i * 3 + 3)]);
      assert.deepEqual([...v.y], want, "takeRows vs plain JS");
    },
  });
}

// ---------------------------------------------------------------------------------------------
// patchify / unpatchify

{
  const B = 2, H = 8, Wd = 12, C = 3, p = 4, gh = H / p, gw = Wd / p, P = p * p * C;
  const rng = new Rng(400);
  const IMG = randn(rng, B * H * Wd * C), W = randn(rng, B * gh * gw * P), W2 = randn(rng, B * H * Wd * C);
  conformance({
    name: "patchify and unpatchify",
    run: (s) => {
      const img = s.input(IMG, [B, H, Wd, C]);
      const y = patchify(img as tf.Tensor4D, p); // [B, N, P]
      const back = unpatchify(y as tf.Tensor3D, p, gh, gw); // [B, H, W, C]
      const [gImg] = gradsOf((x) => patchify(x as tf.Tensor4D, p), [img], s.input(W, [B, gh * gw, P]));
      const [gPatch] = gradsOf(
        (x) => unpatchify(x as tf.Tensor3D, p, gh, gw),
        [y],
        s.input(W2, [B, H, Wd, C]),
      );
      return { y, back, gImg, gPatch };
    },
    check: (v) => {
      // Patch index row-major over the grid; inside a patch (row, column, channel).
      const from = new Int32Array(B * gh * gw * P); // patch element -> image element
      for (let b = 0; b < B; b++) {
        for (let gy = 0; gy < gh; gy++) {
          for (let gx = 0; gx < gw; gx++) {
            for (let r = 0; r < p; r++) {
              for (let c = 0; c < p; c++) {
                for (let ch = 0; ch < C; ch++) {
                  from[((b * gh * gw + gy * gw + gx) * p * p + r * p + c) * C + ch] =
                    ((b * H + gy * p + r) * Wd + gx * p + c) * C + ch;
                }
              }
            }
          }
        }
      }
      assert.deepEqual([...v["y.shape"]], [B, gh * gw, P]);
      assert.deepEqual([...v.y], [...from].map((i) => IMG[i]), "patchify ordering vs plain JS");
      assert.deepEqual([...v.back], [...IMG], "unpatchify(patchify(x)) must be x exactly");
      // Both are permutations, so each gradient is the upstream weight moved back.
      const gImg = new Float32Array(IMG.length), gPatch = new Float32Array(IMG.length);
      from.forEach((i, j) => {
        gImg[i] = W[j];
        gPatch[j] = W2[i];
      });
      assert.deepEqual([...v.gImg], [...gImg], "patchify gradient");
      assert.deepEqual([...v.gPatch], [...gPatch], "unpatchify gradient");
    },
  });
}

// ---------------------------------------------------------------------------------------------
// layerNorm, gelu, smoothL1, softmax

{
  const shape = [2, 3, 8];
  const rng = new Rng(500);
  const X = randn(rng, size(shape), 2).map((v, i) => v + (i % 8 === 0 ? 3 : 0)); // non-zero mean
  const G = randn(rng, 8).map((v) => 1 + 0.3 * v), Be = randn(rng, 8, 0.3), W = randn(rng, size(shape));
  for (const affine of [true, false]) {
    conformance({
      name: `layerNorm ${affine ? "with" : "without"} affine`,
      run: (s): Outputs => {
        const x = s.input(X, shape), w = s.input(W, shape);
        if (!affine) {
          const [gx] = gradsOf((x) => layerNorm(x, 1e-6), [x], w);
          return { y: layerNorm(x, 1e-6), gx };
        }
        const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          layerNorm(x, 1e-6, g as tf.Tensor1D, b as tf.Tensor1D);
        const g = s.input(G, [8]), b = s.input(Be, [8]);
        const [gx, gg, gb] = gradsOf(f, [x, g, b], w);
        return { y: f(x, g, b), gx, gg, gb };
      },
      check: (v) => {
        for (let r = 0; r < 6; r++) {
          const row = X.subarray(r * 8, r * 8 + 8);
          const mu = row.reduce((a, b) => a + b, 0) / 8;
          const sd = Math.sqrt(row.reduce((a, b) => a + (b - mu) ** 2, 0) / 8 + 1e-6);
          for (let j = 0; j < 8; j++) {
            const want = ((row[j] - mu) / sd) * (affine ? G[j] : 1) + (affine ? Be[j] : 0);
            assert.ok(Math.abs(v.y[r * 8 + j] - want) < 1e-5, `layerNorm row ${r} col ${j}`);
          }
        }
      },
    });
  }
}

// gelu inputs: a grid over [-6, 6] (step 0.1) plus 135 random points (std 1.5).
const GELU_X = Float32Array.from([
  ...Array.from({ length: 121 }, (_, i) => -6 + i * 0.1),
  ...randn(new Rng(600), 135, 1.5),
]);
{
  const W = randn(new Rng(601), GELU_X.length);
  conformance({
    name: "gelu",
    run: (s) => {
      const x = s.input(GELU_X, [GELU_X.length]);
      const y = gelu(x);
      const [gx] = gradsOf(gelu, [x], s.input(W, [GELU_X.length]));
      return { y, gx };
    },
    check: (v, label) => {
      let worst = 0;
      for (let i = 0; i < GELU_X.length; i++) {
        const x = GELU_X[i], err = Math.abs(v.y[i] - gelu64(x));
        worst = Math.max(worst, err / Math.max(1, Math.abs(x)));
        assert.ok(
          err <= GELU_ABS_TOL * Math.max(1, Math.abs(x)),
          `gelu(${x}) [${label}] = ${v.y[i]}, exact ${gelu64(x)}: error ${err.toExponential(2)}`,
        );
      }
      note(label, "gelu vs float64 erf (abs / max(1,|x|))", worst);
      // The exact derivative Phi(x) + x phi(x), in float64.
      let gworst = 0;
      for (let i = 0; i < GELU_X.length; i++) {
        const x = GELU_X[i];
        const d = 0.5 * (1 + erf64(x / Math.SQRT2)) + (x * Math.exp(-x * x / 2)) / Math.sqrt(2 * Math.PI);
        gworst = Math.max(gworst, Math.abs(v.gx[i] / W[i] - d));
      }
      note(label, "gelu' vs float64 (abs)", gworst);
      assert.ok(gworst < 1e-5, `gelu derivative vs float64: ${gworst}`);
    },
  });
}

{
  // Both sides of |d| = 1, and exactly +-1 (forward only: the gradient there is either side's).
  const D = Float32Array.from([-3, -1.5, -1.001, -0.999, -0.5, -0.01, 0.01, 0.3, 0.999, 1.001, 2, 4.5]);
  const EDGE = Float32Array.from([-1, 1, 0]);
  const W = randn(new Rng(700), D.length);
  conformance({
    name: "smoothL1",
    run: (s) => {
      const d = s.input(D, [D.length]);
      const [gd] = gradsOf(smoothL1, [d], s.input(W, [D.length]));
      return { y: smoothL1(d), gd, edge: smoothL1(s.input(EDGE, [3])) };
    },
    check: (v) => {
      for (let i = 0; i < D.length; i++) {
        const a = Math.abs(D[i]);
        const want = a < 1 ? 0.5 * a * a : a - 0.5, dwant = a < 1 ? D[i] : Math.sign(D[i]);
        assert.ok(Math.abs(v.y[i] - want) < 1e-6, `smoothL1(${D[i]}) = ${v.y[i]}, want ${want}`);
        assert.ok(
          Math.abs(v.gd[i] / W[i] - dwant) < 1e-5,
          `smoothL1'(${D[i]}) = ${v.gd[i] / W[i]}, want ${dwant}`,
        );
      }
      assert.deepEqual([...v.edge], [0.5, 0.5, 0], "smoothL1 at -1, 1, 0");
    },
  });
}

{
  // tanh, the "dyntanh" target normalisation (lib/model/ijepa.ts): forward only, targets take no gradient
  const X = randn(new Rng(760), 96, 3);
  conformance({
    name: "tanh (dyntanh targets)",
    run: (s) => {
      const x = s.input(X, [8, 12]);
      return { y: tf.tidy(() => tf.tanh(x.mul(0.5))) };
    },
    check: (v) => {
      for (let i = 0; i < X.length; i++) {
        assert.ok(Math.abs(v.y[i] - Math.tanh(0.5 * X[i])) < 1e-6, `tanh(0.5 * ${X[i]}) = ${v.y[i]}`);
      }
    },
  });
}

{
  // SIGReg (lib/model/sigreg.ts): matMul, cos, sin and means, forward and gradient
  const rng = new Rng(750);
  const N = 24, D = 6, K = 5;
  const X = randn(rng, N * D, 1.3), A = sigRegDirections(rng, D, K);
  conformance({
    name: "sigReg",
    run: (s) => {
      const x = s.input(X, [N, D]);
      const a = s.input(A, [D, K]) as tf.Tensor2D;
      const f = (t: tf.Tensor) => sigReg(t as tf.Tensor2D, a);
      const [gx] = tf.grads((t: tf.Tensor) => f(t))([x]);
      return { y: f(x), gx };
    },
    check: (v) => assert.ok(v.y[0] > 0 && Number.isFinite(v.y[0]), `sigReg = ${v.y[0]}`),
  });
}

{
  const shape = [2, 3, 7];
  const rng = new Rng(800);
  const X = randn(rng, size(shape), 3), W = randn(rng, size(shape));
  conformance({
    name: "softmax (last axis)",
    run: (s) => {
      const x = s.input(X, shape);
      const [gx] = gradsOf((x) => tf.softmax(x), [x], s.input(W, shape));
      return { y: tf.softmax(x), gx };
    },
    check: (v) => {
      for (let r = 0; r < 6; r++) {
        const sum = v.y.subarray(r * 7, r * 7 + 7).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) < 1e-5, `softmax row ${r} sums to ${sum}`);
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// attention, blockForward, keyPaddingBias

const AB = 2, AT = 5, AD = 8, AH = 2, HID = 16;
/** Example 0 has 3 real tokens, example 1 has 4; the rest is padding. */
const VALID = Uint8Array.from([1, 1, 1, 0, 0, 1, 1, 1, 1, 0]);
/** The same values with the padded tokens' rows replaced by other numbers. */
function repad(x: Float32Array, width: number, seed: number): Float32Array {
  const r = new Rng(seed), y = x.slice();
  for (let t = 0; t < VALID.length; t++) {
    if (!VALID[t]) { for (let j = 0; j < width; j++) y[t * width + j] = 5 * r.normal(); }
  }
  return y;
}
/** Assert rows of real tokens agree between a and b (padding must not leak into them). */
function assertRealRowsEqual(a: Float32Array, b: Float32Array, width: number, what: string): void {
  let worst = 0;
  for (let t = 0; t < VALID.length; t++) {
    if (!VALID[t]) continue;
    for (let j = 0; j < width; j++) worst = Math.max(worst, Math.abs(a[t * width + j] - b[t * width + j]));
  }
  assert.ok(worst <= 1e-6, `${what}: changing padded tokens changed real tokens' outputs by ${worst}`);
}
/** Upstream weights that are zero on padded query rows. */
function realOnly(w: Float32Array, width: number): Float32Array {
  return w.map((v, i) => (VALID[Math.floor(i / width)] ? v : 0));
}

{
  const rng = new Rng(900);
  const QKV = randn(rng, AB * AT * 3 * AD), QKV2 = repad(QKV, 3 * AD, 901), W = randn(rng, AB * AT * AD);
  const WR = realOnly(W, AD);
  const BIAS = Float32Array.from(VALID, (v) => (v ? 0 : -1e9));
  for (const padded of [false, true]) {
    conformance({
      name: `attention ${padded ? "with" : "without"} key padding`,
      run: (s) => {
        const bias = padded ? keyPaddingBias(VALID, AB, AT) : undefined;
        if (bias) s.defer(bias);
        const shape: BlockShape = { batch: AB, tokens: AT, heads: AH, eps: 1e-6, keyBias: bias };
        const f = (q: tf.Tensor) => attention(q as tf.Tensor2D, shape);
        const qkv = s.input(QKV, [AB * AT, 3 * AD]);
        const y = f(qkv); // [B*T, D]
        const [gqkv] = gradsOf(f, [qkv], s.input(padded ? WR : W, [AB * AT, AD]));
        const out: Outputs = { y, gqkv };
        if (padded) out.y2 = f(s.input(QKV2, [AB * AT, 3 * AD]));
        return out;
      },
      check: (v) => {
        const want = refAttention(QKV, AB, AT, AD, AH, padded ? BIAS : undefined);
        assert.ok(relErr(v.y, want).err < 1e-5, `attention vs float64 reference: ${relErr(v.y, want).err}`);
        if (!padded) return;
        assertRealRowsEqual(v.y, v.y2, AD, "attention");
        // Real queries give padded keys zero weight, so nothing flows back into padded tokens' rows.
        for (let t = 0; t < VALID.length; t++) {
          if (VALID[t]) continue;
          const g = v.gqkv.subarray(t * 3 * AD, (t + 1) * 3 * AD);
          assert.ok(g.every((x) => x === 0), `padded token ${t} got gradient ${[...g]}`);
        }
      },
    });
  }
}

/** Random values for every parameter of one block (non-trivial norms and biases). */
const BLOCK_PARAMS: [string, number[], Float32Array][] = (() => {
  const p = new ParamStore();
  initBlock(p, "blk", AD, HID, 1, new Rng(0));
  const rng = new Rng(1000);
  const out: [string, number[], Float32Array][] = [];
  for (const [name, v] of p.vars) {
    const n = size(v.shape);
    const vals = name.includes("norm") && name.endsWith("weight")
      ? randn(rng, n, 0.2).map((x) => 1 + x)
      : name.endsWith("bias")
      ? randn(rng, n, 0.1)
      : randn(rng, n, 1 / Math.sqrt(v.shape[0]));
    out.push([name, v.shape.slice(), vals]);
  }
  p.dispose();
  return out;
})();

function blockStore(s: Scope): ParamStore {
  const p = new ParamStore();
  for (const [name, shape, vals] of BLOCK_PARAMS) p.set(name, vals, shape);
  s.defer(p);
  return p;
}

{
  const rng = new Rng(1100);
  const X = randn(rng, AB * AT * AD), X2 = repad(X, AD, 1101), W = randn(rng, AB * AT * AD);
  const WR = realOnly(W, AD);
  for (const padded of [false, true]) {
    conformance({
      name: `blockForward ${padded ? "with" : "without"} key padding`,
      run: (s) => {
        const bias = padded ? keyPaddingBias(VALID, AB, AT) : undefined;
        if (bias) s.defer(bias);
        const shape: BlockShape = { batch: AB, tokens: AT, heads: AH, eps: 1e-6, keyBias: bias };
        const p = blockStore(s);
        const x = tf.variable(s.input(X, [AB * AT, AD]), true); // a variable, for variableGrads
        s.defer(x);
        const w = s.input(padded ? WR : W, [AB * AT, AD]);
        const y = blockForward(p, "blk", x, shape); // [B*T, D]
        const { value, grads } = tf.variableGrads(
          () => blockForward(p, "blk", x, shape).mul(w).sum() as tf.Scalar,
          [x, ...p.trainable()],
        );
        value.dispose();
        const out: Outputs = { y, "d/dx": grads[x.name] };
        for (const [name, v] of p.vars) out[`d/d${name}`] = grads[v.name];
        if (padded) out.y2 = blockForward(p, "blk", s.input(X2, [AB * AT, AD]), shape);
        return out;
      },
      check: (v) => {
        assert.deepEqual([...v["y.shape"]], [AB * AT, AD]);
        if (!padded) return;
        assertRealRowsEqual(v.y, v.y2, AD, "blockForward");
        for (let t = 0; t < VALID.length; t++) {
          const g = v["d/dx"].subarray(t * AD, (t + 1) * AD);
          if (!VALID[t]) assert.ok(g.every((x) => x === 0), `padded token ${t} got gradient ${[...g]}`);
        }
      },
    });
  }
}

Deno.test("uniqueRows: ascending distinct rows, and where each index sits among them", () => {
  const idx = Int32Array.from([7, 3, 7, 12, 3, 0]);
  const { rows, at } = uniqueRows(idx);
  assert.deepEqual([...rows], [0, 3, 7, 12]);
  assert.deepEqual([...at].map((i) => rows[i]), [...idx]);
  assert.deepEqual([...uniqueRows(new Int32Array(0)).rows], []);
});

Deno.test("keyPaddingBias: values, shape and error", async () => {
  const v = await onCpu(() => ({ b: keyPaddingBias(VALID, AB, AT) }));
  assert.deepEqual([...v["b.shape"]], [AB, 1, AT]);
  assert.deepEqual([...v.b], [...VALID].map((x) => (x ? 0 : -1e9)));
  assert.throws(() => keyPaddingBias(VALID, 3, AT), /keyPaddingBias: expected 3 x 5 flags, got 10/);
});
conformance({
  name: "keyPaddingBias",
  run: () => ({ b: keyPaddingBias(VALID, AB, AT) }),
});

// ---------------------------------------------------------------------------------------------
// Numerical gradients on stock cpu: directional derivative (f(x + e v) - f(x - e v)) / 2e against
// <grad f, v> for a random direction v over all inputs at once.

/**
 * The scalar is sum(f(inputs)): `f` returns the terms, which are summed in float64 in JS for the
 * difference quotient (a float32 sum would add rounding noise of ~1e-3 relative at EPS = 1e-3), and
 * with tf.sum for the gradient.
 */
async function checkDirectional(
  what: string,
  inputs: { values: Float32Array; shape: number[] }[],
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  seed: number,
  directions = 3,
): Promise<number> {
  await setBackend("cpu", { quiet: true, blas: false });
  const before = tf.memory().numTensors;
  const rng = new Rng(seed);
  let worst = 0;
  const value = (vals: Float32Array[]) =>
    Array.from(tf.tidy(() => f(...vals.map((v, i) => tf.tensor(v, inputs[i].shape))).dataSync()))
      .reduce((a, b) => a + b, 0); // float64 sum
  const grads: Float64Array[] = [];
  tf.tidy(() => {
    const xs = inputs.map((x) => tf.tensor(x.values, x.shape));
    for (const g of tf.grads((...a: tf.Tensor[]) => f(...a).sum())(xs)) {
      grads.push(Float64Array.from(g.dataSync()));
    }
  });
  const gnorm = Math.sqrt(grads.reduce((s, g) => s + g.reduce((a, b) => a + b * b, 0), 0));
  for (let d = 0; d < directions; d++) {
    const v = inputs.map((x) => randn(rng, x.values.length));
    const shift = (sign: number) => inputs.map((x, i) => x.values.map((a, j) => a + sign * EPS * v[i][j]));
    const numeric = (value(shift(1)) - value(shift(-1))) / (2 * EPS);
    let analytic = 0;
    grads.forEach((g, i) => g.forEach((gj, j) => (analytic += gj * v[i][j])));
    // Relative to |<g, v>|, or to ||g|| (the typical size of <g, v> for a standard normal v) when
    // the directional derivative happens to be near 0 by cancellation.
    const rel = Math.abs(numeric - analytic) / Math.max(Math.abs(analytic), gnorm);
    worst = Math.max(worst, rel);
    assert.ok(
      rel <= NUM_RTOL,
      `${what}: directional derivative ${numeric} (numerical) vs ${analytic} (gradient): ` +
        `relative error ${rel.toExponential(2)} > ${NUM_RTOL}`,
    );
  }
  assert.equal(tf.memory().numTensors, before, `${what}: tensors leaked`);
  note("cpu numerical gradient", what, worst);
  return worst;
}

const inp = (values: Float32Array, shape: number[]) => ({ values, shape });

Deno.test("numerical gradients (cpu): layerNorm, gelu, smoothL1, sigReg, gatherRows", async () => {
  const rng = new Rng(1200);
  const shape = [2, 3, 8], W = randn(rng, 48);
  await checkDirectional(
    "layerNorm",
    [inp(randn(rng, 48, 2), shape), inp(randn(rng, 8).map((v) => 1 + 0.3 * v), [8]), inp(randn(rng, 8), [8])],
    (x, g, b) => layerNorm(x, 1e-6, g as tf.Tensor1D, b as tf.Tensor1D).mul(tf.tensor(W, shape)),
    1,
  );
  await checkDirectional(
    "layerNorm (no affine)",
    [inp(randn(rng, 48, 2), shape)],
    (x) => layerNorm(x, 1e-6).mul(tf.tensor(W, shape)),
    2,
  );
  const Wg = randn(rng, 64);
  await checkDirectional("gelu", [inp(randn(rng, 64, 2), [64])], (x) => gelu(x).mul(tf.tensor(Wg)), 3);
  // Keep |d| at least 10 * EPS away from the kink at 1, where a central difference is not a derivative.
  const Dv = randn(rng, 64, 1.5).map((d) => (Math.abs(Math.abs(d) - 1) < 0.05 ? d * 1.2 : d));
  await checkDirectional("smoothL1", [inp(Dv, [64])], (d) => smoothL1(d).mul(tf.tensor(Wg)), 4);
  const A = sigRegDirections(rng, 6, 5);
  await checkDirectional(
    "sigReg",
    [inp(randn(rng, 60, 1.3), [10, 6])],
    (x) => sigReg(x as tf.Tensor2D, tf.tensor2d(A, [6, 5])),
    6,
  );
  const idx = new Int32Array([1, 1, 4, 0, 2, 2, 2, 3]), Wr = randn(rng, 24);
  await checkDirectional(
    "gatherRows",
    [inp(randn(rng, 30), [2, 5, 3])],
    (x) => gatherRows(x as tf.Tensor3D, idx, 4).mul(tf.tensor(Wr, [2, 4, 3])),
    5,
  );
});

Deno.test("numerical gradients (cpu): attention and blockForward, with and without padding", async () => {
  const rng = new Rng(1300);
  const W = randn(rng, AB * AT * AD);
  for (const padded of [false, true]) {
    const shape = (): BlockShape => ({
      batch: AB,
      tokens: AT,
      heads: AH,
      eps: 1e-6,
      keyBias: padded ? keyPaddingBias(VALID, AB, AT) : undefined,
    });
    await checkDirectional(
      `attention${padded ? " (padded)" : ""}`,
      [inp(randn(rng, AB * AT * 3 * AD), [AB * AT, 3 * AD])],
      (q) => attention(q as tf.Tensor2D, shape()).mul(tf.tensor(W, [AB * AT, AD])),
      10 + Number(padded),
    );
    // Block parameters and input all move together: a directional derivative over ~700 numbers.
    const names = BLOCK_PARAMS.map(([n]) => n);
    await checkDirectional(
      `blockForward${padded ? " (padded)" : ""}`,
      [inp(randn(rng, AB * AT * AD), [AB * AT, AD]), ...BLOCK_PARAMS.map(([, s, v]) => inp(v, s))],
      (x, ...ps) => {
        const store = { get: (n: string) => ps[names.indexOf(n)] } as unknown as ParamStore;
        return blockForward(store, "blk", x, shape()).mul(tf.tensor(W, [AB * AT, AD]));
      },
      12 + Number(padded),
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Error messages (they must name what was expected and what came) and no leak when throwing.

Deno.test("errors: patchify, unpatchify, gatherRows, takeRows, linear, matMul", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    assert.throws(
      () => patchify(tf.zeros([1, 8, 12, 1]) as tf.Tensor4D, 3),
      { message: "patchify: patch size 3 does not divide the image size 8x12" },
    );
    assert.throws(
      () => unpatchify(tf.zeros([1, 5, 16]) as tf.Tensor3D, 4, 2, 2),
      { message: "unpatchify: [1,5,16] is not 2x2 patches of 4x4xC" },
    );
    const x = tf.zeros([2, 5, 3]) as tf.Tensor3D;
    assert.throws(
      () => gatherRows(x, new Int32Array([0, 1, 5, 2]), 2),
      { name: "RangeError", message: "gatherRows: index 5 at position 2 is out of range [0, 5)" },
    );
    assert.throws(
      () => gatherRows(x, new Int32Array([0, 1, -1, 2]), 2),
      { name: "RangeError", message: "gatherRows: index -1 at position 2 is out of range [0, 5)" },
    );
    assert.throws(
      () => gatherRows(x, new Int32Array([0, 1, 2]), 2),
      { message: "gatherRows: expected 2 x 2 = 4 indices for a batch of 2, got 3" },
    );
    assert.throws(
      () => takeRows(tf.zeros([4, 2]) as tf.Tensor2D, new Int32Array([4])),
      { name: "RangeError", message: "takeRows: index 4 at position 0 is out of range [0, 4)" },
    );
    assert.throws(
      () => linear(tf.zeros([2, 3, 5]), tf.zeros([4, 6]) as tf.Tensor2D),
      { message: "linear: input has 5 features but the weight is [4,6] (expected [5, out])" },
    );
    assert.throws(
      () => matMul(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([1, 3, 2]) as unknown as tf.Tensor2D),
      { message: "matMul: expected two rank-2 or two rank-3 tensors, got [2,3] and [1,3,2]" },
    );
  });
  assert.equal(tf.memory().numTensors, before, "tensors leaked by the failing calls");
});

Deno.test("the erf reference is exact (known values)", () => {
  // Values from Abramowitz & Stegun, table 7.1, and the limits.
  for (
    const [x, want] of [[0, 0], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [
      3,
      0.9999779095030014,
    ], [-1, -0.8427007929497149]]
  ) assert.ok(Math.abs(erf64(x) - want) < 1e-15, `erf64(${x}) = ${erf64(x)}, want ${want}`);
});

Deno.test("summary: largest errors observed per backend", () => {
  const lines: string[] = [];
  for (const [label, ops] of observed) {
    const tol = TOL[label] !== undefined ? ` (tolerance ${TOL[label]})` : "";
    lines.push(`${label}${tol}:`);
    for (const [op, err] of ops) lines.push(`  ${op.padEnd(48)} ${err.toExponential(2)}`);
  }
  console.log(lines.join("\n"));
  assert.ok(observed.size > 0, "no comparisons ran");
});

Deno.test("backend line: backends skipped for the same reason share one entry", () => {
  assert.deepEqual(
    groupReasons(["tensorflow-gpu: not installed", "tensorflow: not installed", "webgpu: software adapter"]),
    ["tensorflow-gpu, tensorflow: not installed", "webgpu: software adapter"],
  );
  assert.deepEqual(groupReasons(["wasm"]), ["wasm"]);
  assert.deepEqual(groupReasons([]), []);
});
