/**
 * Fused operations: whole sub-graphs with a hand-written gradient (`tf.customGrad`), so the tape
 * records one node where autodiff would record dozens, and every elementwise pass is one loop of
 * lib/engine/fused_kernels.ts.
 *
 * - {@link fusedBlock}: a whole pre-norm transformer block (LayerNorm, QKV, attention, projection,
 *   LayerNorm, MLP with GELU, both residuals). Its backward is written out below: 12 matrix products
 *   (BLAS where enabled) and 8 fused passes, where autodiff of the same block records dozens of kernels.
 * - {@link fusedLayerNorm}, {@link fusedGelu}, {@link fusedLinear}, {@link fusedSmoothL1}: the same
 *   idea for the pieces used outside blocks.
 * - {@link adamwUpdate}, {@link emaUpdate}: one pass per parameter for the optimizer and the target
 *   encoder's EMA, instead of about 10 and 3 kernels.
 *
 * Where they run: {@link fusedEnabled} says whether the model uses them on the active backend. By
 * default that is `wasm` only (where they pay most); `cpu` stays the autodiff reference the tests
 * compare against, and `webgpu` has no kernels here (its own fused shaders would be a separate
 * piece of work). `IJEPA_FUSED=off` turns them off everywhere, `IJEPA_FUSED=on` also on cpu.
 *
 * Every gradient here is checked against tfjs autodiff on cpu and by directional derivatives in
 * tests/fused_test.ts.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fusedLayerNorm } from "./fused.ts";
 * await tf.setBackend("cpu");
 * const x = tf.tensor2d([[1, 2, 3], [2, 4, 6]]); // [2, 3]
 * const g = tf.grad((t: tf.Tensor) => fusedLayerNorm(t, 1e-6).square().sum())(x);
 * // a LayerNorm output's squared sum is D per row whatever x is: its gradient is ~0
 * if (g.abs().max().dataSync()[0] > 1e-3) throw new Error("gradient should vanish");
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fusedKernelsAvailable, registerFusedKernels, runFused } from "./fused_kernels.ts";
import { matMul } from "./ops.ts";

/** When the model uses the fused path: `auto` = on wasm only, `on` = wasm and cpu, `off` = never. */
export type FusedMode = "auto" | "on" | "off";

let mode: FusedMode | undefined;

/** The mode from `IJEPA_FUSED` (read once; unset or unreadable means `auto`). */
export function fusedMode(): FusedMode {
  if (mode === undefined) {
    let v = "auto";
    try {
      v = (Deno.env.get("IJEPA_FUSED") ?? "auto").trim().toLowerCase();
    } catch {
      // no --allow-env: the default
    }
    mode = v === "off" || v === "0" || v === "false" ? "off" : v === "on" || v === "1" ? "on" : "auto";
  }
  return mode;
}

/**
 * Whether the model takes the fused path on the active backend (see the module notes). Registers
 * the kernels on first use.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fusedEnabled } from "./fused.ts";
 * await tf.setBackend("cpu");
 * if (fusedEnabled() && Deno.env.get("IJEPA_FUSED") !== "on") throw new Error("cpu is the reference");
 * ```
 */
export function fusedEnabled(): boolean {
  const m = fusedMode();
  if (m === "off") return false;
  const b = tf.getBackend();
  if (b !== "wasm" && !(m === "on" && b === "cpu")) return false;
  return ensureKernels();
}

/** Register the kernels if needed; true when they run on the active backend. */
function ensureKernels(): boolean {
  if (!fusedKernelsAvailable()) registerFusedKernels();
  return fusedKernelsAvailable();
}

function need(where: string): void {
  if (!ensureKernels()) {
    throw new Error(
      `${where}: the fused kernels run on wasm or cpu, the active backend is ${tf.getBackend()}`,
    );
  }
}

type GradArgs = (tf.Tensor | tf.GradSaveFunc)[];

