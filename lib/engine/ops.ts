/**
 * The few tensor operations the model is built from, each written once so that every backend gets
 * a correct and fast version. The field notes list why each exists:
 *
 * - `matMul` (lib/engine/matmul.ts): tfjs-wasm's stock matMul is about 12x slower with
 *   `transposeA/B` flags, and its gradient uses those flags; that file says how it avoids them.
 * - {@link linear}: a 3-D x 2-D broadcasting matMul has no working gradient in tfjs 4.22, so
 *   activations are flattened to 2-D first.
 * - {@link gatherRows}: `tf.gather(x, idx, 1, batchDims=1)` silently returns wrong values on wasm,
 *   and gather's gradient needs UnsortedSegmentSum, which wasm lacks. We gather with flat indices and
 *   scatter the gradient back with ScatterNd (present on every backend).
 * - {@link patchify}: a convolution's filter gradient is missing on wasm, so the patch embedding is a
 *   reshape + rank-4 transpose followed by a linear layer (the same function as the official stride-p
 *   convolution).
 * - {@link linear}, {@link layerNorm}, {@link gelu}, {@link smoothL1}: where lib/engine/fused_mode.ts's
 *   `fusedEnabled()` says so (wasm), each runs as one op with a hand-written gradient; elsewhere (cpu,
 *   the reference; webgpu) as the tfjs ops below, differentiated by tfjs.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { gatherRows } from "./ops.ts";
 * await tf.setBackend("cpu");
 * const x = tf.tensor3d([[[1], [2], [3]], [[4], [5], [6]]]); // [2, 3, 1]
 * const y = gatherRows(x, new Int32Array([2, 0, 1, 1]), 2); // [2, 2, 1]
 * const got = Array.from(y.dataSync());
 * if (got.join() !== "3,1,5,5") throw new Error(`gatherRows gave ${got}`);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fusedEnabled } from "./fused_mode.ts";
import { fusedGelu, fusedLayerNorm, fusedLinear, fusedSmoothL1 } from "./fused_ops.ts";
import { matMul } from "./matmul.ts";
import type { Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D } from "./tensor_types.ts";

/**
 * A dense layer on the last axis: `x` [..., in] times `w` [in, out] plus `b` [out]. The input is
 * flattened to 2-D so the gradient works on every backend; the output keeps x's leading shape.
 */
export function linear(x: Tensor, w: Tensor2D, b?: Tensor1D): Tensor {
  const din = x.shape[x.rank - 1];
  if (w.rank !== 2 || w.shape[0] !== din) {
    throw new Error(
      `linear: input has ${din} features but the weight is [${w.shape}] (expected [${din}, out])`,
    );
  }
  if (fusedEnabled()) return fusedLinear(x, w, b); // one recorded op, bias in one pass (lib/engine/fused_ops.ts)
  return tf.tidy(() => {
    const lead = x.shape.slice(0, -1);
    let y: tf.Tensor = matMul(x.reshape([-1, din]) as tf.Tensor2D, w); // [rows, out]
    if (b) y = y.add(b);
    return y.reshape([...lead, w.shape[1]]);
  });
}

function checkIndices(where: string, idx: Int32Array, n: number): void {
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i];
    if (!(v >= 0 && v < n)) {
      throw new RangeError(`${where}: index ${v} at position ${i} is out of range [0, ${n})`);
    }
  }
}

/**
 * Per-example row gather: `x` [B, N, D], `idx` [B * K] (example b's K indices into N, row-major)
 * gives [B, K, D]. Works and differentiates on every backend (see the module notes).
 */
export function gatherRows(x: Tensor3D, idx: Int32Array, k: number): Tensor3D {
  const [B, N, D] = x.shape;
  if (idx.length !== B * k) {
    throw new Error(
      `gatherRows: expected ${B} x ${k} = ${B * k} indices for a batch of ${B}, got ${idx.length}`,
    );
  }
  checkIndices("gatherRows", idx, N);
  const flat = new Int32Array(B * k);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < k; j++) flat[b * k + j] = b * N + idx[b * k + j];
  }
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xx = args[0] as tf.Tensor;
    const value = tf.tidy(() =>
      tf.gather(xx.reshape([B * N, D]), tf.tensor1d(flat, "int32")).reshape([B, k, D])
    );
    return {
      value,
      gradFunc: (dy: tf.Tensor) => {
        const at = tf.tensor2d(flat, [B * k, 1], "int32");
        // ScatterNd adds the updates of repeated indices together, as a gradient must.
        return tf.scatterND(at, dy.reshape([B * k, D]), [B * N, D]).reshape([B, N, D]);
      },
    };
  });
  return f(x) as tf.Tensor3D;
}

