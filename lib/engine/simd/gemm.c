// Matrix products in 128-bit WebAssembly SIMD: the wasm backend's BatchMatMul where no native BLAS is
// found (lib/engine/simd_gemm.ts). Same rules as kernels.c: this module runs in tfjs-wasm's own memory,
// so no stack, no static data; every pointer is a tensor or a scratch buffer the caller allocated.
//
// The layout is the classic one of GotoBLAS / BLIS: B is copied ("packed") a block at a time into
// panels of NR columns stored k-major, A into panels of MR rows stored k-major, and a micro-kernel keeps
// an MR x NR tile of C in registers while it walks k, one vector of A and NR/4 vectors of B per step.
// Packing reads A and B through (row, column) strides, so transposed operands cost nothing extra
// (tfjs's stock wasm kernel is about 12x slower with its transpose flags).

#include <wasm_simd128.h>

typedef v128_t f4;

// c + a * b: one fused multiply-add per lane where the module is built with relaxed SIMD (IJ_FMA;
// V8 emits FMA where the CPU has it, else a multiply and an add), else a multiply and an add.
#ifdef IJ_FMA
typedef float f32x4_t __attribute__((__vector_size__(16)));
#define MADD(c, a, b) \
  ((f4)__builtin_wasm_relaxed_madd_f32x4((f32x4_t)(a), (f32x4_t)(b), (f32x4_t)(c)))
#else
#define MADD(c, a, b) wasm_f32x4_add(c, wasm_f32x4_mul(a, b))
#endif

#define MR 4
#define NR 8
#define KC 256
#define MC 64
#define NC 512

// Transpose the 4x4 block whose rows are r0..r3: on return r0..r3 hold its columns.
#define TRANSPOSE4(r0, r1, r2, r3)                                 \
  do {                                                             \
    f4 t0_ = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5);               \
    f4 t1_ = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);               \
    f4 t2_ = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);               \
    f4 t3_ = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);               \
    r0 = wasm_i32x4_shuffle(t0_, t1_, 0, 1, 4, 5);                 \
    r1 = wasm_i32x4_shuffle(t0_, t1_, 2, 3, 6, 7);                 \
    r2 = wasm_i32x4_shuffle(t2_, t3_, 0, 1, 4, 5);                 \
    r3 = wasm_i32x4_shuffle(t2_, t3_, 2, 3, 6, 7);                 \
  } while (0)

// Pack rows [0, m) x k of op(A) into MR-row panels, k-major: panel r holds A(i0..i0+MR, p) at
// dst[r*MR*k + p*MR + (i - i0)]; rows past m are zero. Full panels of a row-major op(A) (cs == 1)
// go four k-steps at a time through a 4x4 transpose, of a column-major one (rs == 1) one vector per
// k-step; the rest element by element.
static void pack_a(const float* a, int rs, int cs, int m, int k, float* dst) {
  for (int i0 = 0; i0 < m; i0 += MR) {
    int rows = m - i0 < MR ? m - i0 : MR;
    int p = 0;
    const float* row = a + (long)i0 * rs;
    if (rows == MR && cs == 1) {
      for (; p + 4 <= k; p += 4) {
        f4 r0 = wasm_v128_load(row + p), r1 = wasm_v128_load(row + rs + p);
        f4 r2 = wasm_v128_load(row + 2L * rs + p), r3 = wasm_v128_load(row + 3L * rs + p);
        TRANSPOSE4(r0, r1, r2, r3);
        float* d = dst + p * MR;
        wasm_v128_store(d, r0);
        wasm_v128_store(d + 4, r1);
        wasm_v128_store(d + 8, r2);
        wasm_v128_store(d + 12, r3);
      }
    } else if (rows == MR && rs == 1) {
      for (; p < k; p++) wasm_v128_store(dst + p * MR, wasm_v128_load(row + (long)p * cs));
    }
    for (; p < k; p++) {
      const float* src = row + (long)p * cs;
      float* d = dst + p * MR;
      for (int r = 0; r < rows; r++) d[r] = src[(long)r * rs];
      for (int r = rows; r < MR; r++) d[r] = 0.f;
    }
    dst += MR * k;
  }
}

