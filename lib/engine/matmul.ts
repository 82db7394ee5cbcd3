/**
 * Matrix products that are correct and fast on every backend: {@link matMul}.
 *
 * tfjs-wasm's stock matMul is about 12x slower with `transposeA/B` flags, and its gradient uses
 * those flags. Without native BLAS we transpose explicitly and multiply plainly, with a custom
 * gradient that does the same. With BLAS (lib/engine/blas.ts), our SIMD product (lib/engine/simd_gemm.ts)
 * or on WebGPU the flags are free.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { matMul } from "./matmul.ts";
 * await tf.setBackend("cpu");
 * const y = matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3, 4]]), false, true); // [1, 1]
 * if (y.dataSync()[0] !== 11) throw new Error(`got ${y.dataSync()}`);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { blasStatus } from "./blas.ts";
import { simdGemmActive } from "./simd_gemm.ts";
import type { Tensor2D, Tensor3D } from "./tensor_types.ts";

/** True when plain tf.matMul with transpose flags is fast on the active backend. */
function flagsAreFast(): boolean {
  const b = tf.getBackend();
  if (b !== "wasm") return true;
  const s = blasStatus();
  return (s.enabled && s.backends.includes("wasm")) || simdGemmActive();
}

function swapLast(t: tf.Tensor): tf.Tensor {
  const r = t.rank;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(t, perm);
}

/** matMul(a, b) with a gradient that never uses transpose flags. */
const plainMatMul = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved;
      let da = tf.matMul(dy as tf.Tensor2D, swapLast(sb) as tf.Tensor2D) as tf.Tensor;
      let db = tf.matMul(swapLast(sa) as tf.Tensor2D, dy as tf.Tensor2D) as tf.Tensor;
      // Undo batch broadcasting (a batch of 1 on one side): sum the gradient over the batch.
      if (sa.rank === 3 && sa.shape[0] === 1 && da.shape[0] !== 1) da = da.sum(0, true);
      if (sb.rank === 3 && sb.shape[0] === 1 && db.shape[0] !== 1) db = db.sum(0, true);
      return [da, db];
    },
  };
});

/**
 * Matrix product of rank-2 or rank-3 tensors, `a` [.., M, K] (or [.., K, M] when transposeA) times
 * `b` [.., K, N] (or [.., N, K] when transposeB), choosing the fast formulation for the backend.
 */
export function matMul<T extends Tensor2D | Tensor3D>(
  a: T,
  b: T,
  transposeA = false,
  transposeB = false,
): T {
  if (a.rank !== b.rank || (a.rank !== 2 && a.rank !== 3)) {
    throw new Error(`matMul: expected two rank-2 or two rank-3 tensors, got [${a.shape}] and [${b.shape}]`);
  }
  // A batch of 1 on one side broadcasts; tfjs's own BatchMatMul gradient does not sum it back, so
  // broadcasting always takes the custom gradient below.
  const broadcast = a.rank === 3 && a.shape[0] !== b.shape[0];
  if (flagsAreFast() && !broadcast) return tf.matMul(a, b, transposeA, transposeB) as T;
  return tf.tidy(() => {
    const aa = transposeA ? swapLast(a) : a;
    const bb = transposeB ? swapLast(b) : b;
    return plainMatMul(aa, bb) as T;
  });
}
