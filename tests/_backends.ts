/**
 * The backends every conformance test runs on, and how a test runs code on one of them.
 *
 * We ship four configurations: `cpu` (the reference), `wasm` with native BLAS, `wasm` without it
 * (explicit transposes + custom gradients in lib/engine/ops.ts), and `webgpu` (in CI: Mesa's software
 * Vulkan, lavapipe). A test builds its inputs from plain Float32Arrays inside {@link onBackend}, so
 * no tensor crosses backends, and gets plain Float32Arrays back to compare with {@link onCpu}.
 *
 * A configuration that cannot start here is reported as ignored, with the reason in the test name;
 * in CI (env `CI` set) it runs anyway and fails, so a broken runner never passes silently.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { onCpu } from "./_backends.ts";
 * // Inputs come from s.input (disposed afterwards); any other tensor left behind is a leak.
 * const out = await onCpu((s) => ({ y: tf.mul(s.input([1, 2], [2]), 2) }));
 * if (out.y.join() !== "2,4") throw new Error(`got ${out.y}`);
 * if (out["y.shape"].join() !== "2") throw new Error(`shape ${out["y.shape"]}`);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { setBackend } from "../lib/engine/backend.ts";
import { blasStatus } from "../lib/engine/blas.ts";

/** One backend configuration under test. */
export interface BackendConfig {
  /** Name shown in test names, e.g. "wasm+blas". */
  label: string;
  /** The tfjs backend to start through lib/engine/backend.ts. */
  name: "cpu" | "wasm" | "webgpu";
  /** Native BLAS on (wasm/cpu only); ignored by webgpu. */
  blas?: boolean;
}

/** The reference: tfjs's stock `cpu` kernels, no BLAS. */
export const CPU: BackendConfig = { label: "cpu", name: "cpu", blas: false };

/** The configurations we ship besides the reference, each compared against {@link CPU}. */
export const BACKENDS: readonly BackendConfig[] = [
  { label: "wasm+blas", name: "wasm", blas: true },
  { label: "wasm", name: "wasm", blas: false },
  { label: "webgpu", name: "webgpu" },
];

/** True when the env variable `CI` is set (non-empty): a missing backend then fails its tests. */
export const IN_CI: boolean = (() => {
  try {
    return Boolean(Deno.env.get("CI"));
  } catch {
    return false; // no --allow-env
  }
})();

const probes = new Map<string, Promise<string | undefined>>();

/**
 * Why `cfg` cannot run here, or undefined when it can: webgpu needs an adapter from
 * `navigator.gpu.requestAdapter()`; wasm must start; wasm+blas must get BLAS kernels for wasm.
 * Cached per label. Leaves the stock `cpu` backend active.
 */
export function probeBackend(cfg: BackendConfig): Promise<string | undefined> {
  let p = probes.get(cfg.label);
  if (!p) {
    p = probe(cfg);
    probes.set(cfg.label, p);
  }
  return p;
}

async function probe(cfg: BackendConfig): Promise<string | undefined> {
  try {
    if (cfg.name === "webgpu") {
      // deno-lint-ignore no-explicit-any
      const gpu = (globalThis.navigator as any)?.gpu;
      if (!gpu) return "this runtime has no navigator.gpu";
      const adapter = await gpu.requestAdapter();
      return adapter
        ? undefined
        : "navigator.gpu.requestAdapter() returned null (no Vulkan/Metal/DX12 driver)";
    }
    const info = await setBackend(cfg.name, { quiet: true, blas: cfg.blas ?? false });
    if (cfg.blas && !(info.blas?.enabled && info.blas.backends.includes(cfg.name))) {
      return `BLAS is not available: ${info.blas?.reason ?? "no status"}`;
    }
    return undefined;
  } catch (e) {
    return (e as Error).message.split("\n")[0];
  } finally {
    await setBackend("cpu", { quiet: true, blas: false });
  }
}

/** A backend configuration with what the test runner should do with it here. */
export interface BackendCase {
  cfg: BackendConfig;
  /** Undefined when the backend is available; otherwise why not. */
  unavailable?: string;
  /** True when its tests should be reported as ignored (unavailable and not in CI). */
  ignore: boolean;
}

/**
 * Probe every configuration in {@link BACKENDS} (call once, at the top of a test file). An
 * unavailable one is ignored outside CI (and a warning says why); in CI it is not ignored, and
 * {@link onBackend} then fails with the reason.
 */
