// The fused kernels of lib/engine/fused_kernels.ts as 128-bit WebAssembly SIMD, 4 floats per instruction.
//
// This module imports tfjs-wasm's own linear memory and reads and writes tensors in place: every
// pointer below is a tensor's offset in that memory. It must therefore never touch memory it was
// not given: no stack (no local arrays, nothing whose address is taken), no static data, no libc.
// lib/engine/simd/build.ts checks the linked module for that (no data section, no globals) and embeds it
// in lib/engine/simd/kernels_wasm.ts. Rebuild after editing: `deno run -A lib/engine/simd/build.ts` (needs clang
// and wasm-ld, e.g. Debian clang-14 lld-14).
//
// Each function has a plain TypeScript twin in lib/engine/fused_kernels.ts (the cpu backend's version and
// the reference the tests compare against); the comments there give the maths.

#include <wasm_simd128.h>

typedef v128_t f4;
typedef __SIZE_TYPE__ size_t;

#define SPLAT(v) wasm_f32x4_splat(v)
#define ADD wasm_f32x4_add
#define SUB wasm_f32x4_sub
#define MUL wasm_f32x4_mul
#define LOAD(p) wasm_v128_load(p)
#define STORE(p, v) wasm_v128_store(p, v)

// c + a * b, fused where the module is built with relaxed SIMD (as gemm.c's micro-kernel):
// the polynomials of erf and exp, and attention's dot products. The plain build multiplies, then adds.
#ifdef IJ_FMA
typedef float f32x4_t __attribute__((__vector_size__(16)));
#define MADD(c, a, b) \
  ((f4)__builtin_wasm_relaxed_madd_f32x4((f32x4_t)(a), (f32x4_t)(b), (f32x4_t)(c)))
#else
#define MADD(c, a, b) ADD(c, MUL(a, b))
#endif

static inline float hsum(f4 v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) +
         wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

static inline float hmax(f4 v) {
  float a = wasm_f32x4_extract_lane(v, 0), b = wasm_f32x4_extract_lane(v, 1);
  float c = wasm_f32x4_extract_lane(v, 2), d = wasm_f32x4_extract_lane(v, 3);
  a = a > b ? a : b;
  c = c > d ? c : d;
  return a > c ? a : c;
}

// acc[j..j+3] (float64) += v
static inline void acc4(double* acc, f4 v) {
  wasm_v128_store(acc, wasm_f64x2_add(wasm_v128_load(acc), wasm_f64x2_promote_low_f32x4(v)));
  f4 hi = wasm_i32x4_shuffle(v, v, 2, 3, 2, 3);
  wasm_v128_store(acc + 2, wasm_f64x2_add(wasm_v128_load(acc + 2), wasm_f64x2_promote_low_f32x4(hi)));
}

// erf: Eigen's float32 rational approximation (as TensorFlow/XLA), evaluated with Estrin's scheme.
static inline f4 erf4(f4 x) {
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, SPLAT(-4.f)), SPLAT(4.f));
  f4 x2 = MUL(x, x), x4 = MUL(x2, x2), x8 = MUL(x4, x4);
  f4 p = ADD(MADD(SPLAT(-1.60960333262415e-02f), SPLAT(-2.95459980854025e-03f), x2),
             MADD(MUL(x8, MADD(MADD(SPLAT(-2.10102402082508e-06f), SPLAT(2.77068142495902e-08f), x2),
                               x4, SPLAT(-2.72614225801306e-10f))),
                  x4, MADD(SPLAT(-7.34990630326855e-04f), SPLAT(-5.69250639462346e-05f), x2)));
  f4 q = MADD(MADD(SPLAT(-1.42647390514189e-02f), SPLAT(-7.37332916720468e-03f), x2),
              x4, MADD(MADD(SPLAT(-1.68282697438203e-03f), SPLAT(-2.13374055278905e-04f), x2),
                       x4, SPLAT(-1.45660718464996e-05f)));
  return wasm_f32x4_div(MUL(x, p), q);
}

static inline float erf1(float x) {
  return wasm_f32x4_extract_lane(erf4(SPLAT(x)), 0);
}

// exp(x) for x <= 0: 2^n * e^f with |f| <= ln(2)/2 and Cephes' expf polynomial; exactly 0 below
// -87.3 (float32's smallest normal), so masked keys get exactly zero attention.
static inline f4 expneg4(f4 x0) {
  f4 x = wasm_f32x4_pmax(x0, SPLAT(-87.3f));
  f4 n = wasm_f32x4_nearest(MUL(x, SPLAT(1.44269504088896341f)));
  f4 f = SUB(SUB(x, MUL(n, SPLAT(0.693359375f))), MUL(n, SPLAT(-2.12194440e-4f)));
  f4 p = SPLAT(1.9875691500e-4f);
  p = MADD(SPLAT(1.3981999507e-3f), p, f);
  p = MADD(SPLAT(8.3334519073e-3f), p, f);
  p = MADD(SPLAT(4.1665795894e-2f), p, f);
  p = MADD(SPLAT(1.6666665459e-1f), p, f);
  p = MADD(SPLAT(5.0000001201e-1f), p, f);
  p = ADD(MADD(f, MUL(p, f), f), SPLAT(1.f));
  f4 pow2n = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_v128_and(MUL(p, pow2n), wasm_f32x4_gt(x0, SPLAT(-87.3f)));
}