// Pack k x columns [0, n) of op(B) into NR-column panels, k-major, columns past n zero. Full panels
// of a row-major op(B) (cs == 1) copy two vectors per k-step; of a column-major one (rs == 1, a
// transposed B) go four k-steps at a time through two 4x4 transposes; the rest element by element.
static void pack_b(const float* b, int rs, int cs, int k, int n, float* dst) {
  for (int j0 = 0; j0 < n; j0 += NR) {
    int cols = n - j0 < NR ? n - j0 : NR;
    const float* col = b + (long)j0 * cs;
    int p = 0;
    if (cols == NR && cs == 1) {
      for (; p < k; p++) {
        const float* src = col + (long)p * rs;
        wasm_v128_store(dst + p * NR, wasm_v128_load(src));
        wasm_v128_store(dst + p * NR + 4, wasm_v128_load(src + 4));
      }
    } else if (cols == NR && rs == 1) {
      for (; p + 4 <= k; p += 4) {
        const float* src = col + p;
        f4 c0 = wasm_v128_load(src), c1 = wasm_v128_load(src + cs);
        f4 c2 = wasm_v128_load(src + 2L * cs), c3 = wasm_v128_load(src + 3L * cs);
        f4 c4 = wasm_v128_load(src + 4L * cs), c5 = wasm_v128_load(src + 5L * cs);
        f4 c6 = wasm_v128_load(src + 6L * cs), c7 = wasm_v128_load(src + 7L * cs);
        TRANSPOSE4(c0, c1, c2, c3);
        TRANSPOSE4(c4, c5, c6, c7);
        float* d = dst + p * NR;
        wasm_v128_store(d, c0);
        wasm_v128_store(d + 4, c4);
        wasm_v128_store(d + 8, c1);
        wasm_v128_store(d + 12, c5);
        wasm_v128_store(d + 16, c2);
        wasm_v128_store(d + 20, c6);
        wasm_v128_store(d + 24, c3);
        wasm_v128_store(d + 28, c7);
      }
    }
    for (; p < k; p++) {
      const float* src = col + (long)p * rs;
      float* d = dst + p * NR;
      for (int c = 0; c < cols; c++) d[c] = src[(long)c * cs];
      for (int c = cols; c < NR; c++) d[c] = 0.f;
    }
    dst += NR * k;
  }
}

// Write the first n (<= 4) lanes of v to c, adding to what is there when add is set.
static inline void put(float* c, f4 v, int n, int add) {
  if (n == 4) {
    wasm_v128_store(c, add ? wasm_f32x4_add(wasm_v128_load(c), v) : v);
    return;
  }
  if (n > 0) c[0] = (add ? c[0] : 0.f) + wasm_f32x4_extract_lane(v, 0);
  if (n > 1) c[1] = (add ? c[1] : 0.f) + wasm_f32x4_extract_lane(v, 1);
  if (n > 2) c[2] = (add ? c[2] : 0.f) + wasm_f32x4_extract_lane(v, 2);
}

static inline void put_row(float* c, f4 lo, f4 hi, int n, int add) {
  put(c, lo, n < 4 ? n : 4, add);
  put(c + 4, hi, n < 4 ? 0 : n - 4, add);
}

// Lane i of v in all four lanes.
#define LANE(v, i) wasm_i32x4_shuffle(v, v, i, i, i, i)

// C tile (rows x cols, row stride ldc) = (add ? C : 0) + Ap(MR x k) Bp(k x NR).
//
// A's MR values of a k-step are one vector load spread by shuffles, not MR broadcast loads. Deno runs
// V8 without its trap handler, so every load is bounds-checked, and on a shared memory (which can grow
// under the code) the generated loop also re-reads the memory's size in every iteration. With four
// broadcasts per step, products on tfjs-wasm's shared heap ran 12% slower than on an unshared memory
// (measured 2026-12-05, one thread, the bench's six largest step shapes: 88 ms against 77); in this
// form, 77 ms on both. Unrolling the k loop makes V8 keep accumulators on the stack (25 GFLOP/s).
static void micro(const float* ap, const float* bp, int k, float* c, int ldc, int rows, int cols, int add) {
  f4 c00 = wasm_f32x4_splat(0.f), c01 = c00, c10 = c00, c11 = c00;
  f4 c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (int p = 0; p < k; p++) {
    f4 b0 = wasm_v128_load(bp), b1 = wasm_v128_load(bp + 4);
    f4 av = wasm_v128_load(ap);
    f4 a0 = LANE(av, 0), a1 = LANE(av, 1);
    c00 = MADD(c00, a0, b0);
    c01 = MADD(c01, a0, b1);
    c10 = MADD(c10, a1, b0);
    c11 = MADD(c11, a1, b1);
    f4 a2 = LANE(av, 2), a3 = LANE(av, 3);
    c20 = MADD(c20, a2, b0);
    c21 = MADD(c21, a2, b1);
    c30 = MADD(c30, a3, b0);
    c31 = MADD(c31, a3, b1);
    ap += MR;
    bp += NR;
  }
  put_row(c, c00, c01, cols, add);
  if (rows > 1) put_row(c + ldc, c10, c11, cols, add);
  if (rows > 2) put_row(c + 2 * ldc, c20, c21, cols, add);
  if (rows > 3) put_row(c + 3 * ldc, c30, c31, cols, add);
}

