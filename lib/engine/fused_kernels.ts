/**
 * The elementwise and row-wise pieces of a transformer block, run on the tensors' own memory: the
 * wasm heap (a view at the tensor's offset, as lib/engine/blas.ts does for matrix products) or the cpu
 * backend's arrays. Each is registered as a tfjs kernel for `wasm` and `cpu`, so it allocates and
 * frees through the backend like any stock kernel. lib/engine/fused.ts builds the forward and backward of a
 * block from these kernels and BLAS products.
 *
 * Each kernel exists twice: a TypeScript loop (the cpu backend's, and the readable reference) and
 * the same maths in 128-bit WebAssembly SIMD (lib/engine/simd/kernels.c), which the wasm backend runs on its
 * own memory when the engine supports it (`IJEPA_SIMD=off` or {@link setSimd} picks the loops).
 *
 * Why (measured on 2 cores): tfjs-wasm runs each small op as its own pass, broadcasting slowly (a
 * bias add costs 3x a plain add), its `Erf` costs 16 ns an element, and autodiff adds several passes
 * per op. A TypeScript loop for bias + GELU costs 7 ns an element, the SIMD one 2 ns; a quick-preset
 * train step went from 1.9 s (autodiff) to 1.2 s (fused, TypeScript loops) to 0.7 s (fused, SIMD).
 *
 * Kernels (names as registered; shapes with R rows, D features, H heads, T tokens, hd = D / H):
 *
 * | kernel | inputs | outputs |
 * | --- | --- | --- |
 * | `IjLayerNorm` | x [R,D], gamma [D]?, beta [D]? | y [R,D], stats [R,2] (mean, rstd) |
 * | `IjLayerNormGrad` | dy, x, stats, gamma?, dres? | dx [R,D] (+ dres), dgamma [D], dbeta [D] |
 * | `IjBiasGelu` | u [R,F], bias [F]? | gelu(u + bias) |
 * | `IjBiasGeluGrad` | dy, u, bias?, y? (forward output) | du [R,F], dbias [F] |
 * | `IjSplitHeads` | qkv [R,3D], bias [3D] | q, k, v [B*H,T,hd] (q times `scale`) |
 * | `IjMergeHeads` | dq, dk, dv [B*H,T,hd] | dqkv [R,3D] (dq times `scale`), dbias [3D] |
 * | `IjHeadsToRows` / `IjRowsToHeads` | [B*H,T,hd] / [R,D] | [R,D] / [B*H,T,hd] |
 * | `IjSoftmax` | s [B*H,T,T], keyBias [B,1,T]? | softmax over the last axis |
 * | `IjSoftmaxGrad` | p, dp | p * (dp - rowsum(dp * p)) |
 * | `IjResidual` | x [R,D], y [R,D], bias [D] | x + y + bias |
 * | `IjBiasAdd` | x [R,C], bias [C] | x + bias |
 * | `IjColSum` | x [R,C] | column sums [C] |
 * | `IjSmoothL1` / `IjSmoothL1Grad` | d / (d, dy) | smooth-L1(d) / dy * clamp(d, -1, 1) |
 * | `IjAdamW` | p, m, v, g | p', m', v' (one AdamW step) |
 * | `IjEma` | t, c | momentum * t + (1 - momentum) * c |
 *
 * Sums over rows (bias and LayerNorm parameter gradients) accumulate in float64.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { registerFusedKernels, runFused } from "./fused_kernels.ts";
 * await tf.setBackend("cpu");
 * registerFusedKernels();
 * const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]); // [2, 3]
 * const s = runFused("IjColSum", { x }) as tf.Tensor; // [3]
 * if (s.dataSync().join() !== "5,7,9") throw new Error(`got ${s.dataSync()}`);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { KERNELS_WASM_BASE64 } from "./simd/kernels_wasm.ts";

// ---------------------------------------------------------------------------------------------
// Memory access

interface WasmLike {
  wasm: {
    HEAPF32: Float32Array;
    asm?: { memory?: WebAssembly.Memory };
    _malloc(bytes: number): number;
    _free(ptr: number): void;
  };
  dataIdMap: { get(dataId: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
}

interface CpuLike {
  data: { get(dataId: unknown): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: "float32", values: Float32Array): tf.TensorInfo;
}

type Attrs = Record<string, number | boolean>;
type Views = Record<string, Float32Array>;
type Shapes = Record<string, number[]>;
/** Byte offsets of tensors in the wasm memory; 0 stands for an absent optional input. */
type Ptrs = Record<string, number>;