static inline float expneg1(float x) {
  return wasm_f32x4_extract_lane(expneg4(SPLAT(x)), 0);
}

// ---------------------------------------------------------------------------------------------

// GELU and its derivative on one vector. The loops below run 8 of these side by side: one vector's
// chain (erf's polynomials, then a division) is long, and interleaving 8 independent chains took
// bias + GELU from 2.0 to 1.2 ns an element here.
static inline f4 gelu_vec(f4 v) {
  return MUL(MUL(SPLAT(0.5f), v), ADD(SPLAT(1.f), erf4(MUL(v, SPLAT(0.70710678118654752f)))));
}

// Phi(v), the normal CDF, from the forward output y = v * Phi(v): y / v, or its Taylor expansion
// 0.5 + v / sqrt(2 pi) where |v| < 1e-3 (error < 1e-10 there; y / v would lose digits or be 0/0).
static inline f4 cdf_from_output(f4 y, f4 v) {
  f4 small = wasm_f32x4_lt(wasm_f32x4_abs(v), SPLAT(1e-3f));
  f4 taylor = ADD(SPLAT(0.5f), MUL(v, SPLAT(0.3989422804014327f)));
  return wasm_v128_bitselect(taylor, wasm_f32x4_div(y, v), small);
}

static inline float cdf_from_output1(float y, float v) {
  return (v < 1e-3f && v > -1e-3f) ? 0.5f + v * 0.3989422804014327f : y / v;
}

// gelu'(v) = Phi(v) + v * phi(v); Phi from y when y is given (has_y), else from erf.
static inline f4 gelu_grad_vec(f4 v, f4 y, int has_y) {
  f4 cdf = has_y ? cdf_from_output(y, v)
                 : MUL(SPLAT(0.5f), ADD(SPLAT(1.f), erf4(MUL(v, SPLAT(0.70710678118654752f)))));
  f4 pdf = MUL(SPLAT(0.3989422804014327f), expneg4(MUL(SPLAT(-0.5f), MUL(v, v))));
  return ADD(cdf, MUL(v, pdf));
}

#define ZERO SPLAT(0.f)
#define BIAS(j) (bias ? LOAD(bias + (j)) : ZERO)

// y = gelu(u + bias), u [R, F]; bias may be 0 (absent).
void ij_bias_gelu(const float* u, const float* bias, float* y, int R, int F) {
  for (int r = 0; r < R; r++) {
    const float* ur = u + (size_t)r * F;
    float* yr = y + (size_t)r * F;
    int j = 0;
    for (; j + 32 <= F; j += 32) {
      f4 v[8];
      for (int k = 0; k < 8; k++) v[k] = ADD(LOAD(ur + j + 4 * k), BIAS(j + 4 * k));
      for (int k = 0; k < 8; k++) v[k] = gelu_vec(v[k]);
      for (int k = 0; k < 8; k++) STORE(yr + j + 4 * k, v[k]);
    }
    for (; j + 4 <= F; j += 4) STORE(yr + j, gelu_vec(ADD(LOAD(ur + j), BIAS(j))));
    for (; j < F; j++) {
      float v = ur[j] + (bias ? bias[j] : 0.f);
      yr[j] = 0.5f * v * (1.f + erf1(v * 0.70710678118654752f));
    }
  }
}

// Rows per partial sum in the kernels that also sum over rows (bias and LayerNorm gradients): each
// chunk of CHUNK rows sums its columns in float32, row by row, into one row of `part`; the caller
// adds those rows in float64 (ij_col_sum_strided). Chunks fall at fixed rows, so splitting whole chunks
// between threads leaves the bits alone. Must match CHUNK_ROWS in lib/engine/fused_math.ts.
#define CHUNK 32

