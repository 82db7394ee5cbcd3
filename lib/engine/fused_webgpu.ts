/**
 * The fused kernels of lib/engine/fused_kernels.ts as WGSL compute shaders for tfjs's `webgpu`
 * backend, dispatched into tfjs's own command stream by lib/engine/webgpu_dispatch.ts: the forward
 * kernels in fused_webgpu_forward.ts, the backward ones in fused_webgpu_grad.ts, the shader shapes
 * they share (elementwise, row reductions, column sums) in fused_webgpu_wgsl.ts. `IjAdamW` and
 * `IjEma` are not here (lib/engine/fused_update_all.ts updates every parameter in one dispatch).
 *
 * Why: on a GPU each tfjs op is at least one dispatch (~0.06-0.1 ms on a real GPU whatever its
 * size), and a transformer block built from stock ops takes dozens; these kernels take one each,
 * two where a column sum over rows needs a second pass. Every kernel matches the `cpu` kernels
 * (the TypeScript reference loops) within float32 rounding: tests/engine/fused_webgpu_test.ts.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { FORWARD_KERNELS } from "./fused_webgpu_forward.ts";
import { GRAD_KERNELS } from "./fused_webgpu_grad.ts";

/** Kernel functions for the `webgpu` backend by fused-kernel name (lib/engine/fused_kernels.ts). */
export const WEBGPU_KERNELS: Record<string, tf.KernelFunc> = { ...FORWARD_KERNELS, ...GRAD_KERNELS };
