/**
 * The fused kernels of lib/engine/fused_kernels.ts as WGSL compute shaders for tfjs's `webgpu`
 * backend (dispatched through lib/engine/webgpu_dispatch.ts). Work in progress.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** Kernel functions for the `webgpu` backend by fused-kernel name (lib/engine/fused_kernels.ts). */
export const WEBGPU_KERNELS: Record<string, tf.KernelFunc> = {};