/**
 * One kernel: output shapes from the input shapes, the TypeScript loop that fills the outputs, and
 * optionally the same through the SIMD module (lib/engine/simd/kernels.c) on the wasm heap.
 */
interface Spec {
  outputs(s: Shapes, a: Attrs): number[][];
  run(x: Views, out: Float32Array[], s: Shapes, a: Attrs): void;
  simd?(k: SimdModule, x: Ptrs, out: number[], s: Shapes, a: Attrs): void;
}

/** The exports of lib/engine/simd/kernels.c, plus a float64 scratch buffer in the same memory. */
interface SimdModule {
  // deno-lint-ignore no-explicit-any
  f: Record<string, (...args: number[]) => any>;
  /** A pointer to at least `bytes` bytes of scratch memory (valid until the next call). */
  scratch(bytes: number): number;
}

const simdModules = new WeakMap<object, SimdModule | null>();
let simdBytes: Uint8Array<ArrayBuffer> | undefined;

/** SIMD or TypeScript loops on wasm: {@link setSimd}, else `IJEPA_SIMD` (read on first use). */
let simdChoice: boolean | undefined;

function simdWanted(): boolean {
  if (simdChoice === undefined) {
    let v = "";
    try {
      v = (Deno.env.get("IJEPA_SIMD") ?? "").trim().toLowerCase();
    } catch {
      // no --allow-env: the default
    }
    simdChoice = !["off", "0", "false"].includes(v);
  }
  return simdChoice;
}

/**
 * Choose between the SIMD module and the TypeScript loops for the wasm kernels (default: SIMD
 * where it loads, unless `IJEPA_SIMD=off`). For tests and measurements; results agree to float32
 * rounding.
 *
 * @example
 * ```ts
 * import { setSimd } from "./fused_kernels.ts";
 * setSimd(false); // TypeScript loops on wasm
 * setSimd(true);
 * ```
 */
export function setSimd(on: boolean): void {
  simdChoice = on;
}

/**
 * The SIMD module instantiated on this wasm backend's memory, or null where it cannot be (no
 * SIMD in this engine, the memory not reachable): the TypeScript loops run instead.
 */
function simdFor(be: WasmLike): SimdModule | null {
  const key = be.wasm as object;
  let m = simdModules.get(key);
  if (m !== undefined) return m;
  m = null;
  const memory = be.wasm.asm?.memory;
  if (memory instanceof WebAssembly.Memory) {
    try {
      simdBytes ??= Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0));
      const inst = new WebAssembly.Instance(new WebAssembly.Module(simdBytes), { env: { memory } });
      let ptr = 0, size = 0;
      m = {
        // deno-lint-ignore no-explicit-any
        f: inst.exports as Record<string, (...args: number[]) => any>,
        scratch(bytes: number): number {
          if (bytes > size) {
            if (ptr) be.wasm._free(ptr);
            size = Math.max(bytes, 2 * size, 4096);
            ptr = be.wasm._malloc(size);
          }
          return ptr;
        },
      };
    } catch {
      m = null; // e.g. an engine without wasm SIMD
    }
  }
  simdModules.set(key, m);
  return m;
}

/** Whether the wasm kernels run through the SIMD module (after the wasm backend started). */
export function simdActive(): boolean {
  if (tf.getBackend() !== "wasm" || !simdWanted()) return false;
  return simdFor(tf.backend() as unknown as WasmLike) !== null;
}

function wasmKernel(spec: Spec): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const be = backend as unknown as WasmLike;
    const ins = inputs as Record<string, tf.TensorInfo>;
    const shapes: Shapes = {};
    for (const [k, t] of Object.entries(ins)) if (t) shapes[k] = t.shape;
    const a = (attrs ?? {}) as Attrs;
    const outs = spec.outputs(shapes, a).map((s) => be.makeOutput(s, "float32"));
    const simd = spec.simd && simdWanted() ? simdFor(be) : null;
    if (simd) {
      const ptr = (t: tf.TensorInfo) => be.dataIdMap.get(t.dataId).memoryOffset;
      const ptrs: Ptrs = {};
      for (const [k, t] of Object.entries(ins)) if (t) ptrs[k] = ptr(t);
      spec.simd!(simd, ptrs, outs.map(ptr), shapes, a);
      return outs.length === 1 ? outs[0] : outs;
    }
    // Read the heap only now: an output's malloc may have grown wasm memory, which replaces it.
    const heap = be.wasm.HEAPF32;
    const view = (t: tf.TensorInfo) => {
      const off = be.dataIdMap.get(t.dataId).memoryOffset / 4;
      return heap.subarray(off, off + tf.util.sizeFromShape(t.shape));
    };
    const views: Views = {};
    for (const [k, t] of Object.entries(ins)) if (t) views[k] = view(t);
    spec.run(views, outs.map(view), shapes, a);
    return outs.length === 1 ? outs[0] : outs;
  };
}

