/**
 * The WebAssembly SIMD module of the fused kernels (lib/engine/simd/kernels.c), instantiated on the
 * wasm backend's own memory so its functions read and write tensors in place, and the switch between
 * it and the TypeScript loops (`IJEPA_SIMD`, {@link setSimd}).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  KERNELS_FMA_WASM_BASE64,
  KERNELS_SHARED_FMA_WASM_BASE64,
  KERNELS_SHARED_WASM_BASE64,
  KERNELS_WASM_BASE64,
} from "./simd/kernels_wasm.ts";
import type { GemmHeap } from "./gemm_copies.ts";

/** The parts of tfjs-backend-wasm's BackendWasm the fused kernels touch. */
export interface WasmLike {
  wasm: {
    HEAPF32: Float32Array;
    asm?: { memory?: WebAssembly.Memory };
    _malloc(bytes: number): number;
    _free(ptr: number): void;
  };
  dataIdMap: { get(dataId: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
}

/** The exports of lib/engine/simd/kernels.c, plus a float64 scratch buffer in the same memory. */
export interface SimdModule {
  // deno-lint-ignore no-explicit-any
  f: Record<string, (...args: number[]) => any>;
  /** A pointer to at least `bytes` bytes of scratch memory (valid until the next call). */
  scratch(bytes: number): number;
  /** The wasm backend's memory and allocator, for worker threads computing in it when it is shared. */
  heap?: GemmHeap;
}

const simdModules = new WeakMap<object, SimdModule | null>();

/**
 * Whether the environment variable `name` turns something off (`off`, `0` or `false`); false when
 * unset or unreadable (no --allow-env).
 */
export function envSaysOff(name: string): boolean {
  try {
    return ["off", "0", "false"].includes((Deno.env.get(name) ?? "").trim().toLowerCase());
  } catch {
    return false;
  }
}

function decode(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

let fmaChoice: boolean | undefined;

/**
 * Whether the SIMD module uses relaxed SIMD's fused multiply-add (the matrix-product kernel, attention's
 * dot products, and the erf and exp polynomials of GELU, softmax and their gradients): where this engine
 * validates relaxed SIMD (V8 11.4 and later) unless `IJEPA_FMA=off`. Decided once per process, so
 * that the main thread and the product's worker threads (lib/engine/gemm_pool.ts) run the same
 * module and a product's bits do not depend on how it was split. A fused multiply-add rounds once
 * where a multiply and an add round twice: results differ from the plain build in the last bits,
 * and from machine to machine where V8 has no FMA instruction to emit (it then multiplies and adds).
 * Measured 2026-12-04, 2 cores: 3136x192x768 on one thread in 21 ms against 24 ms.
 */
export function simdFma(): boolean {
  fmaChoice ??= !envSaysOff("IJEPA_FMA") && WebAssembly.validate(decode(KERNELS_FMA_WASM_BASE64));
  return fmaChoice;
}

/**
 * The SIMD module's bytes for a memory that is shared (worker threads, and tfjs-wasm's own memory
 * made shared: lib/engine/shared_heap.ts) or not; FMA or plain as {@link simdFma} decides, the same
 * for every thread.
 */
export function simdModuleBytes(shared: boolean): Uint8Array<ArrayBuffer> {
  const fma = simdFma();
  return decode(
    shared
      ? (fma ? KERNELS_SHARED_FMA_WASM_BASE64 : KERNELS_SHARED_WASM_BASE64)
      : (fma ? KERNELS_FMA_WASM_BASE64 : KERNELS_WASM_BASE64),
  );
}

/** SIMD or TypeScript loops on wasm: {@link setSimd}, else `IJEPA_SIMD` (read on first use). */
let simdChoice: boolean | undefined;

/** Whether the wasm kernels should run through the SIMD module ({@link setSimd}, else `IJEPA_SIMD`). */
export function simdWanted(): boolean {
  simdChoice ??= !envSaysOff("IJEPA_SIMD");
  return simdChoice;
}

/**
 * Choose between the SIMD module and the TypeScript loops for the wasm kernels (default: SIMD
 * where it loads, unless `IJEPA_SIMD=off`). For tests and measurements; results agree to float32
 * rounding.
 *
 * @example
 * ```ts
 * import { setSimd } from "./fused_simd.ts";
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
export function simdFor(be: WasmLike): SimdModule | null {
  const key = be.wasm as object;
  let m = simdModules.get(key);
  if (m !== undefined) return m;
  m = null;
  const memory = be.wasm.asm?.memory;
  if (memory instanceof WebAssembly.Memory) {
    try {
      const bytes = simdModuleBytes(memory.buffer instanceof SharedArrayBuffer);
      const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
      let ptr = 0, size = 0;
      m = {
        // deno-lint-ignore no-explicit-any
        f: inst.exports as Record<string, (...args: number[]) => any>,
        // emscripten's malloc returns a signed int: past 2 GiB of heap (ViT-H/14's weights) it reads
        // negative, which a view into the memory cannot start at
        heap: {
          memory,
          malloc: (n: number) => be.wasm._malloc(n) >>> 0,
          free: (at: number) => be.wasm._free(at),
        },
        scratch(bytes: number): number {
          if (bytes > size) {
            if (ptr) be.wasm._free(ptr);
            size = Math.max(bytes, 2 * size, 4096);
            ptr = be.wasm._malloc(size) >>> 0;
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
