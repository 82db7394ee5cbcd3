/**
 * The backward kernels matching lib/engine/fused_forward_kernels.ts, each a {@link Spec}: the
 * LayerNorm, GELU and softmax gradients, merging head gradients back into rows, column sums (bias
 * gradients) and the smooth-L1 gradient. Sums over rows accumulate in float64.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  CHUNK_ROWS,
  colSumInto,
  erf,
  expNeg,
  headsToRows,
  INV_SQRT_2PI,
  rowsCols,
  SQRT1_2,
} from "./fused_math.ts";
import type { Spec } from "./fused_spec.ts";
import { rowsCall } from "./parallel_kernels.ts";
import type { SimdModule } from "./fused_simd.ts";

/**
 * Run a kernel that writes, besides its rows, `outs.length` rows of C partial column sums per chunk
 * of {@link CHUNK_ROWS} rows, split between threads by whole chunks; then add the chunks' partial
 * sums in float64, in order, into `outs` (one per part). `args(r0, r1, part)` gives the arguments for
 * rows [r0, r1) with `part` where that range's partial sums go. The chunks are the same however
 * the rows are split, so the sums' bits are too.
 */
function chunkedSums(
  k: SimdModule,
  name: string,
  R: number,
  C: number,
  outs: number[],
  args: (r0: number, r1: number, part: number) => number[],
): void {
  const chunks = Math.ceil(R / CHUNK_ROWS), width = outs.length * C;
  const acc = k.scratch(4 * chunks * width + 8 * C + 64), part = acc + 8 * C;
  rowsCall(k, name, chunks, CHUNK_ROWS * C, (c0, c1) => {
    const r0 = c0 * CHUNK_ROWS;
    return args(r0, Math.min(R, c1 * CHUNK_ROWS), part + 4 * c0 * width);
  });
  // outs.length parts interleave by chunk: chunk c's part p at row c * outs.length + p
  for (const [p, out] of outs.entries()) {
    k.f.ij_col_sum_strided(part + 4 * p * C, out, acc, chunks, C, width);
  }
}

/** out [C] = column sums of x [R, C] (pointers): float32 within chunks, float64 over them. */
function colSums(k: SimdModule, x: number, out: number, R: number, C: number): void {
  chunkedSums(k, "ij_col_sum_part", R, C, [out], (r0, r1, part) => [x + 4 * r0 * C, part, r1 - r0, C]);
}

export const layerNormGrad: Spec = {
  outputs: (s) => [s.x, [s.x[s.x.length - 1]], [s.x[s.x.length - 1]]],
  simd(k, x, [dx, dgamma, dbeta], s) {
    const [R, D] = rowsCols(s.x);
    const gamma = x.gamma ?? 0, dres = x.dres ?? 0;
    chunkedSums(k, "ij_layer_norm_grad", R, D, [dgamma, dbeta], (r0, r1, part) => {
      const off = 4 * r0 * D;
      return [x.dy + off, x.x + off, x.stats + 8 * r0, gamma, dres && dres + off, dx + off, part, r1 - r0, D];
    });
  },
  run({ dy, x, stats, gamma, dres }, [dx, dgamma, dbeta], s) {
    const [R, D] = rowsCols(s.x);
    const gsum = new Float64Array(D), bsum = new Float64Array(D);
    const g = new Float64Array(D); // this row's dy * gamma
    for (let r = 0, o = 0; r < R; r++, o += D) {
      const mean = stats[2 * r], rstd = stats[2 * r + 1];
      let sg = 0, sgx = 0;
      for (let j = 0; j < D; j++) {
        const d = dy[o + j];
        const xh = (x[o + j] - mean) * rstd;
        gsum[j] += d * xh;
        bsum[j] += d;
        const gj = gamma ? d * gamma[j] : d;
        g[j] = gj;
        sg += gj;
        sgx += gj * xh;
      }
      sg /= D;
      sgx /= D;
      if (dres) {
        for (let j = 0; j < D; j++) {
          dx[o + j] = dres[o + j] + rstd * (g[j] - sg - (x[o + j] - mean) * rstd * sgx);
        }
      } else {
        for (let j = 0; j < D; j++) dx[o + j] = rstd * (g[j] - sg - (x[o + j] - mean) * rstd * sgx);
      }
    }
    dgamma.set(gsum);
    dbeta.set(bsum);
  },
};

