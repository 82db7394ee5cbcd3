/**
 * A whole pre-norm transformer block (LayerNorm, QKV, attention, projection, LayerNorm, MLP with
 * GELU, both residuals) as one op with a hand-written gradient: {@link fusedBlock}. Its backward is
 * written out here: 12 matrix products (BLAS where enabled) and 8 fused passes, where autodiff of the
 * same block records dozens of kernels. {@link BlockShape} is the shape information every block
 * takes, fused or not (lib/model/transformer.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { attentionBackward, attentionForward } from "./fused_attention.ts";
import { runFused } from "./fused_kernels.ts";
import { keepForBackward } from "./fused_save.ts";
import { need } from "./fused_mode.ts";
import type { GradArgs } from "./fused_ops.ts";
import { matMul } from "./matmul.ts";

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
/** Shape information a block needs besides its input (lib/model/transformer.ts and {@link fusedBlock}). */
export interface BlockShape {
  /** Sequences in the batch (B). */
  batch: number;
  /** Tokens per sequence (T). */
  tokens: number;
  heads: number;
  /** LayerNorm epsilon. */
  eps: number;
  /**
   * Additive attention bias on the keys, [B, 1, T]: 0 for real tokens, a large negative number for
   * padding, so padded tokens receive no attention. Absent when nothing is padded.
   */
  keyBias?: tf.Tensor3D;
  /**
   * Run the block as one fused op with a hand-written gradient ({@link fusedBlock}) or as tfjs ops
   * with autodiff (lib/model/transformer.ts `blockForward`). Default: fused where `fusedEnabled`
   * (lib/engine/fused_mode.ts) says so (wasm). {@link fusedBlock} itself ignores it.
   */
  fused?: boolean;
  /**
   * Keep only the last `keepLast` tokens of each sequence in the output, [B*keepLast, D] (default:
   * all T). Attention still reads every token's key and value; the rows after it (projection,
   * residual, MLP) are computed for the kept tokens only. The predictor's last block keeps its mask
   * tokens, the only rows the loss reads: the same outputs and gradients as the whole block followed
   * by a slice, with about half of that block's products.
   */
  keepLast?: number;
  /**
   * Keep only these rows (indices into the B*T rows) after attention, [keepRows.length,
   * D], for a forward pass only (no gradient): the target encoder's last block, whose rows outside
   * every target block nothing reads. Not with `keepLast`.
   */
  keepRows?: Int32Array;
}

/**
 * The rows after attention, x [B*T, D] -> [rows, D]: the last `keepLast` tokens of each sequence,
 * or the `keepRows`, or all (x itself). Checks both options.
 */
export function keptRows(x: tf.Tensor2D, s: BlockShape): tf.Tensor2D {
  if (s.keepRows) {
    checkKeepRows(s);
    const rows = s.keepRows;
    return tf.tidy(() => tf.gather(x, tf.tensor1d(rows, "int32")));
  }
  return lastTokens(x, s.batch, s.tokens, keptTokens(s));
}

/** Throws unless `keepRows` (where given) are row indices of the block and `keepLast` is unset. */
function checkKeepRows(s: BlockShape): void {
  if (!s.keepRows) return;
  if (s.keepLast !== undefined) throw new Error("block: keepRows and keepLast do not go together");
  const R = s.batch * s.tokens;
  if (!s.keepRows.every((r) => r >= 0 && r < R)) {
    throw new Error(`block: keepRows must be row indices in [0, ${R}) (the B*T rows)`);
  }
}

/** The tokens per sequence a block outputs: `keepLast`, checked, else all of them. */
export function keptTokens(s: BlockShape): number {
  const k = s.keepLast ?? s.tokens;
  if (!Number.isInteger(k) || k < 1 || k > s.tokens) {
    throw new Error(
      `block: expected keepLast an integer in [1, ${s.tokens}] (the tokens), got ${s.keepLast}`,
    );
  }
  return k;
}

/** Rows of the last k tokens of each sequence: x [B*T, D] -> [B*k, D] (x itself when k = T). */
function lastTokens(x: tf.Tensor2D, batch: number, tokens: number, k: number): tf.Tensor2D {
  if (k === tokens) return x;
  const D = x.shape[1];
  return x.reshape([batch, tokens, D]).slice([0, tokens - k, 0], [batch, k, D]).reshape([batch * k, D]);
}

/** The adjoint of {@link lastTokens}: [B*k, D] -> [B*T, D], zeros in the rows it left out. */
function padTokens(x: tf.Tensor2D, batch: number, tokens: number, k: number): tf.Tensor2D {
  if (k === tokens) return x;
  const D = x.shape[1];
  return tf.pad(x.reshape([batch, k, D]), [[0, 0], [tokens - k, 0], [0, 0]]).reshape([batch * tokens, D]);
}