// du = dy * gelu'(u + bias) over R rows of F; part [ceil(R / CHUNK), F] = column sums of du by
// chunk. y, the forward output, may be given (else 0): Phi then comes from it instead of another
// erf. Row by row, the chunk's sums in part (in cache); 32 columns at a time, 8 vectors computed
// side by side. Walking the chunk a 32-column strip at a time with the sums in registers read the
// rows with a stride and ran 10% slower on arrays out of cache (2026-12-05, 6144 x 384: 4.4 ms
// against 3.9, one thread); the sums are the same, row by row in order.
void ij_bias_gelu_grad(const float* dy, const float* u, const float* bias, const float* y,
                       float* du, float* part, int R, int F) {
  const int has_y = y != 0;
  for (int r0 = 0; r0 < R; r0 += CHUNK) {
    const int r1 = r0 + CHUNK < R ? r0 + CHUNK : R;
    float* pc = part + (size_t)(r0 / CHUNK) * F;
    for (int j = 0; j < F; j++) pc[j] = 0.f;
    for (int r = r0; r < r1; r++) {
      const size_t o = (size_t)r * F;
      int j = 0;
      for (; j + 32 <= F; j += 32) {
        f4 d[8];
#pragma clang loop unroll(full)
        for (int k = 0; k < 8; k++) {
          f4 v = ADD(LOAD(u + o + j + 4 * k), BIAS(j + 4 * k));
          d[k] = MUL(LOAD(dy + o + j + 4 * k), gelu_grad_vec(v, has_y ? LOAD(y + o + j + 4 * k) : ZERO, has_y));
        }
#pragma clang loop unroll(full)
        for (int k = 0; k < 8; k++) {
          STORE(du + o + j + 4 * k, d[k]);
          STORE(pc + j + 4 * k, ADD(LOAD(pc + j + 4 * k), d[k]));
        }
      }
      for (; j + 4 <= F; j += 4) {
        f4 v = ADD(LOAD(u + o + j), BIAS(j));
        f4 d = MUL(LOAD(dy + o + j), gelu_grad_vec(v, has_y ? LOAD(y + o + j) : ZERO, has_y));
        STORE(du + o + j, d);
        STORE(pc + j, ADD(LOAD(pc + j), d));
      }
      for (; j < F; j++) {
        float v = u[o + j] + (bias ? bias[j] : 0.f);
        float cdf = has_y ? cdf_from_output1(y[o + j], v) : 0.5f * (1.f + erf1(v * 0.70710678118654752f));
        float pdf = 0.3989422804014327f * expneg1(-0.5f * v * v);
        du[o + j] = dy[o + j] * (cdf + v * pdf);
        pc[j] += du[o + j];
      }
    }
  }
}

// LayerNorm over rows of x [R, D]: y = (x - mean) * rstd * gamma + beta (gamma, beta may be 0);
// stats [R, 2] = (mean, rstd).
void ij_layer_norm(const float* x, const float* gamma, const float* beta, float* y, float* stats,
                   int R, int D, float eps) {
  for (int r = 0; r < R; r++) {
    const float* xr = x + (size_t)r * D;
    float* yr = y + (size_t)r * D;
    f4 s4 = SPLAT(0.f);
    int j = 0;
    for (; j + 4 <= D; j += 4) s4 = ADD(s4, LOAD(xr + j));
    float s = hsum(s4);
    for (; j < D; j++) s += xr[j];
    float mean = s / D;
    f4 m4 = SPLAT(mean), v4 = SPLAT(0.f);
    for (j = 0; j + 4 <= D; j += 4) {
      f4 d = SUB(LOAD(xr + j), m4);
      v4 = ADD(v4, MUL(d, d));
    }
    float v = hsum(v4);
    for (; j < D; j++) v += (xr[j] - mean) * (xr[j] - mean);
    float rstd = 1.f / __builtin_sqrtf(v / D + eps);
    stats[2 * r] = mean;
    stats[2 * r + 1] = rstd;
    f4 rs = SPLAT(rstd);
    for (j = 0; j + 4 <= D; j += 4) {
      f4 h = MUL(SUB(LOAD(xr + j), m4), rs);
      if (gamma) h = ADD(MUL(h, LOAD(gamma + j)), LOAD(beta + j));
      STORE(yr + j, h);
    }
    for (; j < D; j++) {
      float h = (xr[j] - mean) * rstd;
      yr[j] = gamma ? h * gamma[j] + beta[j] : h;
    }
  }
}

