/**
 * Fused operations: sub-graphs with a hand-written gradient (`tf.customGrad`), so the tape records
 * one node where autodiff would record several, and every elementwise pass is one loop of
 * lib/engine/fused_kernels.ts. {@link fusedLayerNorm}, {@link fusedGelu}, {@link fusedLinear} and
 * {@link fusedSmoothL1} are the pieces used outside transformer blocks; a whole block is
 * lib/engine/fused_block.ts, the optimizer's and EMA's all-parameter updates lib/engine/fused_update_all.ts,
 * and where they run (wasm by default, `IJEPA_FUSED`) lib/engine/fused_mode.ts.
 *
 * Every gradient here is checked against tfjs autodiff on cpu and by directional derivatives in
 * tests/engine/fused_test.ts.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fusedLayerNorm } from "./fused_ops.ts";
 * await tf.setBackend("cpu");
 * const x = tf.tensor2d([[1, 2, 3], [2, 4, 6]]); // [2, 3]
 * const g = tf.grad((t: tf.Tensor) => fusedLayerNorm(t, 1e-6).square().sum())(x);
 * // a LayerNorm output's squared sum is D per row whatever x is: its gradient is ~0
 * if (g.abs().max().dataSync()[0] > 1e-3) throw new Error("gradient should vanish");
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { runFused } from "./fused_kernels.ts";
import { need } from "./fused_mode.ts";
import { matMul } from "./matmul.ts";

/** The arguments tf.customGrad passes: the inputs, then the save function. */
export type GradArgs = (tf.Tensor | tf.GradSaveFunc)[];

function rows2d(x: tf.Tensor): tf.Tensor2D {
  const d = x.shape[x.rank - 1];
  return (x.rank === 2 ? x : x.reshape([-1, d])) as tf.Tensor2D;
}

/** x in `shape`: itself when it has it already (a reshape is a kernel call even when it changes nothing). */
function shaped<T extends tf.Tensor>(x: tf.Tensor, shape: number[]): T {
  return (x.shape.length === shape.length && x.shape.every((n, i) => n === shape[i])
    ? x
    : x.reshape(shape)) as T;
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
 * import { fusedLayerNorm } from "./fused_ops.ts";
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
    // a variable gamma outlives the backward pass: read it directly, saving clones it (one more kernel)
    const gVar = affine && gamma instanceof tf.Variable;
    save(affine && !gVar ? [x2, stats, g!] : [x2, stats]);
    return {
      value: shaped(y, xx.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sx, st] = saved;
          const sg = gVar ? gamma : saved[2];
          const [dx, dg, db] = runFused("IjLayerNormGrad", {
            dy: rows2d(dy),
            x: sx,
            stats: st,
            gamma: sg,
          }) as tf.Tensor[];
          return affine ? [shaped(dx, xx.shape), dg, db] : [shaped(dx, xx.shape)];
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
 * import { fusedGelu } from "./fused_ops.ts";
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
      value: shaped(runFused("IjBiasGelu", { u, bias: b }) as tf.Tensor, x.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [du, db] = runFused("IjBiasGeluGrad", {
            dy: rows2d(dy),
            u: saved[0],
            bias: saved[1],
          }) as tf.Tensor[];
          return bias ? [shaped(du, x.shape), db] : [shaped(du, x.shape)];
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
 * import { fusedLinear } from "./fused_ops.ts";
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
    // a variable weight outlives the backward pass: read it directly, saving clones it (one more kernel)
    const wVar = w instanceof tf.Variable;
    save(wVar ? [x2] : [x2, ww]);
    return {
      value: shaped(y, outShape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const sx = saved[0] as tf.Tensor2D;
          const sw = (wVar ? w : saved[1]) as tf.Tensor2D;
          const d2 = rows2d(dy);
          const dx = shaped(matMul(d2, sw, false, true), x.shape); // [.., in]
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
 * import { fusedSmoothL1 } from "./fused_ops.ts";
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
