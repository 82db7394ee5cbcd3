/**
 * Our own compute shaders on tfjs's `webgpu` backend: {@link gpuDispatch} records one dispatch of a
 * WGSL shader into the backend's own command stream, binding any number of tensors (inputs and
 * outputs alike, read-write) and a few scalar uniforms, and {@link gpuCopy} records a buffer copy.
 * Both go through the backend's encoder, so they run in order with tfjs's kernels, and mark the
 * tensors busy until the commands are submitted (tfjs then frees them no earlier).
 *
 * Why not `backend.runWebGPUProgram`: a tfjs program has exactly one output and its shader is
 * generated around tfjs's own helpers; the fused kernels of a transformer block have up to three
 * outputs, and the parameter updates write many buffers at once. One dispatch of ours costs what
 * one of tfjs's does (a bind group and a small uniform buffer from tfjs's pool).
 *
 * This reaches into the backend's fields (`commandEncoder`, `computePassEncoder`, `tensorMap`, ...)
 * that tfjs-backend-webgpu 4.22 declares private; deno.json pins that version, and
 * tests/engine/fused_webgpu_test.ts runs every shader against the `cpu` kernels.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** The parts of tfjs-backend-webgpu's WebGPUBackend used here (4.22.0). */
export interface WebGpuLike {
  device: GPUDevice;
  tensorMap: { get(dataId: unknown): { resource?: unknown; refCount: number } };
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
  uploadToGPU(dataId: unknown): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  makeTensorInfo(shape: number[], dtype: "float32"): tf.TensorInfo;
  makeUniforms(u: { type: "int32" | "uint32" | "float32"; data: number[] }[]): GPUBufferBinding;
}

/** A scalar uniform: `i32`, `u32` or `f32`, in the order of the shader's `struct U` fields. */
export type Uniform = ["i32" | "u32" | "f32", number];

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** The GPU buffer holding `t` (uploaded first if its values are still on the CPU). */
export function gpuBuffer(be: WebGpuLike, t: tf.TensorInfo): GPUBuffer {
  be.uploadToGPU(t.dataId);
  const r = be.tensorMap.get(t.dataId).resource;
  if (!(r instanceof GPUBuffer)) throw new Error("webgpu tensor is not held in a GPU buffer");
  return r;
}

/** A new float32 output of `shape` with its GPU buffer allocated (from tfjs's pool). */
export function gpuOutput(be: WebGpuLike, shape: number[]): tf.TensorInfo {
  const t = be.makeTensorInfo(shape, "float32");
  be.uploadToGPU(t.dataId);
  return t;
}

function pipeline(be: WebGpuLike, key: string, wgsl: () => string): GPUComputePipeline {
  let cache = pipelines.get(be.device);
  if (!cache) pipelines.set(be.device, cache = new Map());
  let p = cache.get(key);
  if (!p) {
    const module = be.device.createShaderModule({ code: wgsl(), label: key });
    p = be.device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint: "main" },
      label: key,
    });
    cache.set(key, p);
  }
  return p;
}

/** Submit after this many dispatches, as tfjs does (its WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE). */
const SUBMIT_EVERY = 15;

/**
 * Record one dispatch of the shader `wgsl()` (compiled once per `key`; entry point `main`). Binding
 * i of group 0 is `tensors[i]` as `var<storage, read_write>` (or `read`), binding `tensors.length`
 * the uniforms as `var<uniform> u: U` when there are any.
 *
 * @example
 * ```ts ignore
 * // doubles x into y: @binding(0) x, @binding(1) y, @binding(2) u: U { n: u32 }
 * gpuDispatch(be, "double", () => SHADER, [x, y], [["u32", n]], [Math.ceil(n / 64), 1, 1]);
 * ```
 */
export function gpuDispatch(
  be: WebGpuLike,
  key: string,
  wgsl: () => string,
  tensors: tf.TensorInfo[],
  uniforms: Uniform[],
  workgroups: [number, number, number],
): void {
  if (workgroups.some((n) => n === 0)) return;
  const p = pipeline(be, key, wgsl);
  const entries: GPUBindGroupEntry[] = tensors.map((t, i) => ({
    binding: i,
    resource: { buffer: gpuBuffer(be, t) },
  }));
  if (uniforms.length) {
    const u = be.makeUniforms(uniforms.map(([type, v]) => ({
      type: type === "i32" ? "int32" as const : type === "u32" ? "uint32" as const : "float32" as const,
      data: [v],
    })));
    entries.push({ binding: tensors.length, resource: u });
  }
  for (const t of tensors) be.commandQueueOwnedIds.add(t.dataId);
  const bindGroup = be.device.createBindGroup({ layout: p.getBindGroupLayout(0), entries });
  be.ensureCommandEncoderReady();
  if (!be.computePassEncoder) be.computePassEncoder = be.commandEncoder!.beginComputePass({});
  be.computePassEncoder.setPipeline(p);
  be.computePassEncoder.setBindGroup(0, bindGroup);
  be.computePassEncoder.dispatchWorkgroups(...workgroups);
  if (++be.dispatchCountInPass >= SUBMIT_EVERY) {
    be.endComputePassEncoder();
    be.submitQueue();
  }
}

/** Record a copy of `bytes` bytes from `src` (at byte `srcOffset`) into `dst` (at `dstOffset`). */
export function gpuCopy(
  be: WebGpuLike,
  src: tf.TensorInfo,
  srcOffset: number,
  dst: tf.TensorInfo,
  dstOffset: number,
  bytes: number,
): void {
  if (bytes === 0) return;
  const s = gpuBuffer(be, src), d = gpuBuffer(be, dst);
  be.commandQueueOwnedIds.add(src.dataId);
  be.commandQueueOwnedIds.add(dst.dataId);
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  be.commandEncoder!.copyBufferToBuffer(s, srcOffset, d, dstOffset, bytes);
}

/** Workgroups of `size` threads to cover n items, split over y when x would pass the 65535 limit. */
export function groupsFor(n: number, size: number): [number, number, number] {
  const g = Math.ceil(n / size);
  if (g <= 65535) return [g, 1, 1];
  const y = Math.ceil(g / 65535);
  return [Math.ceil(g / y), y, 1];
}
