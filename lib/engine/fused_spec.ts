/**
 * What a fused kernel is (its output shapes, a TypeScript loop, optionally the same through the SIMD
 * module) and how one becomes a tfjs kernel function for the `wasm` backend (on the wasm heap) and
 * the `cpu` backend (on its arrays).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { simdFor, type SimdModule, simdWanted, type WasmLike } from "./fused_simd.ts";

interface CpuLike {
  data: { get(dataId: unknown): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: "float32", values: Float32Array): tf.TensorInfo;
}

export type Attrs = Record<string, number | boolean>;
export type Views = Record<string, Float32Array>;
export type Shapes = Record<string, number[]>;
/** Byte offsets of tensors in the wasm memory; 0 stands for an absent optional input. */
export type Ptrs = Record<string, number>;

/**
 * One kernel: output shapes from the input shapes, the TypeScript loop that fills the outputs, and
 * optionally the same through the SIMD module (lib/engine/simd/kernels.c) on the wasm heap.
 */
export interface Spec {
  outputs(s: Shapes, a: Attrs): number[][];
  run(x: Views, out: Float32Array[], s: Shapes, a: Attrs): void;
  simd?(k: SimdModule, x: Ptrs, out: number[], s: Shapes, a: Attrs): void;
}

/** A tfjs kernel function for the wasm backend running `spec` on the tensors in the wasm heap. */
export function wasmKernel(spec: Spec): tf.KernelFunc {
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

/** A tfjs kernel function for the cpu backend running `spec`'s loop on the tensors' arrays. */
export function cpuKernel(spec: Spec): tf.KernelFunc {
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
