/**
 * Kernel replacements for tfjs-wasm that change no results, only cost.
 *
 * - `Identity` by reference. tfjs saves every tensor a gradient needs by cloning it (an Identity
 *   kernel). The stock wasm Identity copies the data, so a training step held every activation
 *   twice: at batch 64 the quick preset outgrew the 2 GB a wasm pointer can address and aborted.
 *   Tensors are immutable in tfjs, so the clone can share the buffer and count a reference instead,
 *   as the cpu backend's Identity and wasm's own Reshape already do.
 * - `Tile` and `GatherV2` (rows of a table, axis 0) as whole-row copies. The stock kernels move one
 *   element at a time through index arithmetic: tiling the position embedding to a batch of 64
 *   full images took 18 ms and gathering the targets' rows 15-30 ms, against about 1 ms as row
 *   copies. Other cases (other dtypes, gathers on other axes or with batch dims) go to the stock
 *   kernels.
 * - `Slice` and `SplitV` as block copies within the heap. The stock Slice first reads its whole input
 *   out of the heap into a fresh array (its `readSync` copies), then copies the part it keeps: the
 *   predictor's output slice and the gradients of its input's concat and tile (one SplitV and four
 *   Slices of tensors of 1-2.5 MB) took 15-30 ms a reference step (2 cores, 2026-12-04).
 * - `BatchMatMul` through our SIMD matrix product (lib/engine/simd_gemm.ts), which native BLAS replaces
 *   in turn where it is found.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { patchWasmKernels } from "./wasm_fixes.ts";
 * patchWasmKernels();
 * await tf.setBackend("wasm");
 * const a = tf.tensor1d([1, 2, 3]);
 * const b = tf.clone(a);
 * a.dispose();
 * if (b.dataSync().join() !== "1,2,3") throw new Error("clone lost its data");
 * const t = tf.tile(tf.tensor2d([[1, 2]]), [2, 2]); // [2, 4]
 * if (t.dataSync().join() !== "1,2,1,2,1,2,1,2") throw new Error(`tile gave ${t.dataSync()}`);
 * const g = tf.gather(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor1d([1, 1, 0], "int32")); // [3, 2]
 * if (g.dataSync().join() !== "3,4,3,4,1,2") throw new Error(`gather gave ${g.dataSync()}`);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { simdBatchMatMul } from "./simd_gemm.ts";

interface WasmLike {
  incRef(dataId: object): void;
  wasm: { HEAP32: Int32Array };
  dataIdMap: { get(dataId: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

let patched = false;

/** Replace a wasm kernel, keeping the stock one's setup (it binds the C function it may fall back to). */
function replace(name: string, make: (stock: tf.KernelConfig) => tf.KernelFunc): void {
  const stock = tf.getKernel(name, "wasm");
  if (!stock) return;
  tf.unregisterKernel(name, "wasm");
  tf.registerKernel({
    kernelName: name,
    backendName: "wasm",
    setupFunc: stock.setupFunc,
    kernelFunc: make(stock),
  });
}

/** Float32 and int32 tensors: 4 bytes an element, copied as int32 words. */
const WORD_TYPES = new Set(["float32", "int32"]);