function cpuKernel(spec: Spec): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const be = backend as unknown as CpuLike;
    const ins = inputs as Record<string, tf.TensorInfo>;
    const shapes: Shapes = {};
    const views: Views = {};
    for (const [k, t] of Object.entries(ins)) {
      if (!t) continue;
      shapes[k] = t.shape;
      const v = be.data.get(t.dataId).values;
      views[k] = v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
    }
    const a = (attrs ?? {}) as Attrs;
    const outShapes = spec.outputs(shapes, a);
    const outs = outShapes.map((s) => new Float32Array(tf.util.sizeFromShape(s)));
    spec.run(views, outs, shapes, a);
    const infos = outs.map((o, i) => be.makeTensorInfo(outShapes[i], "float32", o));
    return infos.length === 1 ? infos[0] : infos;
  };
}

// ---------------------------------------------------------------------------------------------
// Maths helpers

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 0.3989422804014327;

/**
 * erf(x) as a rational function of x (Eigen's float32 approximation, used by TensorFlow/XLA):
 * within 2 float32 ulps of the exact erf, with no exp. The official code's nn.GELU uses the exact erf.
 */
function erf(x: number): number {
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
function expNeg(x: number): number {
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

// ---------------------------------------------------------------------------------------------
// Kernel bodies

function rowsCols(shape: number[]): [number, number] {
  const c = shape[shape.length - 1];
  return [c === 0 ? 0 : tf.util.sizeFromShape(shape) / c, c];
}

const layerNorm: Spec = {
  outputs: (s) => [s.x, [rowsCols(s.x)[0], 2]],
  simd(k, x, [y, stats], s, a) {
    const [R, D] = rowsCols(s.x);
    k.f.ij_layer_norm(x.x, x.gamma ?? 0, x.beta ?? 0, y, stats, R, D, a.eps as number);
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

const layerNormGrad: Spec = {
  outputs: (s) => [s.x, [s.x[s.x.length - 1]], [s.x[s.x.length - 1]]],
  simd(k, x, [dx, dgamma, dbeta], s) {
    const [R, D] = rowsCols(s.x);
    const acc = k.scratch(16 * D);
    k.f.ij_layer_norm_grad(x.dy, x.x, x.stats, x.gamma ?? 0, x.dres ?? 0, dx, dgamma, dbeta, acc, R, D);
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

const biasGelu: Spec = {
  outputs: (s) => [s.u],
  simd(k, x, [y], s) {
    const [R, F] = rowsCols(s.u);
    k.f.ij_bias_gelu(x.u, x.bias ?? 0, y, R, F);
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

const biasGeluGrad: Spec = {
  outputs: (s) => [s.u, [s.u[s.u.length - 1]]],
  simd(k, x, [du, dbias], s) {
    const [R, F] = rowsCols(s.u);
    const acc = k.scratch(8 * F);
    k.f.ij_bias_gelu_grad(x.dy, x.u, x.bias ?? 0, x.y ?? 0, du, dbias, acc, R, F);
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

/** [B*T, W] rows, column block `col0 .. col0+hd` of head h -> [B*H, T, hd] (optionally + bias, * scale). */
function rowsToHeads(
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
function headsToRows(
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

function colSumInto(x: Float32Array, R: number, C: number, out: Float32Array): void {
  const acc = new Float64Array(C);
  for (let r = 0, o = 0; r < R; r++, o += C) for (let j = 0; j < C; j++) acc[j] += x[o + j];
  out.set(acc);
}

const splitHeads: Spec = {
  outputs(s, a) {
    const B = a.batch as number, T = a.tokens as number, H = a.heads as number;
    const hd = s.qkv[1] / 3 / H;
    return [[B * H, T, hd], [B * H, T, hd], [B * H, T, hd]];
  },
  simd(k, x, [q, kk, v], s, a) {
    const B = a.batch as number, T = a.tokens as number, H = a.heads as number;
    const W = s.qkv[1], D = W / 3, hd = D / H, b = x.bias ?? 0;
    k.f.ij_rows_to_heads(x.qkv, W, 0, q, B, T, H, hd, b, a.scale as number);
    k.f.ij_rows_to_heads(x.qkv, W, D, kk, B, T, H, hd, b, 1);
    k.f.ij_rows_to_heads(x.qkv, W, 2 * D, v, B, T, H, hd, b, 1);
  },
  run({ qkv, bias }, [q, k, v], s, a) {
    const B = a.batch as number, T = a.tokens as number, H = a.heads as number;
    const W = s.qkv[1], D = W / 3, hd = D / H;
    rowsToHeads(qkv, W, 0, q, B, T, H, hd, bias, a.scale as number);
    rowsToHeads(qkv, W, D, k, B, T, H, hd, bias, 1);
    rowsToHeads(qkv, W, 2 * D, v, B, T, H, hd, bias, 1);
  },
};

const mergeHeads: Spec = {
  outputs(s, a) {
    const [BH, T, hd] = s.dq;
    const H = a.heads as number;
    return [[(BH / H) * T, 3 * H * hd], [3 * H * hd]];
  },
  simd(k, x, [dqkv, dbias], s, a) {
    const [BH, T, hd] = s.dq;
    const H = a.heads as number, B = BH / H, D = H * hd, W = 3 * D;
    k.f.ij_heads_to_rows(x.dq, dqkv, W, 0, B, T, H, hd, a.scale as number);
    k.f.ij_heads_to_rows(x.dk, dqkv, W, D, B, T, H, hd, 1);
    k.f.ij_heads_to_rows(x.dv, dqkv, W, 2 * D, B, T, H, hd, 1);
    k.f.ij_col_sum(dqkv, dbias, k.scratch(8 * W), B * T, W);
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

const headsToRowsK: Spec = {
  outputs(s, a) {
    const [BH, T, hd] = s.x;
    const H = a.heads as number;
    return [[(BH / H) * T, H * hd]];
  },
  simd(k, x, [y], s, a) {
    const [BH, T, hd] = s.x;
    const H = a.heads as number;
    k.f.ij_heads_to_rows(x.x, y, H * hd, 0, BH / H, T, H, hd, 1);
  },
  run({ x }, [y], s, a) {
    const [BH, T, hd] = s.x;
    const H = a.heads as number;
    headsToRows(x, y, H * hd, 0, BH / H, T, H, hd, 1);
  },
};

const rowsToHeadsK: Spec = {
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

const softmax: Spec = {
  outputs: (s) => [s.s],
  simd(k, x, [y], sh, a) {
    const [BH, T, Tk] = sh.s;
    k.f.ij_softmax(x.s, x.keyBias ?? 0, y, BH, T, Tk, a.heads as number);
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

const softmaxGrad: Spec = {
  outputs: (s) => [s.p],
  simd(k, x, [ds], s) {
    const [R, C] = rowsCols(s.p);
    k.f.ij_softmax_grad(x.p, x.dp, ds, R, C);
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

const residual: Spec = {
  outputs: (s) => [s.x],
  simd(k, x, [out], s) {
    const [R, D] = rowsCols(s.x);
    k.f.ij_residual(x.x, x.y, x.bias, out, R, D);
  },
  run({ x, y, bias }, [out], s) {
    const [R, D] = rowsCols(s.x);
    for (let r = 0, o = 0; r < R; r++, o += D) {
      for (let j = 0; j < D; j++) out[o + j] = x[o + j] + y[o + j] + bias[j];
    }
  },
};

const biasAdd: Spec = {
  outputs: (s) => [s.x],
  simd(k, x, [out], s) {
    const [R, D] = rowsCols(s.x);
    k.f.ij_residual(x.x, 0, x.bias, out, R, D);
  },
  run({ x, bias }, [out], s) {
    const [R, D] = rowsCols(s.x);
    for (let r = 0, o = 0; r < R; r++, o += D) {
      for (let j = 0; j < D; j++) out[o + j] = x[o + j] + bias[j];
    }
  },
};

const colSum: Spec = {
  outputs: (s) => [[s.x[s.x.length - 1]]],
  simd(k, x, [out], s) {
    const [R, C] = rowsCols(s.x);
    k.f.ij_col_sum(x.x, out, k.scratch(8 * C), R, C);
  },
  run({ x }, [out], s) {
    const [R, C] = rowsCols(s.x);
    colSumInto(x, R, C, out);
  },
};

const smoothL1: Spec = {
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

const smoothL1Grad: Spec = {
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

const adamw: Spec = {
  outputs: (s) => [s.p, s.p, s.p],
  simd(k, x, [p1, m1, v1], s, a) {
    const lr = a.lr as number;
    k.f.ij_adamw(
      x.p,
      x.m,
      x.v,
      x.g,
      p1,
      m1,
      v1,
      tf.util.sizeFromShape(s.p),
      a.beta1 as number,
      a.beta2 as number,
      a.eps as number,
      lr / (a.c1 as number),
      1 / Math.sqrt(a.c2 as number),
      1 - lr * (a.decay as number),
    );
  },
  run({ p, m, v, g }, [p1, m1, v1], _s, a) {
    const b1 = a.beta1 as number, b2 = a.beta2 as number, eps = a.eps as number;
    const lr = a.lr as number, c1 = a.c1 as number, c2 = a.c2 as number;
    const keep = 1 - lr * (a.decay as number);
    const step = lr / c1, root = 1 / Math.sqrt(c2);
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const mi = b1 * m[i] + (1 - b1) * gi;
      const vi = b2 * v[i] + (1 - b2) * gi * gi;
      m1[i] = mi;
      v1[i] = vi;
      p1[i] = p[i] * keep - (step * mi) / (Math.sqrt(vi) * root + eps);
    }
  },
};

const ema: Spec = {
  outputs: (s) => [s.t],
  simd(k, x, [out], s, a) {
    const m = a.momentum as number;
    k.f.ij_ema(x.t, x.c, out, tf.util.sizeFromShape(s.t), m, 1 - m);
  },
  run({ t, c }, [out], _s, a) {
    const m = a.momentum as number, k = 1 - m;
    for (let i = 0; i < t.length; i++) out[i] = m * t[i] + k * c[i];
  },
};

const SPECS: Record<string, Spec> = {
  IjLayerNorm: layerNorm,
  IjLayerNormGrad: layerNormGrad,
  IjBiasGelu: biasGelu,
  IjBiasGeluGrad: biasGeluGrad,
  IjSplitHeads: splitHeads,
  IjMergeHeads: mergeHeads,
  IjHeadsToRows: headsToRowsK,
  IjRowsToHeads: rowsToHeadsK,
  IjSoftmax: softmax,
  IjSoftmaxGrad: softmaxGrad,
  IjResidual: residual,
  IjBiasAdd: biasAdd,
  IjColSum: colSum,
  IjSmoothL1: smoothL1,
  IjSmoothL1Grad: smoothL1Grad,
  IjAdamW: adamw,
  IjEma: ema,
};

/** The names of the kernels in this file. */
export type FusedKernelName = keyof typeof SPECS;

/**
 * Register every kernel of this file for `wasm` (when its backend module is loaded) and `cpu`.
 * Idempotent. Nothing is replaced: the names are new.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { registerFusedKernels } from "./fused_kernels.ts";
 * registerFusedKernels();
 * if (!tf.getKernel("IjLayerNorm", "cpu")) throw new Error("not registered");
 * ```
 */
export function registerFusedKernels(): void {
  for (const [name, spec] of Object.entries(SPECS)) {
    if (!tf.getKernel(name, "cpu")) {
      tf.registerKernel({ kernelName: name, backendName: "cpu", kernelFunc: cpuKernel(spec) });
    }
    // The wasm backend registers its stock kernels on import; without that import there is no wasm.
    if (tf.getKernel("Add", "wasm") && !tf.getKernel(name, "wasm")) {
      tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc: wasmKernel(spec) });
    }
  }
}

/** True when the fused kernels can run on the active backend. */
export function fusedKernelsAvailable(): boolean {
  const b = tf.getBackend();
  return (b === "wasm" || b === "cpu") && tf.getKernel("IjLayerNorm", b) !== undefined;
}

/**
 * Run one kernel of this file on the active backend (no gradient is recorded: the callers in
 * lib/engine/fused.ts wrap them in `tf.customGrad`). Optional inputs may be left out.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { registerFusedKernels, runFused } from "./fused_kernels.ts";
 * await tf.setBackend("cpu");
 * registerFusedKernels();
 * const [y, stats] = runFused("IjLayerNorm", { x: tf.tensor2d([[1, 3]]) }, { eps: 0 }) as tf.Tensor[];
 * if (y.dataSync().join() !== "-1,1" || stats.dataSync()[0] !== 2) throw new Error("layer norm");
 * ```
 */
export function runFused(
  name: FusedKernelName,
  inputs: Record<string, tf.Tensor | undefined>,
  attrs: Attrs = {},
): tf.Tensor | tf.Tensor[] {
  const ins: Record<string, tf.Tensor> = {};
  for (const [k, t] of Object.entries(inputs)) {
    if (!t) continue;
    if (t.dtype !== "float32") throw new Error(`${name}: input ${k} must be float32, got ${t.dtype}`);
    ins[k] = t;
  }
  return tf.engine().runKernel(name, ins as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as
    | tf.Tensor
    | tf.Tensor[];
}