function rows2d(x: tf.Tensor): tf.Tensor2D {
  const d = x.shape[x.rank - 1];
  return x.reshape([-1, d]) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------------
// LayerNorm, GELU, linear, smooth-L1

/**
 * LayerNorm over the last axis (optionally affine), forward and backward one pass each. The
 * backward is the closed form dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fusedLayerNorm } from "./fused.ts";
 * await tf.setBackend("cpu");
 * const y = fusedLayerNorm(tf.tensor2d([[1, 3]]), 0, tf.tensor1d([2, 2]), tf.tensor1d([1, 1]));
 * if (y.dataSync().join() !== "-1,3") throw new Error(`got ${y.dataSync()}`);
 * ```
 */
export function fusedLayerNorm(
  x: tf.Tensor,
  eps: number,
  gamma?: tf.Tensor1D,
  beta?: tf.Tensor1D,
): tf.Tensor {
  need("fusedLayerNorm");
  const D = x.shape[x.rank - 1];
  if ((gamma && gamma.size !== D) || (beta && beta.size !== D) || Boolean(gamma) !== Boolean(beta)) {
    throw new Error(
      `fusedLayerNorm: expected gamma and beta both [${D}] or both absent, got [${gamma?.shape}] and [${beta?.shape}]`,
    );
  }
  const affine = gamma !== undefined;
  const f = tf.customGrad((...args: GradArgs) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xx = args[0] as tf.Tensor;
    const g = affine ? args[1] as tf.Tensor : undefined;
    const b = affine ? args[2] as tf.Tensor : undefined;
    const x2 = rows2d(xx); // [R, D]
    const [y, stats] = runFused("IjLayerNorm", { x: x2, gamma: g, beta: b }, { eps }) as tf.Tensor[];
    save(affine ? [x2, stats, g!] : [x2, stats]);
    return {
      value: y.reshape(xx.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sx, st, sg] = saved;
          const [dx, dg, db] = runFused("IjLayerNormGrad", {
            dy: rows2d(dy),
            x: sx,
            stats: st,
            gamma: sg,
          }) as tf.Tensor[];
          return affine ? [dx.reshape(xx.shape), dg, db] : [dx.reshape(xx.shape)];
        }),
    };
  });
  return affine ? f(x, gamma!, beta!) : f(x);
}

/**
 * The exact (erf) GELU of x (+ bias on the last axis), one pass forward and one backward.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fusedGelu } from "./fused.ts";
 * await tf.setBackend("cpu");
 * const y = fusedGelu(tf.tensor2d([[0, 1]])).dataSync();
 * if (y[0] !== 0 || Math.abs(y[1] - 0.8413447) > 1e-6) throw new Error(`got ${y}`);
 * ```
 */
export function fusedGelu(x: tf.Tensor, bias?: tf.Tensor1D): tf.Tensor {
  need("fusedGelu");
  const F = x.shape[x.rank - 1];
  if (bias && bias.size !== F) throw new Error(`fusedGelu: expected bias [${F}], got [${bias.shape}]`);
  const f = tf.customGrad((...args: GradArgs) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const u = rows2d(args[0] as tf.Tensor); // [R, F]
    const b = bias ? args[1] as tf.Tensor : undefined;
    save(b ? [u, b] : [u]);
    return {
      value: (runFused("IjBiasGelu", { u, bias: b }) as tf.Tensor).reshape(x.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [du, db] = runFused("IjBiasGeluGrad", {
            dy: rows2d(dy),
            u: saved[0],
            bias: saved[1],
          }) as tf.Tensor[];
          return bias ? [du.reshape(x.shape), db] : [du.reshape(x.shape)];
        }),
    };
  });
  return bias ? f(x, bias) : f(x);
}

/**
 * A dense layer x [..., in] @ w [in, out] + b [out]: the product through BLAS where enabled, the
 * bias in one pass; backward dx = dy w^T, dw = x^T dy, db = column sums of dy.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fusedLinear } from "./fused.ts";
 * await tf.setBackend("cpu");
 * const y = fusedLinear(tf.tensor2d([[1, 2]]), tf.tensor2d([[1], [1]]), tf.tensor1d([0.5]));
 * if (y.dataSync()[0] !== 3.5) throw new Error(`got ${y.dataSync()}`);
 * ```
 */
