/**
 * Kernel replacements for tfjs-wasm that change no results, only cost.
 *
 * - `Identity` by reference. tfjs saves every tensor a gradient needs by cloning it (an Identity
 *   kernel). The stock wasm Identity copies the data, so a training step held every activation
 *   twice: at batch 64 the quick preset outgrew the 2 GB a wasm pointer can address and aborted.
 *   Tensors are immutable in tfjs, so the clone can share the buffer and count a reference instead,
 *   as the cpu backend's Identity and wasm's own Reshape already do.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { patchWasmKernels } from "./kernels.ts";
 * patchWasmKernels();
 * await tf.setBackend("wasm");
 * const a = tf.tensor1d([1, 2, 3]);
 * const b = tf.clone(a);
 * a.dispose();
 * if (b.dataSync().join() !== "1,2,3") throw new Error("clone lost its data");
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";

interface WasmLike {
  incRef(dataId: object): void;
}

let patched = false;

/** Install the replacements (idempotent). Call before or after the wasm backend starts. */
export function patchWasmKernels(): void {
  if (patched) return;
  const stock = tf.getKernel("Identity", "wasm");
  if (!stock) return; // wasm backend not imported: nothing to patch
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel({
    kernelName: "Identity",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      if (x.dtype === "string") return stock.kernelFunc({ inputs, backend, attrs: {} });
      (backend as unknown as WasmLike).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
  patched = true;
}