// LayerNorm backward: dx = dres + rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma,
// xhat = (x - mean) * rstd (gamma and dres may be 0); part [2 * ceil(R / CHUNK), D]: for each chunk of
// rows, the column sums of dy * xhat (dgamma's) and then of dy (dbeta's), float32 row by row.
void ij_layer_norm_grad(const float* dy, const float* x, const float* stats, const float* gamma,
                        const float* dres, float* dx, float* part, int R, int D) {
  const int vec = !(D & 3);
  for (int r = 0; r < R; r++) {
    size_t o = (size_t)r * D;
    float* pg = part + (size_t)(r / CHUNK) * 2 * D;
    float* pb = pg + D;
    if (r % CHUNK == 0)
      for (int j = 0; j < 2 * D; j++) pg[j] = 0.f;
    float mean = stats[2 * r], rstd = stats[2 * r + 1];
    f4 m4 = SPLAT(mean), rs = SPLAT(rstd);
    f4 sg4 = SPLAT(0.f), sgx4 = SPLAT(0.f);
    if (vec) {
      for (int j = 0; j < D; j += 4) {
        f4 d = LOAD(dy + o + j);
        f4 xh = MUL(SUB(LOAD(x + o + j), m4), rs);
        STORE(pg + j, ADD(LOAD(pg + j), MUL(d, xh)));
        STORE(pb + j, ADD(LOAD(pb + j), d));
        f4 g = gamma ? MUL(d, LOAD(gamma + j)) : d;
        sg4 = ADD(sg4, g);
        sgx4 = ADD(sgx4, MUL(g, xh));
      }
      float sg = hsum(sg4) / D, sgx = hsum(sgx4) / D;
      f4 a = SPLAT(sg), b = SPLAT(sgx);
      for (int j = 0; j < D; j += 4) {
        f4 d = LOAD(dy + o + j);
        f4 xh = MUL(SUB(LOAD(x + o + j), m4), rs);
        f4 g = gamma ? MUL(d, LOAD(gamma + j)) : d;
        f4 out = MUL(rs, SUB(SUB(g, a), MUL(xh, b)));
        if (dres) out = ADD(out, LOAD(dres + o + j));
        STORE(dx + o + j, out);
      }
    } else {
      float sg = 0, sgx = 0;
      for (int j = 0; j < D; j++) {
        float d = dy[o + j], xh = (x[o + j] - mean) * rstd;
        pg[j] += d * xh;
        pb[j] += d;
        float g = gamma ? d * gamma[j] : d;
        sg += g;
        sgx += g * xh;
      }
      sg /= D;
      sgx /= D;
      for (int j = 0; j < D; j++) {
        float d = dy[o + j], xh = (x[o + j] - mean) * rstd;
        float g = gamma ? d * gamma[j] : d;
        dx[o + j] = rstd * (g - sg - xh * sgx) + (dres ? dres[o + j] : 0.f);
      }
    }
  }
}

// Softmax of one row of Tk scores sr, plus bias (may be 0), into yr (may be sr itself).
static inline void softmax_row(const float* sr, const float* bias, float* yr, int Tk) {
  f4 mx = SPLAT(-3.0e38f);
  int j = 0;
  for (; j + 4 <= Tk; j += 4) {
    f4 v = LOAD(sr + j);
    if (bias) v = ADD(v, LOAD(bias + j));
    STORE(yr + j, v);
    mx = wasm_f32x4_pmax(mx, v);
  }
  float m = hmax(mx);
  for (; j < Tk; j++) {
    float v = sr[j] + (bias ? bias[j] : 0.f);
    yr[j] = v;
    if (v > m) m = v;
  }
  f4 m4 = SPLAT(m), sum4 = SPLAT(0.f);
  for (j = 0; j + 4 <= Tk; j += 4) {
    f4 e = expneg4(SUB(LOAD(yr + j), m4));
    STORE(yr + j, e);
    sum4 = ADD(sum4, e);
  }
  float sum = hsum(sum4);
  for (; j < Tk; j++) {
    float e = expneg1(yr[j] - m);
    yr[j] = e;
    sum += e;
  }
  f4 inv = SPLAT(1.f / sum);
  for (j = 0; j + 4 <= Tk; j += 4) STORE(yr + j, MUL(LOAD(yr + j), inv));
  for (; j < Tk; j++) yr[j] *= 1.f / sum;
}

// Softmax over the last axis of s [BH, T, Tk] plus keyBias [B, 1, Tk] (may be 0), where batch
// bh reads bias row bh / H.
void ij_softmax(const float* s, const float* kb, float* y, int BH, int T, int Tk, int H) {
  for (int bh = 0; bh < BH; bh++) {
    const float* bias = kb ? kb + (size_t)(bh / H) * Tk : 0;
    for (int t = 0; t < T; t++) {
      size_t o = ((size_t)bh * T + t) * Tk;
      softmax_row(s + o, bias, y + o, Tk);
    }
  }
}

// ds = p * (dp - rowsum(dp * p)) over rows of length C.
void ij_softmax_grad(const float* p, const float* dp, float* ds, int R, int C) {
  for (int r = 0; r < R; r++) {
    size_t o = (size_t)r * C;
    f4 d4 = SPLAT(0.f);
    int j = 0;
    for (; j + 4 <= C; j += 4) d4 = ADD(d4, MUL(LOAD(dp + o + j), LOAD(p + o + j)));
    float dot = hsum(d4);
    for (; j < C; j++) dot += dp[o + j] * p[o + j];
    f4 dt = SPLAT(dot);
    for (j = 0; j + 4 <= C; j += 4) {
      STORE(ds + o + j, MUL(LOAD(p + o + j), SUB(LOAD(dp + o + j), dt)));
    }
    for (; j < C; j++) ds[o + j] = p[o + j] * (dp[o + j] - dot);
  }
}