export const biasGeluGrad: Spec = {
  outputs: (s) => [s.u, [s.u[s.u.length - 1]]],
  simd(k, x, [du, dbias], s) {
    const [R, F] = rowsCols(s.u);
    const bias = x.bias ?? 0, y = x.y ?? 0;
    chunkedSums(k, "ij_bias_gelu_grad", R, F, [dbias], (r0, r1, part) => {
      const off = 4 * r0 * F;
      return [x.dy + off, x.u + off, bias, y && y + off, du + off, part, r1 - r0, F];
    });
  },
  run({ dy, u, bias: b, y }, [du, dbias], s) {
    const [R, F] = rowsCols(s.u);
    const bias = b ?? new Float32Array(F);
    const acc = new Float64Array(F);
    for (let r = 0, o = 0; r < R; r++, o += F) {
      for (let j = 0; j < F; j++) {
        const v = u[o + j] + bias[j];
        // d/dv [v * Phi(v)] = Phi(v) + v * phi(v); Phi from the forward output y = v * Phi(v)
        // when given (its Taylor expansion near 0), else from erf
        const cdf = !y
          ? 0.5 * (1 + erf(v * SQRT1_2))
          : v < 1e-3 && v > -1e-3
          ? 0.5 + v * INV_SQRT_2PI
          : y[o + j] / v;
        const d = dy[o + j] * (cdf + v * INV_SQRT_2PI * expNeg(-0.5 * v * v));
        du[o + j] = d;
        acc[j] += d;
      }
    }
    dbias.set(acc);
  },
};

export const mergeHeads: Spec = {
  outputs(s, a) {
    const [BH, T, hd] = s.dq;
    const H = a.heads as number;
    return [[(BH / H) * T, 3 * H * hd], [3 * H * hd]];
  },
  simd(k, x, [dqkv, dbias], s, a) {
    const [BH, T, hd] = s.dq;
    const H = a.heads as number, B = BH / H, D = H * hd, W = 3 * D;
    // by batch items: item i's heads start at i*T*D in dq, dk and dv, its rows at i*T*W in dqkv
    const merge = (src: number, col0: number, scale: number) =>
      rowsCall(k, "ij_heads_to_rows", B, T * D, (b0, b1) => [
        src + 4 * b0 * T * D,
        dqkv + 4 * b0 * T * W,
        W,
        col0,
        b1 - b0,
        T,
        H,
        hd,
        scale,
      ]);
    merge(x.dq, 0, a.scale as number);
    merge(x.dk, D, 1);
    merge(x.dv, 2 * D, 1);
    colSums(k, dqkv, dbias, B * T, W);
  },
  run({ dq, dk, dv }, [dqkv, dbias], s, a) {
    const [BH, T, hd] = s.dq;
    const H = a.heads as number, B = BH / H, D = H * hd, W = 3 * D;
    headsToRows(dq, dqkv, W, 0, B, T, H, hd, a.scale as number);
    headsToRows(dk, dqkv, W, D, B, T, H, hd, 1);
    headsToRows(dv, dqkv, W, 2 * D, B, T, H, hd, 1);
    colSumInto(dqkv, B * T, W, dbias);
  },
};

export const softmaxGrad: Spec = {
  outputs: (s) => [s.p],
  simd(k, x, [ds], s) {
    const [R, C] = rowsCols(s.p);
    rowsCall(
      k,
      "ij_softmax_grad",
      R,
      C,
      (r0, r1) => [x.p + 4 * r0 * C, x.dp + 4 * r0 * C, ds + 4 * r0 * C, r1 - r0, C],
    );
  },
  run({ p, dp }, [ds], s) {
    const [R, C] = rowsCols(s.p);
    for (let r = 0, o = 0; r < R; r++, o += C) {
      let dot = 0;
      for (let j = 0; j < C; j++) dot += dp[o + j] * p[o + j];
      for (let j = 0; j < C; j++) ds[o + j] = p[o + j] * (dp[o + j] - dot);
    }
  },
};

export const colSum: Spec = {
  outputs: (s) => [[s.x[s.x.length - 1]]],
  simd(k, x, [out], s) {
    const [R, C] = rowsCols(s.x);
    colSums(k, x.x, out, R, C);
  },
  run({ x }, [out], s) {
    const [R, C] = rowsCols(s.x);
    colSumInto(x, R, C, out);
  },
};

export const smoothL1Grad: Spec = {
  outputs: (s) => [s.d],
  simd(k, x, [dd], s) {
    k.f.ij_smooth_l1_grad(x.d, x.dy, dd, tf.util.sizeFromShape(s.d));
  },
  run({ d, dy }, [dd]) {
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      dd[i] = dy[i] * (v > 1 ? 1 : v < -1 ? -1 : v);
    }
  },
};
