/**
 * The fused attention kernels `IjAttention` and `IjAttentionGrad` (a TypeScript loop each, and the
 * SIMD calls of lib/engine/simd/kernels.c `ij_attention`, `ij_attention_grad`), registered by
 * lib/engine/fused_kernels.ts and used by lib/engine/fused_attention.ts.
 *
 * @module
 */
import { expNeg } from "./fused_math.ts";
import type { Spec } from "./fused_spec.ts";
import { rowsCall } from "./parallel_kernels.ts";

function dims(qkvShape: number[], a: Record<string, number | boolean>) {
  const B = a.batch as number, T = a.tokens as number, H = a.heads as number;
  const W = qkvShape[1], D = W / 3;
  return { B, T, H, W, D, hd: D / H, scale: a.scale as number };
}

/**
 * `IjAttention`: qkv [B*T, 3D] (bias added), keyBias [B, 1, T]? -> o [B*T, D], p [B*H, T, T]
 * (the attention weights, kept for the backward pass). Attributes batch, tokens, heads, scale.
 */
export const attention: Spec = {
  outputs(s, a) {
    const { B, T, H, D } = dims(s.qkv, a);
    return [[B * T, D], [B * H, T, T]];
  },
  simd(k, x, [o, p], s, a) {
    const { B, T, H, hd, scale } = dims(s.qkv, a);
    rowsCall(k, "ij_attention", B * H, T * (T + hd), (u0, u1) => [
      x.qkv,
      x.keyBias ?? 0,
      p,
      o,
      u0,
      u1,
      T,
      H,
      hd,
      scale,
    ]);
  },
  run({ qkv, keyBias }, [o, p], s, a) {
    const { B, T, H, W, D, hd, scale } = dims(s.qkv, a);
    for (let bh = 0; bh < B * H; bh++) {
      const b = Math.floor(bh / H), q0 = b * T * W + (bh % H) * hd;
      for (let i = 0; i < T; i++) {
        const r = (bh * T + i) * T;
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          let t = 0;
          for (let d = 0; d < hd; d++) t += qkv[q0 + i * W + d] * qkv[q0 + D + j * W + d];
          const v = t * scale + (keyBias ? keyBias[b * T + j] : 0);
          p[r + j] = v;
          if (v > max) max = v;
        }
        let sum = 0;
        for (let j = 0; j < T; j++) sum += p[r + j] = expNeg(p[r + j] - max);
        for (let j = 0; j < T; j++) p[r + j] *= 1 / sum;
        const out = (b * T + i) * D + (bh % H) * hd;
        for (let d = 0; d < hd; d++) {
          let t = 0;
          for (let j = 0; j < T; j++) t += p[r + j] * qkv[q0 + 2 * D + j * W + d];
          o[out + d] = t;
        }
      }
    }
  },
};

/**
 * `IjAttentionGrad`: qkv [B*T, 3D] (as given to `IjAttention`), p (its weights), dout [B*T, D] ->
 * dqkv [B*T, 3D] (no bias gradient: that is its column sum), ds [B*H, T, T] (the scores' gradient,
 * times scale).
 */
export const attentionGrad: Spec = {
  outputs(s, a) {
    const { B, T, H } = dims(s.qkv, a);
    return [s.qkv, [B * H, T, T]];
  },
  simd(k, x, [dqkv, ds], s, a) {
    const { B, T, H, hd, scale } = dims(s.qkv, a);
    rowsCall(k, "ij_attention_grad", B * H, T * (T + hd), (u0, u1) => [
      x.qkv,
      x.p,
      x.dout,
      dqkv,
      ds,
      u0,
      u1,
      T,
      H,
      hd,
      scale,
    ]);
  },
  run({ qkv, p, dout }, [dqkv, ds], s, a) {
    const { B, T, H, W, D, hd, scale } = dims(s.qkv, a);
    for (let bh = 0; bh < B * H; bh++) {
      const b = Math.floor(bh / H), c = (bh % H) * hd;
      const q0 = b * T * W + c, o0 = b * T * D + c, m = bh * T * T;
      for (let i = 0; i < T; i++) {
        // ds = scale * p * (dp - rowsum(dp * p)), dp = dout v^T
        let dot = 0;
        for (let j = 0; j < T; j++) {
          let t = 0;
          for (let d = 0; d < hd; d++) t += dout[o0 + i * D + d] * qkv[q0 + 2 * D + j * W + d];
          ds[m + i * T + j] = t;
          dot += t * p[m + i * T + j];
        }
        for (let j = 0; j < T; j++) {
          ds[m + i * T + j] = p[m + i * T + j] * (ds[m + i * T + j] - dot) * scale;
        }
      }
      for (let i = 0; i < T; i++) {
        for (let d = 0; d < hd; d++) {
          let dq = 0, dk = 0, dv = 0;
          for (let j = 0; j < T; j++) {
            dq += ds[m + i * T + j] * qkv[q0 + D + j * W + d]; // dq_i = ds_i. k
            dk += ds[m + j * T + i] * qkv[q0 + j * W + d]; // dk_i = ds_.i q
            dv += p[m + j * T + i] * dout[o0 + j * D + d]; // dv_i = p_.i dout
          }
          dqkv[q0 + i * W + d] = dq;
          dqkv[q0 + D + i * W + d] = dk;
          dqkv[q0 + 2 * D + i * W + d] = dv;
        }
      }
    }
  },
};
