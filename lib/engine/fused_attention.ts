/**
 * A block's attention, forward and backward ({@link attentionForward}, {@link attentionBackward}), in
 * one of two ways:
 *
 * - **fused** (cpu and wasm): two kernels, `IjAttention` and `IjAttentionGrad`
 *   (lib/engine/fused_attention_kernels.ts), that take each
 *   (example, head) pair's q, k and v where the QKV product left them (columns of its rows) and
 *   write the output back as rows, so that no head-layout copy is made and a pair's T x T scores
 *   stay in cache from the product through the softmax to the product with v. Pairs are split
 *   between threads (lib/engine/parallel_kernels.ts).
 * - **head layout** (webgpu, or `IJEPA_FUSED_ATTENTION=off`): q, k and v copied into [B*H, T, hd],
 *   batched matrix products, a softmax kernel, and the output copied back into rows.
 *
 * Both compute the official attention (softmax(q k^T / sqrt(hd) + keyBias) v per head).
 *
 * Measured 2026-12-04 (2 cores, reference step): the head-layout path spent 67-80 ms of a 350 ms step
 * (BLAS on, AVX-512 kernels) in its batched products over 17-49 tokens, layout copies and softmax
 * passes. Fused, the step is about 10% faster without BLAS (891/1099 against 983/1263 ms, alternating
 * runs) and even with BLAS, whose AVX-512 small products beat our 128-bit ones.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { runFused } from "./fused_kernels.ts";
import { envSaysOff } from "./fused_simd.ts";
import { matMul } from "./matmul.ts";

/** The attention's shape: B sequences of T tokens, H heads. */
export interface HeadsShape {
  batch: number;
  tokens: number;
  heads: number;
}

/** Whether {@link attentionForward} takes the fused kernels on the active backend. */
export function fusedAttentionActive(): boolean {
  return !envSaysOff("IJEPA_FUSED_ATTENTION") && tf.getKernel("IjAttention", tf.getBackend()) !== undefined;
}

/**
 * Attention of a block from its QKV product qkv [B*T, 3D] (bias not yet added) and the QKV bias:
 * the output o [B*T, D] before the projection, and what {@link attentionBackward} needs.
 */
export function attentionForward(
  qkv: tf.Tensor2D,
  bias: tf.Tensor,
  keyBias: tf.Tensor3D | undefined,
  s: HeadsShape,
  scale: number,
): { o: tf.Tensor2D; saved: tf.Tensor[] } {
  const H = s.heads;
  if (fusedAttentionActive()) {
    const qkvb = runFused("IjBiasAdd", { x: qkv, bias }) as tf.Tensor2D;
    const [o, p] = runFused("IjAttention", { qkv: qkvb, keyBias }, { ...s, scale }) as tf.Tensor[];
    return { o: o as tf.Tensor2D, saved: [qkvb, p] };
  }
  const [q, k, v] = runFused("IjSplitHeads", { qkv, bias }, { ...s, scale }) as tf.Tensor3D[]; // [B*H, T, hd]
  const sc = matMul(q, k, false, true); // [B*H, T, T]
  const p = runFused("IjSoftmax", { s: sc, keyBias }, { heads: H }) as tf.Tensor3D;
  const o = runFused("IjHeadsToRows", { x: matMul(p, v) }, { heads: H }) as tf.Tensor2D; // [B*T, D]
  return { o, saved: [q, k, v, p] };
}

/**
 * The gradients of the QKV product's output (bias included) and of the QKV bias, given
 * dL/do [B*T, D] and what {@link attentionForward} saved.
 */
export function attentionBackward(
  dout: tf.Tensor2D,
  saved: tf.Tensor[],
  s: HeadsShape,
  scale: number,
): [tf.Tensor2D, tf.Tensor] {
  if (saved.length === 2) {
    const [qkv, p] = saved;
    const [dqkv, ds] = runFused("IjAttentionGrad", { qkv, p, dout }, { ...s, scale }) as tf.Tensor2D[];
    ds.dispose();
    return [dqkv, runFused("IjColSum", { x: dqkv }) as tf.Tensor];
  }
  const [q, k, v, p] = saved as tf.Tensor3D[];
  const dO = runFused("IjRowsToHeads", { x: dout }, { ...s }) as tf.Tensor3D; // [B*H, T, hd]
  const dv = matMul(p, dO, true, false); // [B*H, T, hd]
  const dp = matMul(dO, v, false, true); // [B*H, T, T]
  const ds = runFused("IjSoftmaxGrad", { p, dp }) as tf.Tensor3D; // [B*H, T, T]
  const dq = matMul(ds, k); // [B*H, T, hd], for the scaled q
  const dk = matMul(ds, q, true, false); // [B*H, T, hd]
  return runFused("IjMergeHeads", { dq, dk, dv }, { heads: s.heads, scale }) as [tf.Tensor2D, tf.Tensor];
}