export function fusedLinear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  need("fusedLinear");
  const din = x.shape[x.rank - 1];
  if (w.rank !== 2 || w.shape[0] !== din || (b && b.size !== w.shape[1])) {
    throw new Error(
      `fusedLinear: input has ${din} features; expected weight [${din}, out] and bias [out], got [${w.shape}] and [${b?.shape}]`,
    );
  }
  const outShape = [...x.shape.slice(0, -1), w.shape[1]];
  const f = tf.customGrad((...args: GradArgs) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x2 = rows2d(args[0] as tf.Tensor); // [R, in]
    const ww = args[1] as tf.Tensor2D;
    const bb = b ? args[2] as tf.Tensor : undefined;
    let y = matMul(x2, ww) as tf.Tensor; // [R, out]
    if (bb) y = runFused("IjBiasAdd", { x: y, bias: bb }) as tf.Tensor;
    save([x2, ww]);
    return {
      value: y.reshape(outShape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sx, sw] = saved as tf.Tensor2D[];
          const d2 = rows2d(dy);
          const dx = matMul(d2, sw, false, true).reshape(x.shape); // [.., in]
          const dw = matMul(sx, d2, true, false); // [in, out]
          return b ? [dx, dw, runFused("IjColSum", { x: d2 }) as tf.Tensor] : [dx, dw];
        }),
    };
  });
  return b ? f(x, w, b) : f(x, w);
}

/**
 * Smooth-L1 (Huber, beta 1) elementwise, as PyTorch's smooth_l1_loss: one pass each way.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fusedSmoothL1 } from "./fused.ts";
 * await tf.setBackend("cpu");
 * const y = fusedSmoothL1(tf.tensor1d([0.5, -3])).dataSync();
 * if (y.join() !== "0.125,2.5") throw new Error(`got ${y}`);
 * ```
 */