export async function backendCases(): Promise<BackendCase[]> {
  const out: BackendCase[] = [];
  for (const cfg of BACKENDS) {
    const unavailable = await probeBackend(cfg);
    const ignore = unavailable !== undefined && !IN_CI;
    if (ignore) console.warn(`backend ${cfg.label} tests ignored: ${unavailable}`);
    out.push({ cfg, unavailable, ignore });
  }
  return out;
}

/** A test name with the backend label, saying why it is ignored when it is. */
export function caseName(c: BackendCase, what: string): string {
  return `${what} [${c.cfg.label}]${c.ignore ? ` (ignored: ${c.unavailable})` : ""}`;
}

/** Tensors to read back, by name. */
export type Outputs = Record<string, tf.Tensor>;
/** The values read back, by the same names (`name.shape` gives each output's shape). */
export type Values = Record<string, Float32Array>;

/** What {@link onBackend} gives the function it runs. */
export interface Scope {
  /** A float32 tensor on the active backend, disposed after the outputs are read. */
  input(values: ArrayLike<number>, shape: number[]): tf.Tensor;
  /** Dispose `d` after the outputs are read (variables, parameter stores, ...). */
  defer(d: { dispose(): void }): void;
}

/**
 * Start `cfg` (through lib/engine/backend.ts `setBackend`, quietly, with `cfg.blas`), check it is the
 * backend asked for, run `fn`, read its outputs back as Float32Arrays and dispose everything.
 *
 * Leak check: `fn` runs outside any `tf.tidy`, so every tensor an op leaves behind shows up; after
 * the outputs, the inputs and the deferred objects are disposed, `tf.memory().numTensors` must be
 * what it was before, or this throws naming how many leaked.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { backendCases, onBackend, onCpu } from "./_backends.ts";
 * const run = (s: import("./_backends.ts").Scope) => ({ y: tf.softmax(s.input([1, 2, 3], [3])) });
 * const ref = await onCpu(run);
 * for (const c of await backendCases()) {
 *   if (c.ignore) continue;
 *   const got = await onBackend(c.cfg, run);
 *   if (Math.abs(got.y[2] - ref.y[2]) > 1e-5) throw new Error(`${c.cfg.label}: ${got.y}`);
 * }
 * ```
 */
export async function onBackend(cfg: BackendConfig, fn: (s: Scope) => Outputs): Promise<Values> {
  const why = await probeBackend(cfg);
  if (why) throw new Error(`backend ${cfg.label} is unavailable${IN_CI ? " in CI" : ""}: ${why}`);
  const info = await setBackend(cfg.name, { quiet: true, blas: cfg.blas ?? false });
  if (tf.getBackend() !== cfg.name) {
    throw new Error(`onBackend: expected tfjs backend ${cfg.name}, got ${tf.getBackend()}`);
  }
  if (cfg.name !== "webgpu") {
    const on = blasStatus().enabled && blasStatus().backends.includes(cfg.name);
    if (on !== Boolean(cfg.blas)) {
      throw new Error(
        `onBackend(${cfg.label}): expected BLAS ${cfg.blas ? "on" : "off"}, got ${info.blas?.reason}`,
      );
    }
  }
  const before = tf.memory().numTensors;
  const owned: { dispose(): void }[] = [];
  let outputs: Outputs = {};
  const values: Values = {};
  try {
    outputs = fn({
      input: (v, shape) => {
        const t = tf.tensor(Float32Array.from(v), shape, "float32");
        owned.push(t);
        return t;
      },
      defer: (d) => void owned.push(d),
    });
    for (const [k, t] of Object.entries(outputs)) {
      values[k] = Float32Array.from(await t.data());
      values[`${k}.shape`] = Float32Array.from(t.shape);
    }
  } finally {
    for (const t of new Set(Object.values(outputs))) t.dispose();
    for (const d of owned) d.dispose();
  }
  const leaked = tf.memory().numTensors - before;
  if (leaked !== 0) {
    const counts = `numTensors ${before} before, ${before + leaked} after`;
    throw new Error(`onBackend(${cfg.label}): ${leaked} tensor(s) leaked (${counts})`);
  }
  return values;
}

/** {@link onBackend} on the reference: stock `cpu`, no BLAS. */
export function onCpu(fn: (s: Scope) => Outputs): Promise<Values> {
  return onBackend(CPU, fn);
}
