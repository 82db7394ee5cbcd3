/**
 * The pre-norm transformer block shared by the encoders and the predictor:
 *
 *     x = x + proj(attention(norm1(x)))
 *     x = x + fc2(gelu(fc1(norm2(x))))
 *
 * Tokens travel as a 2-D [B*T, D] matrix between layers so that every linear layer is one plain
 * GEMM. Attention takes each head as a column slice of the fused QKV output, reshaped to [B, T, hd]:
 * no rank-4/5 transposes, which are the slowest kernels on wasm (field notes: 1.05 s of a 1.54 s
 * step went to them). The official code splits heads with a reshape and permute; the result is the
 * same function.
 *
 * On wasm the whole block runs as one op with a hand-written backward (lib/engine/fused_block.ts `fusedBlock`:
 * 6 matrix products and 8 fused passes forward, 12 and 8 backward, where autodiff records dozens of
 * kernels); the tfjs ops below are the reference that cpu runs and the tests compare it with.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { ParamStore } from "./params.ts";
 * import { Rng } from "../engine/rng.ts";
 * import { blockForward, initBlock } from "./transformer.ts";
 * await tf.setBackend("cpu");
 * const p = new ParamStore();
 * initBlock(p, "blocks.0", 8, 16, 1, new Rng(0));
 * const y = blockForward(p, "blocks.0", tf.ones([2 * 3, 8]), { batch: 2, tokens: 3, heads: 2, eps: 1e-6 });
 * if (y.shape.join() !== "6,8") throw new Error(`shape ${y.shape}`);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { BLOCK_PARAMS, type BlockShape, fusedBlock, keptRows } from "../engine/fused_block.ts";
import { fusedEnabled } from "../engine/fused_mode.ts";
import { matMul } from "../engine/matmul.ts";
import { gelu, layerNorm, linear } from "../engine/ops.ts";
import type { ParamStore } from "./params.ts";
import type { Rng } from "../engine/rng.ts";

/** The init std of every linear weight in the official code. */
export const INIT_STD = 0.02;

/**
 * Create one block's parameters under `prefix` (official names). `layerId` is 1-based: as in the
 * official `fix_init_weight`, the two output projections are scaled by 1/sqrt(2 * layerId) so
 * deeper blocks start closer to identity.
 */
export function initBlock(
  p: ParamStore,
  prefix: string,
  width: number,
  hidden: number,
  layerId: number,
  rng: Rng,
): void {
  const rescale = 1 / Math.sqrt(2 * layerId);
  p.fill(`${prefix}.norm1.weight`, [width], 1);
  p.fill(`${prefix}.norm1.bias`, [width], 0);
  p.normal(`${prefix}.attn.qkv.weight`, [width, 3 * width], INIT_STD, rng); // [in, out]
  p.fill(`${prefix}.attn.qkv.bias`, [3 * width], 0);
  p.normal(`${prefix}.attn.proj.weight`, [width, width], INIT_STD * rescale, rng);
  p.fill(`${prefix}.attn.proj.bias`, [width], 0);
  p.fill(`${prefix}.norm2.weight`, [width], 1);
  p.fill(`${prefix}.norm2.bias`, [width], 0);
  p.normal(`${prefix}.mlp.fc1.weight`, [width, hidden], INIT_STD, rng);
  p.fill(`${prefix}.mlp.fc1.bias`, [hidden], 0);
  p.normal(`${prefix}.mlp.fc2.weight`, [hidden, width], INIT_STD * rescale, rng);
  p.fill(`${prefix}.mlp.fc2.bias`, [width], 0);
}

/** Shape information a block needs besides its input (defined in lib/engine/fused_block.ts). */
export type { BlockShape };

/** Multi-head self-attention on x [B*T, D]; returns [B*T, D] before the output projection. */
export function attention(qkv: tf.Tensor2D, s: BlockShape): tf.Tensor2D {
  const { batch: B, tokens: T, heads: H } = s;
  const D = qkv.shape[1] / 3;
  const hd = D / H;
  const scale = 1 / Math.sqrt(hd);
  return tf.tidy(() => {
    const outs: tf.Tensor3D[] = [];
    for (let h = 0; h < H; h++) {
      // head h's q, k and v are column slices of the fused projection (official column order)
      const q = qkv.slice([0, h * hd], [B * T, hd]).mul(scale).reshape([B, T, hd]) as tf.Tensor3D;
      const k = qkv.slice([0, D + h * hd], [B * T, hd]).reshape([B, T, hd]) as tf.Tensor3D;
      const v = qkv.slice([0, 2 * D + h * hd], [B * T, hd]).reshape([B, T, hd]) as tf.Tensor3D;
      let scores = matMul(q, k, false, true) as tf.Tensor3D; // [B, T, T]
      if (s.keyBias) scores = scores.add(s.keyBias);
      outs.push(matMul(tf.softmax(scores) as tf.Tensor3D, v)); // [B, T, hd]
    }
    const o = H === 1 ? outs[0] : tf.concat(outs, 2); // [B, T, D]
    return o.reshape([B * T, D]) as tf.Tensor2D;
  });
}

/** One block forward on x [B*T, D]: [B*T, D], or the kept rows with `keepLast` or `keepRows` (see {@link BlockShape}). */
export function blockForward(p: ParamStore, prefix: string, x: tf.Tensor, s: BlockShape): tf.Tensor2D {
  const w = (n: string) => p.get(`${prefix}.${n}`);
  if (s.fused ?? fusedEnabled()) {
    return fusedBlock(x as tf.Tensor2D, BLOCK_PARAMS.map(w), s);
  }
  return tf.tidy(() => {
    const h1 = layerNorm(x, s.eps, w("norm1.weight") as tf.Tensor1D, w("norm1.bias") as tf.Tensor1D);
    const qkv = linear(h1, w("attn.qkv.weight") as tf.Tensor2D, w("attn.qkv.bias") as tf.Tensor1D); // [B*T, 3D]
    // [rows, D]: with `keepLast` or `keepRows`, the rows after attention are the kept ones only
    const att = keptRows(attention(qkv as tf.Tensor2D, s), s);
    const x1 = keptRows(x as tf.Tensor2D, s)
      .add(linear(att, w("attn.proj.weight") as tf.Tensor2D, w("attn.proj.bias") as tf.Tensor1D));
    const h2 = layerNorm(x1, s.eps, w("norm2.weight") as tf.Tensor1D, w("norm2.bias") as tf.Tensor1D);
    const m = gelu(linear(h2, w("mlp.fc1.weight") as tf.Tensor2D, w("mlp.fc1.bias") as tf.Tensor1D)); // [rows, hidden]
    return x1.add(
      linear(m, w("mlp.fc2.weight") as tf.Tensor2D, w("mlp.fc2.bias") as tf.Tensor1D),
    ) as tf.Tensor2D;
  });
}

/** The additive key-padding bias [B, 1, T] from a validity mask [B*T] (1 real, 0 padding). */
export function keyPaddingBias(valid: Uint8Array, batch: number, tokens: number): tf.Tensor3D {
  if (valid.length !== batch * tokens) {
    throw new Error(`keyPaddingBias: expected ${batch} x ${tokens} flags, got ${valid.length}`);
  }
  const bias = new Float32Array(batch * tokens);
  for (let i = 0; i < bias.length; i++) bias[i] = valid[i] ? 0 : -1e9;
  return tf.tensor3d(bias, [batch, 1, tokens]);
}