export function fusedSmoothL1(d: tf.Tensor): tf.Tensor {
  need("fusedSmoothL1");
  const f = tf.customGrad((...args: GradArgs) => {
    const save = args[1] as tf.GradSaveFunc;
    const dd = args[0] as tf.Tensor;
    save([dd]);
    return {
      value: runFused("IjSmoothL1", { d: dd }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        runFused("IjSmoothL1Grad", { d: saved[0], dy }) as tf.Tensor,
    };
  });
  return f(d);
}

// ---------------------------------------------------------------------------------------------
// The transformer block

/** A block's parameters in this order (official names, relative to the block's prefix). */
export const BLOCK_PARAMS = [
  "norm1.weight",
  "norm1.bias",
  "attn.qkv.weight",
  "attn.qkv.bias",
  "attn.proj.weight",
  "attn.proj.bias",
  "norm2.weight",
  "norm2.bias",
  "mlp.fc1.weight",
  "mlp.fc1.bias",
  "mlp.fc2.weight",
  "mlp.fc2.bias",
] as const;

/** What {@link fusedBlock} needs to know besides its input (lib/model/transformer.ts's BlockShape). */
export interface FusedBlockShape {
  batch: number;
  tokens: number;
  heads: number;
  eps: number;
  /** [B, 1, T] additive bias on the keys (0 real, large negative for padding), if anything is padded. */
  keyBias?: tf.Tensor3D;
}

/**
 * One pre-norm transformer block on x [B*T, D], weights in {@link BLOCK_PARAMS} order:
 *
 *     x1 = x + proj(attention(LN1(x)))     attention per head: softmax(q k^T / sqrt(hd) + keyBias) v
 *     y  = x1 + fc2(gelu(fc1(LN2(x1))))
 *
 * Heads are laid out [B*H, T, hd] by one copy pass (no rank-4/5 transposes), with the QKV bias and
 * the 1/sqrt(hd) scale folded into that pass. The backward pass is written out by hand.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { BLOCK_PARAMS, fusedBlock } from "./fused.ts";
 * await tf.setBackend("cpu");
 * const D = 4, F = 8;
 * const shapes: Record<string, number[]> = {
 *   "norm1.weight": [D], "norm1.bias": [D], "attn.qkv.weight": [D, 3 * D], "attn.qkv.bias": [3 * D],
 *   "attn.proj.weight": [D, D], "attn.proj.bias": [D], "norm2.weight": [D], "norm2.bias": [D],
 *   "mlp.fc1.weight": [D, F], "mlp.fc1.bias": [F], "mlp.fc2.weight": [F, D], "mlp.fc2.bias": [D],
 * };
 * const ws = BLOCK_PARAMS.map((n, i) => tf.randomNormal(shapes[n], 0, 0.1, "float32", i));
 * const y = fusedBlock(tf.ones([2 * 3, D]) as tf.Tensor2D, ws, { batch: 2, tokens: 3, heads: 2, eps: 1e-6 });
 * if (y.shape.join() !== "6,4") throw new Error(`shape ${y.shape}`);
 * ```
 */
export function fusedBlock(x: tf.Tensor2D, weights: readonly tf.Tensor[], s: FusedBlockShape): tf.Tensor2D {
  need("fusedBlock");
  const { batch: B, tokens: T, heads: H, eps, keyBias } = s;
  const [R, D] = x.shape;
  if (weights.length !== BLOCK_PARAMS.length) {
    throw new Error(
      `fusedBlock: expected ${BLOCK_PARAMS.length} weights (${
        BLOCK_PARAMS.join(", ")
      }), got ${weights.length}`,
    );
  }
  if (R !== B * T || D % H !== 0) {
    throw new Error(
      `fusedBlock: expected x [${B} x ${T}, D] with D divisible by ${H} heads, got [${x.shape}]`,
    );
  }
  if (keyBias && keyBias.shape.join() !== `${B},1,${T}`) {
    throw new Error(`fusedBlock: expected keyBias [${B}, 1, ${T}], got [${keyBias.shape}]`);
  }
  const scale = 1 / Math.sqrt(D / H);
  const heads = { batch: B, tokens: T, heads: H };
  const f = tf.customGrad((...args: GradArgs) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xx = args[0] as tf.Tensor2D;
    const [g1, b1n, wqkv, bqkv, wproj, bproj, g2, b2n, w1, b1, w2, b2] = args.slice(1, 13) as tf.Tensor2D[];
    const [h1, st1] = runFused("IjLayerNorm", { x: xx, gamma: g1, beta: b1n }, { eps }) as tf.Tensor2D[]; // [R, D]
    const qkv = matMul(h1, wqkv); // [R, 3D], bias added by the split
    const [q, k, v] = runFused("IjSplitHeads", { qkv, bias: bqkv }, { ...heads, scale }) as tf.Tensor3D[]; // [B*H, T, hd]
    const sc = matMul(q, k, false, true); // [B*H, T, T]
    const p = runFused("IjSoftmax", { s: sc, keyBias }, { heads: H }) as tf.Tensor3D; // [B*H, T, T]
    const o = runFused("IjHeadsToRows", { x: matMul(p, v) }, { heads: H }) as tf.Tensor2D; // [R, D]
    const x1 = runFused("IjResidual", { x: xx, y: matMul(o, wproj), bias: bproj }) as tf.Tensor2D; // [R, D]
    const [h2, st2] = runFused("IjLayerNorm", { x: x1, gamma: g2, beta: b2n }, { eps }) as tf.Tensor2D[];
    const u = matMul(h2, w1); // [R, F], bias added inside the GELU
    const m = runFused("IjBiasGelu", { u, bias: b1 }) as tf.Tensor2D; // [R, F]
    const y = runFused("IjResidual", { x: x1, y: matMul(m, w2), bias: b2 }) as tf.Tensor2D; // [R, D]
    save([xx, st1, h1, q, k, v, p, o, x1, st2, h2, u, m, g1, wqkv, wproj, g2, w1, b1, w2]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          // saved in the order of save([...]) above
          const [sx, sst1, sh1, sq, sk, sv, sp, so, sx1, sst2] = saved as tf.Tensor2D[];
          const [sh2, su, sm, sg1, swqkv, swproj, sg2, sw1, sb1, sw2] = saved.slice(10) as tf.Tensor2D[];
          const d = dy as tf.Tensor2D; // [R, D], also the gradient of x1 through the residual
          // MLP
          const db2 = runFused("IjColSum", { x: d }) as tf.Tensor;
          const dw2 = matMul(sm, d, true, false); // [F, D]
          const dm = matMul(d, sw2, false, true); // [R, F]
          const [du, db1] = runFused("IjBiasGeluGrad", { dy: dm, u: su, bias: sb1, y: sm }) as tf.Tensor2D[];
          const dw1 = matMul(sh2, du, true, false); // [D, F]
          const dh2 = matMul(du, sw1, false, true); // [R, D]
          const [dx1, dg2, db2n] = runFused(
            "IjLayerNormGrad",
            { dy: dh2, x: sx1, stats: sst2, gamma: sg2, dres: d },
          ) as tf.Tensor2D[]; // dx1 [R, D]: both paths into x1
          // attention
          const dbproj = runFused("IjColSum", { x: dx1 }) as tf.Tensor;
          const dwproj = matMul(so, dx1, true, false); // [D, D]
          const dO = runFused("IjRowsToHeads", { x: matMul(dx1, swproj, false, true) }, heads) as tf.Tensor3D; // [B*H, T, hd]
          const dv = matMul(sp as unknown as tf.Tensor3D, dO, true, false); // [B*H, T, hd]
          const dp = matMul(dO, sv as unknown as tf.Tensor3D, false, true); // [B*H, T, T]
          const ds = runFused("IjSoftmaxGrad", { p: sp, dp }) as tf.Tensor3D; // [B*H, T, T]
          const dq = matMul(ds, sk as unknown as tf.Tensor3D); // [B*H, T, hd], for the scaled q
          const dk = matMul(ds, sq as unknown as tf.Tensor3D, true, false); // [B*H, T, hd]
          const [dqkv, dbqkv] = runFused("IjMergeHeads", { dq, dk, dv }, {
            heads: H,
            scale,
          }) as tf.Tensor2D[]; // [R, 3D]
          const dwqkv = matMul(sh1, dqkv, true, false); // [D, 3D]
          const dh1 = matMul(dqkv, swqkv, false, true); // [R, D]
          const [dx, dg1, db1n] = runFused(
            "IjLayerNormGrad",
            { dy: dh1, x: sx, stats: sst1, gamma: sg1, dres: dx1 },
          ) as tf.Tensor2D[];
          return [dx, dg1, db1n, dwqkv, dbqkv, dwproj, dbproj, dg2, db2n, dw1, db1, dw2, db2];
        }),
    };
  });
  return f(x, ...weights) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------------