/**
 * Rows of a 2-D table picked by index, without gradient (position embeddings, targets):
 * `table` [N, D], `idx` [L] gives [L, D].
 */
export function takeRows(table: Tensor2D, idx: Int32Array): Tensor2D {
  checkIndices("takeRows", idx, table.shape[0]);
  return tf.tidy(() => tf.gather(table, tf.tensor1d(idx, "int32")) as tf.Tensor2D);
}

/**
 * The distinct entries of `idx` in ascending order (`rows`), and where each entry of `idx` sits among
 * them (`at`): `takeRows(takeRows(t, rows), at)` equals `takeRows(t, idx)`.
 */
export function uniqueRows(idx: Int32Array): { rows: Int32Array; at: Int32Array } {
  const rows = Int32Array.from(new Set(idx)).sort();
  const pos = new Map<number, number>();
  rows.forEach((r, i) => pos.set(r, i));
  return { rows, at: idx.map((r) => pos.get(r)!) };
}

/**
 * Cut NHWC images [B, H, W, C] into non-overlapping p x p patches [B, N, p*p*C], patches in
 * row-major grid order, each patch flattened as (row in patch, column in patch, channel).
 */
export function patchify(images: Tensor4D, p: number): Tensor3D {
  const [B, H, W, C] = images.shape;
  if (H % p !== 0 || W % p !== 0) {
    throw new Error(`patchify: patch size ${p} does not divide the image size ${H}x${W}`);
  }
  const gh = H / p, gw = W / p;
  return tf.tidy(() =>
    images
      .reshape([B * gh, p, gw, p * C]) // rows of patches
      .transpose([0, 2, 1, 3]) // [B*gh, gw, p, p*C]: rank 4 (higher ranks are slow on wasm)
      .reshape([B, gh * gw, p * p * C])
  );
}

/** The inverse of {@link patchify}: [B, N, p*p*C] back to [B, H, W, C]. */
export function unpatchify(patches: Tensor3D, p: number, gh: number, gw: number): Tensor4D {
  const [B, N, P] = patches.shape;
  const C = P / (p * p);
  if (N !== gh * gw || !Number.isInteger(C)) {
    throw new Error(`unpatchify: [${patches.shape}] is not ${gh}x${gw} patches of ${p}x${p}xC`);
  }
  return tf.tidy(() =>
    patches.reshape([B * gh, gw, p, p * C]).transpose([0, 2, 1, 3]).reshape([B, gh * p, gw * p, C])
  );
}

/** LayerNorm over the last axis, with optional affine parameters. */
export function layerNorm(x: Tensor, eps: number, gamma?: Tensor1D, beta?: Tensor1D): Tensor {
  if (fusedEnabled()) return fusedLayerNorm(x, eps, gamma, beta);
  return tf.tidy(() => {
    const mean = x.mean(-1, true);
    const xc = x.sub(mean);
    const variance = xc.square().mean(-1, true);
    let y = xc.mul(variance.add(eps).rsqrt());
    if (gamma) y = y.mul(gamma);
    if (beta) y = y.add(beta);
    return y;
  });
}

/** The exact (erf) GELU, as PyTorch's nn.GELU default in the official code. */
export function gelu(x: Tensor): Tensor {
  if (fusedEnabled()) return fusedGelu(x);
  return tf.tidy(() => x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5));
}

/** Smooth-L1 (Huber with beta 1) elementwise, as PyTorch's smooth_l1_loss. */
export function smoothL1(diff: Tensor): Tensor {
  if (fusedEnabled()) return fusedSmoothL1(diff);
  return tf.tidy(() => {
    // 0.5 q^2 + (|d| - q) with q = min(|d|, 1): written without a comparison op, which has no
    // gradient in tfjs.
    const a = diff.abs();
    const q = tf.minimum(a, 1);
    return q.square().mul(0.5).add(a.sub(q));
  });
}