/** Install the replacements (idempotent). Call before or after the wasm backend starts. */
export function patchWasmKernels(): void {
  if (patched) return;
  if (!tf.getKernel("Identity", "wasm")) return; // wasm backend not imported: nothing to patch
  replace("Identity", (stock) => ({ inputs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    if (x.dtype === "string") return stock.kernelFunc({ inputs, backend, attrs: {} });
    (backend as unknown as WasmLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  replace("Tile", (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const reps = (args.attrs as unknown as { reps: number[] }).reps;
    if (!WORD_TYPES.has(x.dtype) || x.shape.length === 0) return stock.kernelFunc(args);
    const be = args.backend as unknown as WasmLike;
    const outShape = x.shape.map((d, i) => d * reps[i]);
    const out = be.makeOutput(outShape, x.dtype);
    tileWords(be, x, out, reps);
    return out;
  });
  replace("GatherV2", (stock) => (args) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    if (ax !== 0 || batchDims || !WORD_TYPES.has(x.dtype) || indices.dtype !== "int32") {
      return stock.kernelFunc(args);
    }
    const be = args.backend as unknown as WasmLike;
    const rows = x.shape[0];
    const row = x.shape.length > 1 ? tf.util.sizeFromShape(x.shape.slice(1)) : 1;
    const n = tf.util.sizeFromShape(indices.shape);
    const out = be.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    const heap = be.wasm.HEAP32; // after makeOutput, which may grow the memory
    const xo = be.dataIdMap.get(x.dataId).memoryOffset / 4;
    const io = be.dataIdMap.get(indices.dataId).memoryOffset / 4;
    const oo = be.dataIdMap.get(out.dataId).memoryOffset / 4;
    for (let i = 0; i < n; i++) {
      const r = heap[io + i];
      if (!(r >= 0 && r < rows)) {
        throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`); // as the stock kernel
      }
      heap.copyWithin(oo + i * row, xo + r * row, xo + (r + 1) * row);
    }
    return out;
  });
  replace("Slice", (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!WORD_TYPES.has(x.dtype)) return stock.kernelFunc(args);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [b, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    const be = args.backend as unknown as WasmLike;
    const out = be.makeOutput(sz, x.dtype);
    sliceWords(be, x, b, sz, out);
    return out;
  });
  replace("SplitV", (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!WORD_TYPES.has(x.dtype)) return stock.kernelFunc(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as {
      numOrSizeSplits: number | number[];
      axis: number;
    };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
    const be = args.backend as unknown as WasmLike;
    const begin = x.shape.map(() => 0);
    return sizes.map((n) => {
      const sz = x.shape.slice();
      sz[ax] = n;
      const out = be.makeOutput(sz, x.dtype);
      sliceWords(be, x, begin, sz, out);
      begin[ax] += n;
      return out;
    });
  });
  replace("BatchMatMul", simdBatchMatMul);
  patched = true;
}

/**
 * out = x[begin : begin + size] (as tf.slice), one copyWithin per contiguous run: the run spans the
 * innermost axis that is not taken whole, times every axis after it.
 */
function sliceWords(
  be: WasmLike,
  x: tf.TensorInfo,
  begin: number[],
  size: number[],
  out: tf.TensorInfo,
): void {
  const n = tf.util.sizeFromShape(size);
  if (n === 0) return;
  const heap = be.wasm.HEAP32; // after makeOutput, which may grow the memory
  const xs = x.shape, r = xs.length;
  const strides = [...tf.util.computeStrides(xs), 1];
  let a = r - 1; // axes after `a` are whole
  while (a > 0 && begin[a] === 0 && size[a] === xs[a]) a--;
  const run = r === 0 ? 1 : size[a] * strides[a];
  const xo = be.dataIdMap.get(x.dataId).memoryOffset / 4;
  const oo = be.dataIdMap.get(out.dataId).memoryOffset / 4;
  const idx = new Array(Math.max(a, 0)).fill(0); // index over the axes before `a`
  for (let c = 0, dst = oo; c < n / run; c++, dst += run) {
    let src = xo + (r === 0 ? 0 : begin[a] * strides[a]);
    for (let d = 0; d < a; d++) src += (begin[d] + idx[d]) * strides[d];
    heap.copyWithin(dst, src, src + run);
    for (let d = a - 1; d >= 0; d--) { // next run
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
}

/** out = x tiled `reps` times along each axis, copying whole rows of the last axis. */
function tileWords(be: WasmLike, x: tf.TensorInfo, out: tf.TensorInfo, reps: number[]): void {
  const heap = be.wasm.HEAP32;
  const xs = x.shape, r = xs.length;
  const inner = xs[r - 1];
  const outRow = inner * reps[r - 1];
  const nRows = outRow === 0 ? 0 : tf.util.sizeFromShape(out.shape) / outRow;
  const xo = be.dataIdMap.get(x.dataId).memoryOffset / 4;
  const oo = be.dataIdMap.get(out.dataId).memoryOffset / 4;
  const strides = tf.util.computeStrides(xs); // element strides of x
  const outDims = out.shape.slice(0, -1);
  const idx = new Array(r - 1).fill(0); // the current output row's index over the leading axes
  for (let row = 0; row < nRows; row++) {
    let src = xo;
    for (let d = 0; d < r - 1; d++) src += (idx[d] % xs[d]) * strides[d];
    const dst = oo + row * outRow;
    for (let k = 0; k < reps[r - 1]; k++) heap.copyWithin(dst + k * inner, src, src + inner);
    for (let d = r - 2; d >= 0; d--) { // next output row
      if (++idx[d] < outDims[d]) break;
      idx[d] = 0;
    }
  }
}