// Optimizer and EMA

/** Hyper-parameters of one {@link adamwUpdate}. */
export interface AdamWUpdate {
  lr: number;
  /** Decoupled weight decay for this parameter (0 for biases and 1-D parameters). */
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** The step number t (>= 1) of the bias corrections. */
  step: number;
}

/**
 * One AdamW step of a parameter in one pass: assigns p, m and v (PyTorch's torch.optim.AdamW
 * formula, as lib/train/adamw.ts). Does not dispose `g`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { adamwUpdate } from "./fused.ts";
 * await tf.setBackend("cpu");
 * const p = tf.variable(tf.tensor1d([1, -1])), m = tf.variable(tf.zeros([2])), v = tf.variable(tf.zeros([2]));
 * adamwUpdate(p, m, v, tf.tensor1d([1, -1]), { lr: 0.1, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 });
 * const got = p.dataSync();
 * if (Math.abs(got[0] - 0.9) > 1e-5 || Math.abs(got[1] + 0.9) > 1e-5) throw new Error(`${got}`);
 * ```
 */
export function adamwUpdate(
  p: tf.Variable,
  m: tf.Variable,
  v: tf.Variable,
  g: tf.Tensor,
  hp: AdamWUpdate,
): void {
  need("adamwUpdate");
  if (g.size !== p.size) {
    throw new Error(`adamwUpdate: gradient [${g.shape}] does not match parameter [${p.shape}]`);
  }
  const { lr, weightDecay, beta1, beta2, eps, step } = hp;
  const attrs = {
    lr,
    decay: weightDecay,
    beta1,
    beta2,
    eps,
    c1: 1 - Math.pow(beta1, step),
    c2: 1 - Math.pow(beta2, step),
  };
  // tidy: the reshapes are new tensor objects; assign keeps the data, tidy frees the objects
  tf.tidy(() => {
    const [p1, m1, v1] = runFused("IjAdamW", { p, m, v, g }, attrs) as tf.Tensor[];
    p.assign(p1.reshape(p.shape));
    m.assign(m1.reshape(p.shape));
    v.assign(v1.reshape(p.shape));
  });
}

/**
 * t <- momentum * t + (1 - momentum) * c in one pass (the target encoder's EMA).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { emaUpdate } from "./fused.ts";
 * await tf.setBackend("cpu");
 * const t = tf.variable(tf.tensor1d([0, 1]));
 * emaUpdate(t, tf.tensor1d([1, 1]), 0.75);
 * if (t.dataSync().join() !== "0.25,1") throw new Error(`${t.dataSync()}`);
 * ```
 */
export function emaUpdate(t: tf.Variable, c: tf.Tensor, momentum: number): void {
  need("emaUpdate");
  if (c.size !== t.size) throw new Error(`emaUpdate: source [${c.shape}] does not match target [${t.shape}]`);
  tf.tidy(() => {
    const out = runFused("IjEma", { t, c }, { momentum }) as tf.Tensor;
    t.assign(out.reshape(t.shape));
  });
}