// Columns col0 + h*hd .. of rows [B*T, W] -> [B*H, T, hd], plus bias (may be 0), times scale.
void ij_rows_to_heads(const float* src, int W, int col0, float* dst, int B, int T, int H, int hd,
                      const float* bias, float scale) {
  const f4 sc = SPLAT(scale);
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < H; h++) {
      int c = col0 + h * hd;
      float* d = dst + ((size_t)(b * H + h)) * T * hd;
      for (int t = 0; t < T; t++, d += hd) {
        const float* s = src + ((size_t)b * T + t) * W + c;
        int j = 0;
        for (; j + 4 <= hd; j += 4) {
          f4 v = LOAD(s + j);
          if (bias) v = ADD(v, LOAD(bias + c + j));
          STORE(d + j, MUL(v, sc));
        }
        for (; j < hd; j++) d[j] = (s[j] + (bias ? bias[c + j] : 0.f)) * scale;
      }
    }
  }
}

// The inverse: [B*H, T, hd] times scale into columns col0 + h*hd .. of rows [B*T, W].
void ij_heads_to_rows(const float* src, float* dst, int W, int col0, int B, int T, int H, int hd,
                      float scale) {
  const f4 sc = SPLAT(scale);
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < H; h++) {
      int c = col0 + h * hd;
      const float* s = src + ((size_t)(b * H + h)) * T * hd;
      for (int t = 0; t < T; t++, s += hd) {
        float* d = dst + ((size_t)b * T + t) * W + c;
        int j = 0;
        for (; j + 4 <= hd; j += 4) STORE(d + j, MUL(LOAD(s + j), sc));
        for (; j < hd; j++) d[j] = s[j] * scale;
      }
    }
  }
}

// out = x + y + bias over rows [R, D]; y may be 0 (a bias add).
void ij_residual(const float* x, const float* y, const float* bias, float* out, int R, int D) {
  for (int r = 0; r < R; r++) {
    size_t o = (size_t)r * D;
    int j = 0;
    if (y) {
      for (; j + 4 <= D; j += 4) {
        STORE(out + o + j, ADD(ADD(LOAD(x + o + j), LOAD(y + o + j)), LOAD(bias + j)));
      }
      for (; j < D; j++) out[o + j] = x[o + j] + y[o + j] + bias[j];
    } else {
      for (; j + 4 <= D; j += 4) STORE(out + o + j, ADD(LOAD(x + o + j), LOAD(bias + j)));
      for (; j < D; j++) out[o + j] = x[o + j] + bias[j];
    }
  }
}

// out[C] = column sums of x [R, C] with rows ld apart, accumulated in float64 (acc[C]), row by row.
void ij_col_sum_strided(const float* x, float* out, double* acc, int R, int C, int ld) {
  for (int j = 0; j < C; j++) acc[j] = 0;
  for (int r = 0; r < R; r++) {
    size_t o = (size_t)r * ld;
    if (!(C & 3)) {
      for (int j = 0; j < C; j += 4) acc4(acc + j, LOAD(x + o + j));
    } else {
      for (int j = 0; j < C; j++) acc[j] += x[o + j];
    }
  }
  for (int j = 0; j < C; j++) out[j] = (float)acc[j];
}

// part [ceil(R / CHUNK), C] = column sums of x [R, C] by chunk of rows, float32 row by row (then
// ij_col_sum_strided over part): 8 vectors of sums in registers at a time.
void ij_col_sum_part(const float* x, float* part, int R, int C) {
  for (int r0 = 0; r0 < R; r0 += CHUNK) {
    const int r1 = r0 + CHUNK < R ? r0 + CHUNK : R;
    float* pc = part + (size_t)(r0 / CHUNK) * C;
    int j = 0;
    for (; j + 32 <= C; j += 32) {
      f4 sum[8];
#pragma clang loop unroll(full)
      for (int k = 0; k < 8; k++) sum[k] = ZERO;
      for (int r = r0; r < r1; r++) {
#pragma clang loop unroll(full)
        for (int k = 0; k < 8; k++) sum[k] = ADD(sum[k], LOAD(x + (size_t)r * C + j + 4 * k));
      }
#pragma clang loop unroll(full)
      for (int k = 0; k < 8; k++) STORE(pc + j + 4 * k, sum[k]);
    }
    for (; j + 4 <= C; j += 4) {
      f4 sum = ZERO;
      for (int r = r0; r < r1; r++) sum = ADD(sum, LOAD(x + (size_t)r * C + j));
      STORE(pc + j, sum);
    }
    for (; j < C; j++) {
      float sum = 0.f;
      for (int r = r0; r < r1; r++) sum += x[(size_t)r * C + j];
      pc[j] = sum;
    }
  }
}

