/**
 * The arithmetic the fused kernels' TypeScript loops share: erf and exp approximations, and the
 * copies between [B*T, D] rows and [B*H, T, hd] heads.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

export const SQRT1_2 = Math.SQRT1_2;
export const INV_SQRT_2PI = 0.3989422804014327;

/**
 * erf(x) as a rational function of x (Eigen's float32 approximation, used by TensorFlow/XLA):
 * within 2 float32 ulps of the exact erf, with no exp. The official code's nn.GELU uses the exact erf.
 */
export function erf(x: number): number {
  if (x > 4) x = 4;
  else if (x < -4) x = -4;
  const x2 = x * x, x4 = x2 * x2, x8 = x4 * x4;
  // Estrin's scheme: short dependency chains, so loop iterations overlap.
  const p = (-1.60960333262415e-02 + -2.95459980854025e-03 * x2) +
    x4 * (-7.34990630326855e-04 + -5.69250639462346e-05 * x2) +
    x8 * ((-2.10102402082508e-06 + 2.77068142495902e-08 * x2) + x4 * -2.72614225801306e-10);
  const q = (-1.42647390514189e-02 + -7.37332916720468e-03 * x2) +
    x4 * (-1.68282697438203e-03 + -2.13374055278905e-04 * x2) + x8 * -1.45660718464996e-05;
  return x * p / q;
}

/** 2^n for integer n in [-160, 0], so expNeg needs no Math.pow. */
const POW2 = Float64Array.from({ length: 161 }, (_, i) => 2 ** (i - 160));

/**
 * exp(x) for x <= 0 (softmax after the max is subtracted, the Gaussian in GELU's gradient):
 * 2^n * 2^f with f in [-0.5, 0.5] and a degree-7 Taylor polynomial, relative error < 1e-8, about
 * 3x faster than Math.exp here.
 */
export function expNeg(x: number): number {
  if (x < -103) return 0; // below float32's smallest subnormal
  const y = x * 1.4426950408889634; // log2(e)
  const n = Math.round(y);
  const f = (y - n) * 0.6931471805599453; // |f| <= ln(2)/2
  const f2 = f * f;
  const p = (1 + f) + f2 * (0.5 + f * 0.16666666666666666) +
    f2 * f2 * ((0.041666666666666664 + f * 0.008333333333333333) +
        f2 * (0.001388888888888889 + f * 0.0001984126984126984));
  return p * POW2[n + 160];
}

/** A shape as [rows, last axis]. */
export function rowsCols(shape: number[]): [number, number] {
  const c = shape[shape.length - 1];
  return [c === 0 ? 0 : tf.util.sizeFromShape(shape) / c, c];
}

/** [B*T, W] rows, column block `col0 .. col0+hd` of head h -> [B*H, T, hd] (optionally + bias, * scale). */
export function rowsToHeads(
  src: Float32Array,
  W: number,
  col0: number,
  dst: Float32Array,
  B: number,
  T: number,
  H: number,
  hd: number,
  bias: Float32Array | undefined,
  scale: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const c = col0 + h * hd;
      let d = (b * H + h) * T * hd;
      for (let t = 0; t < T; t++) {
        const s = (b * T + t) * W + c;
        if (bias) {
          for (let j = 0; j < hd; j++) dst[d + j] = (src[s + j] + bias[c + j]) * scale;
        } else if (scale !== 1) {
          for (let j = 0; j < hd; j++) dst[d + j] = src[s + j] * scale;
        } else {
          dst.set(src.subarray(s, s + hd), d);
        }
        d += hd;
      }
    }
  }
}

/** The inverse of rowsToHeads (times `scale`): [B*H, T, hd] into columns `col0 ..` of [B*T, W]. */
export function headsToRows(
  src: Float32Array,
  dst: Float32Array,
  W: number,
  col0: number,
  B: number,
  T: number,
  H: number,
  hd: number,
  scale: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const c = col0 + h * hd;
      let s = (b * H + h) * T * hd;
      for (let t = 0; t < T; t++) {
        const d = (b * T + t) * W + c;
        if (scale !== 1) {
          for (let j = 0; j < hd; j++) dst[d + j] = src[s + j] * scale;
        } else {
          dst.set(src.subarray(s, s + hd), d);
        }
        s += hd;
      }
    }
  }
}

/**
 * Rows per partial sum in the SIMD kernels that sum over rows (CHUNK in lib/engine/simd/kernels.c):
 * each chunk sums in float32 and the chunks' sums add in float64, so threads can take whole chunks.
 */
export const CHUNK_ROWS = 32;

/** Column sums of x [R, C] into out [C], accumulated in float64. */
export function colSumInto(x: Float32Array, R: number, C: number, out: Float32Array): void {
  const acc = new Float64Array(C);
  for (let r = 0, o = 0; r < R; r++, o += C) for (let j = 0; j < C; j++) acc[j] += x[o + j];
  out.set(acc);
}