/**
 * One pre-norm transformer block on x [B*T, D], weights in {@link BLOCK_PARAMS} order:
 *
 *     x1 = x + proj(attention(LN1(x)))     attention per head: softmax(q k^T / sqrt(hd) + keyBias) v
 *     y  = x1 + fc2(gelu(fc1(LN2(x1))))
 *
 * With `keepLast` (K), x1 and y are the rows of each sequence's last K tokens only, y [B*K, D]; with
 * `keepRows`, those rows, y [keepRows.length, D] (forward only).
 *
 * Heads are laid out [B*H, T, hd] by one copy pass (no rank-4/5 transposes), with the QKV bias and
 * the 1/sqrt(hd) scale folded into that pass. The backward pass is written out by hand.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { BLOCK_PARAMS, fusedBlock } from "./fused_block.ts";
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
export function fusedBlock(x: tf.Tensor2D, weights: readonly tf.Tensor[], s: BlockShape): tf.Tensor2D {
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
  const K = keptTokens(s);
  checkKeepRows(s);
  const scale = 1 / Math.sqrt(D / H);
  const heads = { batch: B, tokens: T, heads: H };
  const f = tf.customGrad((...args: GradArgs) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xx = args[0] as tf.Tensor2D;
    const [g1, b1n, wqkv, bqkv, wproj, bproj, g2, b2n, w1, b1, w2, b2] = args.slice(1, 13) as tf.Tensor2D[];
    const [h1, st1] = runFused("IjLayerNorm", { x: xx, gamma: g1, beta: b1n }, { eps }) as tf.Tensor2D[]; // [R, D]
    const qkv = matMul(h1, wqkv); // [R, 3D], bias added by the attention
    const att = attentionForward(qkv, bqkv, keyBias, heads, scale);
    const o = keptRows(att.o, s); // [rows, D]; from here on, only the kept rows
    const x1 = runFused("IjResidual", {
      x: keptRows(xx, s),
      y: matMul(o, wproj),
      bias: bproj,
    }) as tf.Tensor2D;
    const [h2, st2] = runFused("IjLayerNorm", { x: x1, gamma: g2, beta: b2n }, { eps }) as tf.Tensor2D[];
    const u = matMul(h2, w1); // [B*K, F], bias added inside the GELU
    const m = runFused("IjBiasGelu", { u, bias: b1 }) as tf.Tensor2D; // [B*K, F]
    const y = runFused("IjResidual", { x: x1, y: matMul(m, w2), bias: b2 }) as tf.Tensor2D; // [B*K, D]
    // Weights that are variables outlive the backward pass, so the gradient reads them directly;
    // saving makes tfjs keep a clone (an Identity kernel call) of each. The intermediates are kept
    // without a clone (lib/engine/fused_save.ts): 13 calls a block fewer.
    const ws = [g1, wqkv, wproj, g2, w1, b1, w2];
    const wIdx = [0, 2, 4, 6, 8, 9, 10]; // their places in `weights` (BLOCK_PARAMS order)
    const wSaved = ws.filter((_, i) => !(weights[wIdx[i]] instanceof tf.Variable));
    const nAtt = att.saved.length;
    const take = keepForBackward(save, [xx, ...wSaved], [st1, h1, o, x1, st2, h2, u, m, ...att.saved]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const kept = take();
        if (s.keepRows) {
          tf.dispose(kept);
          throw new Error("fusedBlock: keepRows is for forward passes; it has no gradient");
        }
        const grads = tf.tidy(() => {
          const sx = saved[0] as tf.Tensor2D;
          const [sst1, sh1, so, sx1, sst2, sh2, su, sm] = kept as tf.Tensor2D[];
          const sAtt = kept.slice(kept.length - nAtt);
          let next = 1;
          const w = (i: number) =>
            (weights[wIdx[i]] instanceof tf.Variable ? weights[wIdx[i]] : saved[next++]) as tf.Tensor2D;
          const [sg1, swqkv, swproj, sg2, sw1, sb1, sw2] = [0, 1, 2, 3, 4, 5, 6].map(w);
          const d = dy as tf.Tensor2D; // [B*K, D], also the gradient of x1 through the residual
          // MLP
          const db2 = runFused("IjColSum", { x: d }) as tf.Tensor;
          const dw2 = matMul(sm, d, true, false); // [F, D]
          const dm = matMul(d, sw2, false, true); // [B*K, F]
          const [du, db1] = runFused("IjBiasGeluGrad", { dy: dm, u: su, bias: sb1, y: sm }) as tf.Tensor2D[];
          const dw1 = matMul(sh2, du, true, false); // [D, F]
          const dh2 = matMul(du, sw1, false, true); // [B*K, D]
          const [dx1, dg2, db2n] = runFused(
            "IjLayerNormGrad",
            { dy: dh2, x: sx1, stats: sst2, gamma: sg2, dres: d },
          ) as tf.Tensor2D[]; // dx1 [B*K, D]: both paths into x1
          // attention
          const dbproj = runFused("IjColSum", { x: dx1 }) as tf.Tensor;
          const dwproj = matMul(so, dx1, true, false); // [D, D]
          const dO = padTokens(matMul(dx1, swproj, false, true), B, T, K); // [R, D]
          const [dqkv, dbqkv] = attentionBackward(dO, sAtt, heads, scale); // [R, 3D], [3D]
          const dwqkv = matMul(sh1, dqkv, true, false); // [D, 3D]
          const dh1 = matMul(dqkv, swqkv, false, true); // [R, D]
          const [dx, dg1, db1n] = runFused(
            "IjLayerNormGrad",
            { dy: dh1, x: sx, stats: sst1, gamma: sg1, dres: padTokens(dx1, B, T, K) },
          ) as tf.Tensor2D[];
          return [dx, dg1, db1n, dwqkv, dbqkv, dwproj, dbproj, dg2, db2n, dw1, db1, dw2, db2];
        });
        tf.dispose(kept);
        return grads;
      },
    };
  });
  return f(x, ...weights) as tf.Tensor2D;
}