// Smooth-L1 (beta 1) and its gradient dy * clamp(d, -1, 1).
void ij_smooth_l1(const float* d, float* y, int n) {
  for (int i = 0; i < n; i++) {
    float a = d[i] < 0 ? -d[i] : d[i];
    y[i] = a < 1.f ? 0.5f * a * a : a - 0.5f;
  }
}

void ij_smooth_l1_grad(const float* d, const float* dy, float* dd, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    f4 c = wasm_f32x4_pmin(wasm_f32x4_pmax(LOAD(d + i), SPLAT(-1.f)), SPLAT(1.f));
    STORE(dd + i, MUL(LOAD(dy + i), c));
  }
  for (; i < n; i++) {
    float v = d[i];
    dd[i] = dy[i] * (v > 1.f ? 1.f : v < -1.f ? -1.f : v);
  }
}

// One AdamW step: m1 = b1 m + (1-b1) g; v1 = b2 v + (1-b2) g^2;
// p1 = p * keep - step * m1 / (sqrt(v1) * root + eps), with keep = 1 - lr*wd, step = lr / (1 - b1^t),
// root = 1 / sqrt(1 - b2^t).
// b1c = 1 - b1 and b2c = 1 - b2 come from the caller in float64: 1.f - 0.999f is 1.3e-5 off 0.001,
// a bias in every second moment that PyTorch (which rounds 1 - beta2 from a double) does not have.
void ij_adamw(const float* p, const float* m, const float* v, const float* g, float* p1, float* m1,
              float* v1, int n, float b1, float b1c, float b2, float b2c, float eps, float step,
              float root, float keep) {
  const f4 B1 = SPLAT(b1), B1c = SPLAT(b1c), B2 = SPLAT(b2), B2c = SPLAT(b2c);
  const f4 E = SPLAT(eps), S = SPLAT(step), RT = SPLAT(root), K = SPLAT(keep);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    f4 gi = LOAD(g + i);
    f4 mi = ADD(MUL(B1, LOAD(m + i)), MUL(B1c, gi));
    f4 vi = ADD(MUL(B2, LOAD(v + i)), MUL(B2c, MUL(gi, gi)));
    STORE(m1 + i, mi);
    STORE(v1 + i, vi);
    f4 den = ADD(MUL(wasm_f32x4_sqrt(vi), RT), E);
    STORE(p1 + i, SUB(MUL(LOAD(p + i), K), wasm_f32x4_div(MUL(S, mi), den)));
  }
  for (; i < n; i++) {
    float gi = g[i];
    float mi = b1 * m[i] + b1c * gi;
    float vi = b2 * v[i] + b2c * gi * gi;
    m1[i] = mi;
    v1[i] = vi;
    p1[i] = p[i] * keep - step * mi / (__builtin_sqrtf(vi) * root + eps);
  }
}

// out = momentum * t + rest * c, rest = 1 - momentum (computed by the caller in float64).
void ij_ema(const float* t, const float* c, float* out, int n, float momentum, float rest) {
  const f4 M = SPLAT(momentum), K = SPLAT(rest);
  int i = 0;
  for (; i + 4 <= n; i += 4) STORE(out + i, ADD(MUL(M, LOAD(t + i)), MUL(K, LOAD(c + i))));
  for (; i < n; i++) out[i] = momentum * t[i] + rest * c[i];
}

// ---------------------------------------------------------------------------------------------
// Attention, fused: one (example, head) pair at a time, its q, k and v read where the QKV product
// left them (columns of the rows [B*T, 3D]) and its output written into the rows [B*T, D], so no
// head-layout copies, and the T x T scores of a pair stay in cache between the products and the
// softmax. Pairs are independent: a caller may split [bh0, bh1) between threads.


// The lanes of a0, a1, a2 and a3 summed, as one vector (a0's sum, a1's, a2's, a3's).
static inline f4 sum4x4(f4 a0, f4 a1, f4 a2, f4 a3) {
  f4 s01 = ADD(wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7));
  f4 s23 = ADD(wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5), wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7));
  return ADD(wasm_i32x4_shuffle(s01, s23, 0, 1, 4, 5), wasm_i32x4_shuffle(s01, s23, 2, 3, 6, 7));
}

static inline float dot1(const float* a, const float* b, int hd) {
  f4 acc = SPLAT(0.f);
  int d = 0;
  for (; d + 4 <= hd; d += 4) acc = MADD(acc, LOAD(a + d), LOAD(b + d));
  float t = hsum(acc);
  for (; d < hd; d++) t += a[d] * b[d];
  return t;
}

