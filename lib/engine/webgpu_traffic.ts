/**
 * What a piece of work costs the GPU besides arithmetic: compute dispatches, buffer copies, bytes
 * uploaded (tensor data and uniforms) and bytes read back. {@link watchWebGpu} starts counting on
 * the active `webgpu` backend; {@link webGpuTraffic} reads the totals, so a caller takes the
 * difference around the work (the bench does, around one train step).
 *
 * Counting wraps WebGPU's own entry points (compute-pass dispatch, command-encoder copy,
 * `queue.writeBuffer`) and two methods of tfjs's backend (the upload of a tensor's CPU values, the
 * download of a buffer), so tfjs's kernels and ours (lib/engine/webgpu_dispatch.ts) are counted alike.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Totals since {@link watchWebGpu} was first called. */
export interface WebGpuTraffic {
  dispatches: number;
  copies: number;
  bytesUp: number;
  bytesDown: number;
}

const totals: WebGpuTraffic = { dispatches: 0, copies: 0, bytesUp: 0, bytesDown: 0 };
let prototypesWrapped = false;
const watched = new WeakSet<object>();

interface Watchable {
  queue: GPUQueue;
  tensorMap: { get(id: unknown): { values?: ArrayLike<number> | null; resource?: unknown; dtype: string } };
  uploadToGPU(id: unknown): void;
  getBufferData(b: GPUBuffer): Promise<ArrayBuffer>;
}

function wrapPrototypes(): void {
  if (prototypesWrapped) return;
  prototypesWrapped = true;
  const pass = GPUComputePassEncoder.prototype;
  const dispatch = pass.dispatchWorkgroups;
  pass.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...a: Parameters<typeof dispatch>) {
    totals.dispatches++;
    return dispatch.apply(this, a);
  };
  const enc = GPUCommandEncoder.prototype;
  const copy = enc.copyBufferToBuffer as (...a: unknown[]) => void;
  (enc as unknown as { copyBufferToBuffer: (...a: unknown[]) => void }).copyBufferToBuffer = function (
    this: GPUCommandEncoder,
    ...a: unknown[]
  ) {
    totals.copies++;
    return copy.apply(this, a);
  };
}

/**
 * Start counting on the active backend when it is `webgpu` (a no-op elsewhere); true when counting.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { watchWebGpu } from "./webgpu_traffic.ts";
 * await tf.setBackend("cpu");
 * if (watchWebGpu()) throw new Error("cpu has no GPU traffic");
 * ```
 */
export function watchWebGpu(): boolean {
  if (tf.getBackend() !== "webgpu") return false;
  const be = tf.backend() as unknown as Watchable;
  if (watched.has(be)) return true;
  watched.add(be);
  wrapPrototypes();
  const upload = be.uploadToGPU.bind(be);
  be.uploadToGPU = (id) => {
    const d = be.tensorMap.get(id);
    if (d.resource == null && d.values) totals.bytesUp += 4 * d.values.length;
    upload(id);
  };
  const download = be.getBufferData.bind(be);
  be.getBufferData = (b) => {
    totals.bytesDown += b.size;
    return download(b);
  };
  const write = be.queue.writeBuffer.bind(be.queue) as (...a: unknown[]) => void;
  (be.queue as unknown as { writeBuffer: (...a: unknown[]) => void }).writeBuffer = (...a: unknown[]) => {
    const data = a[2] as ArrayBuffer | ArrayBufferView;
    totals.bytesUp += (a[4] as number | undefined) ?? data.byteLength;
    write(...a);
  };
  return true;
}

/** The totals so far (a copy). */
export function webGpuTraffic(): WebGpuTraffic {
  return { ...totals };
}