// The pack buffer ij_gemm needs, in floats.
int ij_gemm_pack_floats(void) {
  return KC * NC + MC * KC;
}

// For each of `batch` products: C[b] (M x N, row-major, contiguous) = op(A[b]) op(B[b]), where
// op(A)(i, p) = A[b*bsA + i*rsA + p*csA] and op(B)(p, j) = B[b*bsB + p*rsB + j*csB] (a batch stride
// of 0 broadcasts). `pack` holds ij_gemm_pack_floats() floats. K == 0 writes zeros.
void ij_gemm(const float* A, const float* B, float* C, int batch, int M, int N, int K, int rsA, int csA,
             int bsA, int rsB, int csB, int bsB, float* pack) {
  float* bpack = pack;
  float* apack = pack + KC * NC;
  for (int bi = 0; bi < batch; bi++) {
    const float* a = A + (long)bi * bsA;
    const float* b = B + (long)bi * bsB;
    float* c = C + (long)bi * M * N;
    if (K == 0) {
      for (long i = 0; i < (long)M * N; i++) c[i] = 0.f;
      continue;
    }
    for (int jc = 0; jc < N; jc += NC) {
      int nc = N - jc < NC ? N - jc : NC;
      for (int pc = 0; pc < K; pc += KC) {
        int kc = K - pc < KC ? K - pc : KC;
        pack_b(b + (long)pc * rsB + (long)jc * csB, rsB, csB, kc, nc, bpack);
        for (int ic = 0; ic < M; ic += MC) {
          int mc = M - ic < MC ? M - ic : MC;
          pack_a(a + (long)ic * rsA + (long)pc * csA, rsA, csA, mc, kc, apack);
          for (int jr = 0; jr < nc; jr += NR) {
            int cols = nc - jr < NR ? nc - jr : NR;
            const float* bp = bpack + jr * kc;
            for (int ir = 0; ir < mc; ir += MR) {
              int rows = mc - ir < MR ? mc - ir : MR;
              micro(apack + ir * kc, bp, kc, c + (long)(ic + ir) * N + jc + jr, N, rows, cols, pc > 0);
            }
          }
        }
      }
    }
  }
}

// The floats ij_gemm_claim's bfull holds for a K x N operand B: whole NR-column panels.
int ij_gemm_claim_b_floats(int K, int N) {
  return K * ((N + NR - 1) / NR) * NR;
}