// Two rows at once (a and b, which may be the same row): out_a[j] = scale * (a . rows_j), likewise
// out_b, over hd floats, for n rows rs floats apart. Keys 4 at a time: 8 accumulators, each key
// vector loaded once for both rows.
static inline void row_dots2(const float* a, const float* b, const float* rows, int rs, int n, int hd,
                             float* out_a, float* out_b, float scale) {
  const f4 sc = SPLAT(scale);
  const int hd4 = hd & ~3;
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* r0 = rows + (size_t)j * rs;
    const float* r1 = r0 + rs;
    const float* r2 = r1 + rs;
    const float* r3 = r2 + rs;
    f4 a0 = SPLAT(0.f), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int d = 0; d < hd4; d += 4) {
      f4 x = LOAD(a + d), y = LOAD(b + d), k;
      k = LOAD(r0 + d);
      a0 = MADD(a0, x, k);
      b0 = MADD(b0, y, k);
      k = LOAD(r1 + d);
      a1 = MADD(a1, x, k);
      b1 = MADD(b1, y, k);
      k = LOAD(r2 + d);
      a2 = MADD(a2, x, k);
      b2 = MADD(b2, y, k);
      k = LOAD(r3 + d);
      a3 = MADD(a3, x, k);
      b3 = MADD(b3, y, k);
    }
    f4 sa = sum4x4(a0, a1, a2, a3), sb = sum4x4(b0, b1, b2, b3);
    for (int d = hd4; d < hd; d++) {
      f4 k = wasm_f32x4_make(r0[d], r1[d], r2[d], r3[d]);
      sa = MADD(sa, SPLAT(a[d]), k);
      sb = MADD(sb, SPLAT(b[d]), k);
    }
    STORE(out_a + j, MUL(sa, sc));
    STORE(out_b + j, MUL(sb, sc));
  }
  for (; j < n; j++) {
    const float* r = rows + (size_t)j * rs;
    out_a[j] = dot1(a, r, hd) * scale;
    out_b[j] = dot1(b, r, hd) * scale;
  }
}

// Two weight rows at once (wa and wb, which may be the same): out_a[d] = sum over j < n of
// wa[j * ws] * rows_j[d], likewise out_b, d < hd, rows rs floats apart. 16 columns at a time:
// 8 accumulators, each row vector loaded once for both outputs.
static inline void weighted_rows2(const float* wa, const float* wb, int ws, const float* rows, int rs,
                                  int n, int hd, float* out_a, float* out_b) {
  int d = 0;
  for (; d + 16 <= hd; d += 16) {
    f4 a0 = SPLAT(0.f), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int j = 0; j < n; j++) {
      const float* r = rows + (size_t)j * rs + d;
      f4 x = SPLAT(wa[(size_t)j * ws]), y = SPLAT(wb[(size_t)j * ws]), v;
      v = LOAD(r);
      a0 = MADD(a0, x, v);
      b0 = MADD(b0, y, v);
      v = LOAD(r + 4);
      a1 = MADD(a1, x, v);
      b1 = MADD(b1, y, v);
      v = LOAD(r + 8);
      a2 = MADD(a2, x, v);
      b2 = MADD(b2, y, v);
      v = LOAD(r + 12);
      a3 = MADD(a3, x, v);
      b3 = MADD(b3, y, v);
    }
    STORE(out_a + d, a0);
    STORE(out_a + d + 4, a1);
    STORE(out_a + d + 8, a2);
    STORE(out_a + d + 12, a3);
    STORE(out_b + d, b0);
    STORE(out_b + d + 4, b1);
    STORE(out_b + d + 8, b2);
    STORE(out_b + d + 12, b3);
  }
  for (; d + 4 <= hd; d += 4) {
    f4 a0 = SPLAT(0.f), b0 = a0;
    for (int j = 0; j < n; j++) {
      f4 v = LOAD(rows + (size_t)j * rs + d);
      a0 = MADD(a0, SPLAT(wa[(size_t)j * ws]), v);
      b0 = MADD(b0, SPLAT(wb[(size_t)j * ws]), v);
    }
    STORE(out_a + d, a0);
    STORE(out_b + d, b0);
  }
  for (; d < hd; d++) {
    float ta = 0.f, tb = 0.f;
    for (int j = 0; j < n; j++) {
      float v = rows[(size_t)j * rs + d];
      ta += wa[(size_t)j * ws] * v;
      tb += wb[(size_t)j * ws] * v;
    }
    out_a[d] = ta;
    out_b[d] = tb;
  }
}

