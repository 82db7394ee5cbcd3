/**
 * The elementwise and row-wise pieces of a transformer block, run on the tensors' own memory: the
 * wasm heap (a view at the tensor's offset, as lib/engine/blas_kernels.ts does for matrix products)
 * or the cpu backend's arrays; on `webgpu`, WGSL compute shaders (lib/engine/fused_webgpu.ts). Each
 * is registered as a tfjs kernel for `cpu`, `wasm` and `webgpu`, so it allocates and frees through the
 * backend like any stock kernel. lib/engine/fused_block.ts builds
 * the forward and backward of a block from these kernels and BLAS products.
 *
 * Each kernel exists twice: a TypeScript loop (the cpu backend's, and the readable reference) and
 * the same maths in 128-bit WebAssembly SIMD (lib/engine/simd/kernels.c), which the wasm backend runs on its
 * own memory when the engine supports it (`IJEPA_SIMD=off` or `setSimd` of lib/engine/fused_simd.ts picks the loops).
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
 * | `IjAttention` | qkv [R,3D] (bias added), keyBias [B,1,T]? | o [R,D], p [B*H,T,T] (not on webgpu) |
 * | `IjAttentionGrad` | qkv, p, dout [R,D] | dqkv [R,3D], ds [B*H,T,T] (not on webgpu) |
 *
 * Sums over rows (bias and LayerNorm parameter gradients) accumulate in float64. The kernels live in
 * fused_forward_kernels.ts and fused_grad_kernels.ts (WGSL: fused_webgpu.ts), the SIMD module's
 * loading in fused_simd.ts; this file registers and runs them.
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
import { attention, attentionGrad } from "./fused_attention_kernels.ts";
import * as forward from "./fused_forward_kernels.ts";
import * as grad from "./fused_grad_kernels.ts";
import { type Attrs, cpuKernel, type Spec, wasmKernel } from "./fused_spec.ts";
import { registerUpdateAllKernels } from "./fused_update_all.ts";
import { WEBGPU_KERNELS } from "./fused_webgpu.ts";

const SPECS: Record<string, Spec> = {
  IjLayerNorm: forward.layerNorm,
  IjLayerNormGrad: grad.layerNormGrad,
  IjBiasGelu: forward.biasGelu,
  IjBiasGeluGrad: grad.biasGeluGrad,
  IjSplitHeads: forward.splitHeads,
  IjMergeHeads: grad.mergeHeads,
  IjHeadsToRows: forward.headsToRowsK,
  IjRowsToHeads: forward.rowsToHeadsK,
  IjSoftmax: forward.softmax,
  IjSoftmaxGrad: grad.softmaxGrad,
  IjResidual: forward.residual,
  IjBiasAdd: forward.biasAdd,
  IjColSum: grad.colSum,
  IjSmoothL1: forward.smoothL1,
  IjSmoothL1Grad: grad.smoothL1Grad,
  IjAttention: attention,
  IjAttentionGrad: attentionGrad,
};
/** Kernels with no WGSL twin: webgpu runs attention through the head-layout kernels instead. */
const NOT_ON_WEBGPU = new Set(["IjAttention", "IjAttentionGrad"]);

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
    const gpu = WEBGPU_KERNELS[name];
    if (gpu && tf.getKernel("Add", "webgpu") && !tf.getKernel(name, "webgpu")) {
      tf.registerKernel({ kernelName: name, backendName: "webgpu", kernelFunc: gpu });
    }
  }
  registerUpdateAllKernels();
}

/** True when the fused kernels can run on the active backend. */
export function fusedKernelsAvailable(): boolean {
  const b = tf.getBackend();
  return (b === "wasm" || b === "cpu" || b === "webgpu") &&
    Object.keys(SPECS).every((name) =>
      tf.getKernel(name, b) !== undefined || (b === "webgpu" && NOT_ON_WEBGPU.has(name))
    );
}

/**
 * Run one kernel of this file on the active backend (no gradient is recorded: the callers in
 * lib/engine/fused_ops.ts and fused_block.ts wrap them in `tf.customGrad`).
 * Optional inputs may be left out.
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