// Rows of C[M, N] = op(A) op(B) claimed from *next (one 64-bit counter shared by every thread
// computing this product, 0 at the start) until none are left: lib/engine/gemm_claims.ts's balanced
// split, where a thread that runs slower (another process took its core for a while) simply claims
// fewer rows. A thread with `back` set claims from the bottom of C up, the others from the top down,
// so that with two threads each one's rows are one block, as the fused kernels after the product
// split them: the rows a thread writes are then mostly the ones it reads next, in its own cache.
// Each thread packs the whole of B into its own bfull (K * (N rounded up to NR) floats), then runs
// each claim through every KC block of k exactly as ij_gemm does, so every element of C is summed in
// the same order as there, whoever claims it. Claims are MC rows while more than 4 * threads * MC
// are left, then 16. apack holds MC * KC floats. Returns the rows this thread computed.
int ij_gemm_claim(const float* A, const float* B, float* C, int M, int N, int K, int rsA, int csA,
                  int rsB, int csB, float* bfull, float* apack, unsigned long long* next, int threads,
                  int back) {
  // *next: rows claimed from the top (low 32 bits) and from the bottom (high 32 bits)
  unsigned long long s = __atomic_load_n(next, __ATOMIC_SEQ_CST);
  if ((int)(s & 0xffffffffu) + (int)(s >> 32) >= M) return 0; // woke after the others took every row
  pack_b(B, rsB, csB, K, N, bfull);
  int done = 0;
  for (;;) {
    s = __atomic_load_n(next, __ATOMIC_SEQ_CST);
    int top = (int)(s & 0xffffffffu), bottom = (int)(s >> 32);
    int left = M - top - bottom;
    if (left <= 0) break;
    int rows = left > 4 * threads * MC ? MC : 16;
    if (rows > left) rows = left;
    unsigned long long claimed = back ? s + ((unsigned long long)rows << 32) : s + (unsigned long long)rows;
    if (!__atomic_compare_exchange_n(next, &s, claimed, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      continue; // another thread claimed first: look again
    }
    int i0 = back ? M - bottom - rows : top;
    for (int pc = 0; pc < K; pc += KC) {
      int kc = K - pc < KC ? K - pc : KC;
      pack_a(A + (long)i0 * rsA + (long)pc * csA, rsA, csA, rows, kc, apack);
      for (int jr = 0; jr < N; jr += NR) {
        int cols = N - jr < NR ? N - jr : NR;
        const float* bp = bfull + (long)jr * K + (long)pc * NR;
        for (int ir = 0; ir < rows; ir += MR) {
          int r = rows - ir < MR ? rows - ir : MR;
          micro(apack + ir * kc, bp, kc, C + (long)(i0 + ir) * N + jr, N, r, cols, pc > 0);
        }
      }
    }
    done += rows;
  }
  return done;
}

// "Deep" products (few rows and columns, a long k: the weight gradients X^T dY over every token),
// split along k instead of rows (lib/engine/gemm_deep.ts): chunk c covers k in [c * kchunk, (c + 1) *
// kchunk) and is computed, by whichever thread claims it from *next (0 at the start), into C for
// chunk 0 and into part + (c - 1) * M * N for the others; ij_gemm_deep_sum then adds them up in chunk
// order. Split by rows, each thread packed the whole of B for half the rows (the products ran at 60-78
// GFLOP/s on 2 threads where the others reach 80-95); by chunks, B is packed once. A thread with
// `back` set claims chunks from the last down, the others from the first up (*next, a 64-bit counter,
// holds both counts), so that with two threads each reads the tokens the kernels before wrote on its
// own core. The chunks and the order of the sum depend on the shape only, so the bits are the same
// for any number of threads. `pack` holds ij_gemm_pack_floats() floats. Returns the chunks this
// thread computed.
int ij_gemm_deep(const float* A, const float* B, float* C, int M, int N, int K, int rsA, int csA, int rsB,
                 int csB, int kchunk, float* part, float* pack, unsigned long long* next, int back) {
  int chunks = (K + kchunk - 1) / kchunk;
  int done = 0;
  for (;;) {
    // *next: chunks claimed from the first (low 32 bits) and from the last (high 32 bits)
    unsigned long long s = __atomic_load_n(next, __ATOMIC_SEQ_CST);
    int first = (int)(s & 0xffffffffu), last = (int)(s >> 32);
    if (first + last >= chunks) break;
    unsigned long long claimed = back ? s + (1ull << 32) : s + 1;
    if (!__atomic_compare_exchange_n(next, &s, claimed, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) continue;
    int c = back ? chunks - 1 - last : first;
    int k0 = c * kchunk;
    int kk = K - k0 < kchunk ? K - k0 : kchunk;
    float* dst = c == 0 ? C : part + (long)(c - 1) * M * N;
    ij_gemm(A + (long)k0 * csA, B + (long)k0 * rsB, dst, 1, M, N, kk, rsA, csA, 0, rsB, csB, 0, pack);
    done++;
  }
  return done;
}

// C[i] = ((C[i] + part[i]) + part[mn + i]) + ... over the chunks - 1 partial products of
// ij_gemm_deep, for i in [i0, i1) (a thread's share; mn = M * N).
void ij_gemm_deep_sum(float* C, const float* part, int chunks, int mn, int i0, int i1) {
  int i = i0;
  for (; i + 4 <= i1; i += 4) {
    f4 s = wasm_v128_load(C + i);
    for (int c = 1; c < chunks; c++) s = wasm_f32x4_add(s, wasm_v128_load(part + (long)(c - 1) * mn + i));
    wasm_v128_store(C + i, s);
  }
  for (; i < i1; i++) {
    float s = C[i];
    for (int c = 1; c < chunks; c++) s += part[(long)(c - 1) * mn + i];
    C[i] = s;
  }
}
