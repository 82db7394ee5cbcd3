/**
 * Where the fused operations run. {@link fusedEnabled} says whether the model uses them on the
 * active backend. By default that is `wasm` (SIMD kernels on the wasm heap) and `webgpu` (WGSL
 * shaders, lib/engine/fused_webgpu.ts, once every kernel has one); `cpu` stays the autodiff
 * reference the tests compare against. `IJEPA_FUSED=off` turns
 * them off everywhere, `IJEPA_FUSED=on` also on cpu.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fusedKernelsAvailable, registerFusedKernels } from "./fused_kernels.ts";

/** When the model uses the fused path: `auto` = on wasm and webgpu, `on` = also cpu, `off` = never. */
export type FusedMode = "auto" | "on" | "off";

let mode: FusedMode | undefined;

/** The mode from `IJEPA_FUSED` (read once; unset or unreadable means `auto`). */
export function fusedMode(): FusedMode {
  if (mode === undefined) {
    let v = "auto";
    try {
      v = (Deno.env.get("IJEPA_FUSED") ?? "auto").trim().toLowerCase();
    } catch {
      // no --allow-env: the default
    }
    mode = v === "off" || v === "0" || v === "false" ? "off" : v === "on" || v === "1" ? "on" : "auto";
  }
  return mode;
}

/**
 * Whether the model takes the fused path on the active backend (see the module notes). Registers
 * the kernels on first use.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fusedEnabled } from "./fused_mode.ts";
 * await tf.setBackend("cpu");
 * if (fusedEnabled() && Deno.env.get("IJEPA_FUSED") !== "on") throw new Error("cpu is the reference");
 * ```
 */
export function fusedEnabled(): boolean {
  const m = fusedMode();
  if (m === "off") return false;
  const b = tf.getBackend();
  if (b !== "wasm" && b !== "webgpu" && !(m === "on" && b === "cpu")) return false;
  return ensureKernels();
}

/** Register the kernels if needed; true when they run on the active backend. */
function ensureKernels(): boolean {
  if (!fusedKernelsAvailable()) registerFusedKernels();
  return fusedKernelsAvailable();
}

/** Throw unless the fused kernels run on the active backend (registering them if needed). */
export function need(where: string): void {
  if (!ensureKernels()) {
    throw new Error(
      `${where}: the fused kernels run on wasm, webgpu or cpu, the active backend is ${tf.getBackend()}`,
    );
  }
}