// ds row = scale * p * (dp - rowsum(dp * p)), dp given in ds (in place), T entries.
static inline void score_grad_row(const float* pr, float* sr, int T, float scale) {
  f4 d4 = SPLAT(0.f);
  int j = 0;
  for (; j + 4 <= T; j += 4) d4 = MADD(d4, LOAD(sr + j), LOAD(pr + j));
  float dot = hsum(d4);
  for (; j < T; j++) dot += sr[j] * pr[j];
  const f4 dt = SPLAT(dot), sc = SPLAT(scale);
  for (j = 0; j + 4 <= T; j += 4) STORE(sr + j, MUL(MUL(LOAD(pr + j), SUB(LOAD(sr + j), dt)), sc));
  for (; j < T; j++) sr[j] = pr[j] * (sr[j] - dot) * scale;
}

// Forward, pairs bh in [bh0, bh1) (b = bh / H, h = bh % H), with q, k, v the columns h*hd.. of the
// q, k and v thirds of qkv [B*T, 3D] (QKV bias already added), D = H*hd:
//   p[bh] = softmax(scale * q k^T + kb[b]) [T, T];  o[b*T + i, h*hd ..] = (p[bh] v)[i]
// kb [B, T] may be 0 (no key bias). Query rows two at a time (the last one twice when T is odd).
void ij_attention(const float* qkv, const float* kb, float* p, float* o, int bh0, int bh1, int T,
                  int H, int hd, float scale) {
  const int D = H * hd, W = 3 * D;
  for (int bh = bh0; bh < bh1; bh++) {
    const int b = bh / H, h = bh % H;
    const float* q = qkv + (size_t)b * T * W + h * hd;
    const float* k = q + D;
    const float* v = q + 2 * D;
    const float* bias = kb ? kb + (size_t)b * T : 0;
    float* pm = p + (size_t)bh * T * T;
    float* om = o + (size_t)b * T * D + h * hd;
    for (int i = 0; i < T; i += 2) {
      const int i1 = i + 1 < T ? i + 1 : i;
      float* ra = pm + (size_t)i * T;
      float* rb = pm + (size_t)i1 * T;
      row_dots2(q + (size_t)i * W, q + (size_t)i1 * W, k, W, T, hd, ra, rb, scale);
      softmax_row(ra, bias, ra, T);
      if (i1 != i) softmax_row(rb, bias, rb, T);
      weighted_rows2(ra, rb, 1, v, W, T, hd, om + (size_t)i * D, om + (size_t)i1 * D);
    }
  }
}

// Backward of ij_attention for pairs [bh0, bh1), given dout = dL/do [B*T, D]: writes the pair's
// columns of dqkv [B*T, 3D] (dq, dk, dv; no bias gradient, which is their column sum) and uses
// ds [B*H, T, T] as room for the score gradient scale * p * (dp - rowsum(dp * p)), dp = dout v^T.
void ij_attention_grad(const float* qkv, const float* p, const float* dout, float* dqkv, float* ds,
                       int bh0, int bh1, int T, int H, int hd, float scale) {
  const int D = H * hd, W = 3 * D;
  for (int bh = bh0; bh < bh1; bh++) {
    const int b = bh / H, h = bh % H;
    const size_t row0 = (size_t)b * T;
    const float* q = qkv + row0 * W + h * hd;
    const float* k = q + D;
    const float* v = q + 2 * D;
    const float* dO = dout + row0 * D + h * hd;
    float* dq = dqkv + row0 * W + h * hd;
    float* dk = dq + D;
    float* dv = dq + 2 * D;
    const float* pm = p + (size_t)bh * T * T;
    float* sm = ds + (size_t)bh * T * T;
    for (int i = 0; i < T; i += 2) {
      const int i1 = i + 1 < T ? i + 1 : i;
      float* sa = sm + (size_t)i * T;
      float* sb = sm + (size_t)i1 * T;
      row_dots2(dO + (size_t)i * D, dO + (size_t)i1 * D, v, W, T, hd, sa, sb, 1.f);
      score_grad_row(pm + (size_t)i * T, sa, T, scale);
      if (i1 != i) score_grad_row(pm + (size_t)i1 * T, sb, T, scale);
      weighted_rows2(sa, sb, 1, k, W, T, hd, dq + (size_t)i * W, dq + (size_t)i1 * W);
    }
    // dk_j = sum_i ds_ij q_i and dv_j = sum_i p_ij dout_i: columns of ds and p as weights
    for (int j = 0; j < T; j += 2) {
      const int j1 = j + 1 < T ? j + 1 : j;
      weighted_rows2(sm + j, sm + j1, T, q, W, T, hd, dk + (size_t)j * W, dk + (size_t)j1 * W);
      weighted_rows2(pm + j, pm + j1, T, dO, D, T, hd, dv + (size_t)j * W, dv + (size_t)j1 * W);
    }
  }
}
