/**
 * The forward kernels of a transformer block and the loss, each a {@link Spec} (output shapes, a
 * TypeScript loop and the SIMD call): LayerNorm, bias + GELU, the head layout copies, softmax with
 * a key bias, residual and bias adds, smooth-L1. lib/engine/fused_kernels.ts registers them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { erf, expNeg, headsToRows, rowsCols, rowsToHeads, SQRT1_2 } from "./fused_math.ts";
import type { Spec } from "./fused_spec.ts";
import { rowsCall } from "./parallel_kernels.ts";

export const layerNorm: Spec = {
  outputs: (s) => [s.x, [rowsCols(s.x)[0], 2]],
  simd(k, x, [y, stats], s, a) {
    const [R, D] = rowsCols(s.x);
    const g = x.gamma ?? 0, b = x.beta ?? 0, eps = a.eps as number;
    rowsCall(
      k,
      "ij_layer_norm",
      R,
      D,
      (r0, r1) => [x.x + 4 * r0 * D, g, b, y + 4 * r0 * D, stats + 8 * r0, r1 - r0, D, eps],
    );
  },
  run({ x, gamma, beta }, [y, stats], s, a) {
    const [R, D] = rowsCols(s.x);
    const eps = a.eps as number;
    const D4 = D - (D % 4);
    for (let r = 0, o = 0; r < R; r++, o += D) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let j = 0;
      for (; j < D4; j += 4) {
        s0 += x[o + j];
        s1 += x[o + j + 1];
        s2 += x[o + j + 2];
        s3 += x[o + j + 3];
      }
      for (; j < D; j++) s0 += x[o + j];
      const mean = (s0 + s1 + s2 + s3) / D;
      let v0 = 0, v1 = 0, v2 = 0, v3 = 0;
      for (j = 0; j < D4; j += 4) {
        const d0 = x[o + j] - mean, d1 = x[o + j + 1] - mean;
        const d2 = x[o + j + 2] - mean, d3 = x[o + j + 3] - mean;
        v0 += d0 * d0;
        v1 += d1 * d1;
        v2 += d2 * d2;
        v3 += d3 * d3;
      }
      for (; j < D; j++) {
        const d = x[o + j] - mean;
        v0 += d * d;
      }
      const rstd = 1 / Math.sqrt((v0 + v1 + v2 + v3) / D + eps);
      stats[2 * r] = mean;
      stats[2 * r + 1] = rstd;
      if (gamma) {
        for (j = 0; j < D; j++) y[o + j] = (x[o + j] - mean) * rstd * gamma[j] + beta[j];
      } else {
        for (j = 0; j < D; j++) y[o + j] = (x[o + j] - mean) * rstd;
      }
    }
  },
};

export const biasGelu: Spec = {
  outputs: (s) => [s.u],
  simd(k, x, [y], s) {
    const [R, F] = rowsCols(s.u);
    const bias = x.bias ?? 0;
    rowsCall(k, "ij_bias_gelu", R, F, (r0, r1) => [x.u + 4 * r0 * F, bias, y + 4 * r0 * F, r1 - r0, F]);
  },
  run({ u, bias: b }, [y], s) {
    const [R, F] = rowsCols(s.u);
    const bias = b ?? new Float32Array(F);
    for (let r = 0, o = 0; r < R; r++, o += F) {
      for (let j = 0; j < F; j++) {
        const v = u[o + j] + bias[j];
        y[o + j] = 0.5 * v * (1 + erf(v * SQRT1_2));
      }
    }
  },
};

export const splitHeads: Spec = {
  outputs(s, a) {
    const B = a.batch as number, T = a.tokens as number, H = a.heads as number;
    const hd = s.qkv[1] / 3 / H;
    return [[B * H, T, hd], [B * H, T, hd], [B * H, T, hd]];
  },
  simd(k, x, [q, kk, v], s, a) {
    const B = a.batch as number, T = a.tokens as number, H = a.heads as number;
    const W = s.qkv[1], D = W / 3, hd = D / H, b = x.bias ?? 0;
    // by batch items: item i's rows start at i*T*W in qkv and its heads at i*H*T*hd in q, k and v
    const split = (col0: number, dst: number, scale: number) =>
      rowsCall(k, "ij_rows_to_heads", B, T * D, (b0, b1) => [
        x.qkv + 4 * b0 * T * W,
        W,
        col0,
        dst + 4 * b0 * T * D,
        b1 - b0,
        T,
        H,
        hd,
        b,
        scale,
      ]);
    split(0, q, a.scale as number);
    split(D, kk, 1);
    split(2 * D, v, 1);
  },
  run({ qkv, bias }, [q, k, v], s, a) {
    const B = a.batch as number, T = a.tokens as number, H = a.heads as number;
    const W = s.qkv[1], D = W / 3, hd = D / H;
    rowsToHeads(qkv, W, 0, q, B, T, H, hd, bias, a.scale as number);
    rowsToHeads(qkv, W, D, k, B, T, H, hd, bias, 1);
    rowsToHeads(qkv, W, 2 * D, v, B, T, H, hd, bias, 1);
  },
};

export const headsToRowsK: Spec = {
  outputs(s, a) {
    const [BH, T, hd] = s.x;
    const H = a.heads as number;
    return [[(BH / H) * T, H * hd]];
  },
  simd(k, x, [y], s, a) {
    const [BH, T, hd] = s.x;
    const H = a.heads as number;
    const W = H * hd;
    rowsCall(
      k,
      "ij_heads_to_rows",
      BH / H,
      T * W,
      (b0, b1) => [x.x + 4 * b0 * T * W, y + 4 * b0 * T * W, W, 0, b1 - b0, T, H, hd, 1],
    );
  },
  run({ x }, [y], s, a) {
    const [BH, T, hd] = s.x;
    const H = a.heads as number;
    headsToRows(x, y, H * hd, 0, BH / H, T, H, hd, 1);
  },
};

export const rowsToHeadsK: Spec = {
  outputs(s, a) {
    const B = a.batch as number, T = a.tokens as number, H = a.heads as number;
    return [[B * H, T, s.x[1] / H]];
  },
  simd(k, x, [y], s, a) {
    const B = a.batch as number, T = a.tokens as number, H = a.heads as number;
    k.f.ij_rows_to_heads(x.x, s.x[1], 0, y, B, T, H, s.x[1] / H, 0, 1);
  },
  run({ x }, [y], s, a) {
    const B = a.batch as number, T = a.tokens as number, H = a.heads as number;
    rowsToHeads(x, s.x[1], 0, y, B, T, H, s.x[1] / H, undefined, 1);
  },
};

export const softmax: Spec = {
  outputs: (s) => [s.s],
  simd(k, x, [y], sh, a) {
    const [BH, T, Tk] = sh.s;
    const H = a.heads as number, kb = x.keyBias ?? 0, per = H * T * Tk;
    // by batch items (H rows of heads each), so that each share's key bias starts at its first item
    rowsCall(
      k,
      "ij_softmax",
      BH / H,
      per,
      (b0, b1) => [x.s + 4 * b0 * per, kb ? kb + 4 * b0 * Tk : 0, y + 4 * b0 * per, (b1 - b0) * H, T, Tk, H],
    );
  },
  run({ s: x, keyBias }, [y], sh, a) {
    const [BH, T, Tk] = sh.s;
    const H = a.heads as number;
    for (let bh = 0; bh < BH; bh++) {
      const kb = keyBias ? Math.floor(bh / H) * Tk : -1;
      for (let t = 0; t < T; t++) {
        const o = (bh * T + t) * Tk;
        let max = -Infinity;
        if (kb >= 0) {
          for (let j = 0; j < Tk; j++) {
            const v = x[o + j] + keyBias[kb + j];
            y[o + j] = v;
            if (v > max) max = v;
          }
        } else {
          for (let j = 0; j < Tk; j++) {
            const v = x[o + j];
            y[o + j] = v;
            if (v > max) max = v;
          }
        }
        let sum = 0;
        for (let j = 0; j < Tk; j++) {
          const e = expNeg(y[o + j] - max);
          y[o + j] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let j = 0; j < Tk; j++) y[o + j] *= inv;
      }
    }
  },
};

export const residual: Spec = {
  outputs: (s) => [s.x],
  simd(k, x, [out], s) {
    const [R, D] = rowsCols(s.x);
    rowsCall(
      k,
      "ij_residual",
      R,
      D,
      (r0, r1) => [x.x + 4 * r0 * D, x.y + 4 * r0 * D, x.bias, out + 4 * r0 * D, r1 - r0, D],
    );
  },
  run({ x, y, bias }, [out], s) {
    const [R, D] = rowsCols(s.x);
    for (let r = 0, o = 0; r < R; r++, o += D) {
      for (let j = 0; j < D; j++) out[o + j] = x[o + j] + y[o + j] + bias[j];
    }
  },
};

export const biasAdd: Spec = {
  outputs: (s) => [s.x],
  simd(k, x, [out], s) {
    const [R, D] = rowsCols(s.x);
    rowsCall(k, "ij_residual", R, D, (r0, r1) => [x.x + 4 * r0 * D, 0, x.bias, out + 4 * r0 * D, r1 - r0, D]);
  },
  run({ x, bias }, [out], s) {
    const [R, D] = rowsCols(s.x);
    for (let r = 0, o = 0; r < R; r++, o += D) {
      for (let j = 0; j < D; j++) out[o + j] = x[o + j] + bias[j];
    }
  },
};

export const smoothL1: Spec = {
  outputs: (s) => [s.d],
  simd(k, x, [y], s) {
    k.f.ij_smooth_l1(x.d, y, tf.util.sizeFromShape(s.d));
  },
  run({ d }, [y]) {
    for (let i = 0; i < d.length; i++) {
      const a = Math.abs(d[i]);
      y[i] = a < 1 ? 0.5 * a * a : a - 0.5;
    }
  },
};
