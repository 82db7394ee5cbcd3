/**
 * Choosing where the tensors live: `setBackend("auto" | "webgpu" | "wasm" | "cpu" | ...)`.
 *
 * `auto` tries the fastest backend that can start here, in this order: tfjs-node-gpu and tfjs-node
 * (only when the user installed them: they cannot be installed from npm alone), WebGPU on a hardware
 * adapter where a timed probe finds it faster than the CPU path (lib/engine/backend_probe.ts; the
 * verdict is remembered per adapter), then wasm (the embedded default, which runs everywhere). A
 * software WebGPU adapter (Mesa lavapipe, llvmpipe, SwiftShader) is slower than wasm on the same
 * CPU, so `auto` skips it without a probe (`IJEPA_GPU_PROBE=software` probes it too); naming
 * `webgpu` explicitly still uses it (CI tests the WebGPU code path that way).
 *
 * On wasm and cpu, matrix products go through a native BLAS (OpenBLAS, Accelerate) via Deno FFI when
 * one is found and `--allow-ffi` is granted: see lib/engine/blas.ts. `IJEPA_BLAS=off` turns it off.
 *
 * @example
 * ```ts
 * import { setBackend } from "./backend.ts";
 * const info = await setBackend("cpu", { quiet: true });
 * if (info.name !== "cpu") throw new Error("expected cpu");
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { disableBlas, enableBlas } from "./blas.ts";
import type { BlasStatus } from "./blas_library.ts";
import { installSharedHeap, sharedHeapReason } from "./shared_heap.ts";
import { threadsWanted, workerTimeoutMs } from "./gemm_pool.ts";
import { patchWasmKernels } from "./wasm_fixes.ts";
import { cachedVerdict, describeVerdict, probeWorkload, saveVerdict } from "./backend_probe.ts";

/** Names accepted by {@link setBackend}, `--backend` and `IJEPA_BACKEND`. */
export const BACKEND_NAMES = ["auto", "tensorflow-gpu", "tensorflow", "webgpu", "wasm", "cpu"] as const;
/** One of {@link BACKEND_NAMES}. */
export type BackendName = typeof BACKEND_NAMES[number];

/** What {@link setBackend} chose and why. */
export interface BackendInfo {
  /** The tfjs backend now active: "tensorflow", "webgpu", "wasm" or "cpu". */
  name: string;
  /** What was asked for. */
  requested: BackendName;
  /** The WebGPU adapter's description, when WebGPU runs. */
  adapter?: string;
  /** Whether the WebGPU adapter is a software one. */
  softwareAdapter?: boolean;
  /** BLAS status on wasm and cpu. */
  blas?: BlasStatus;
  /** Faster backends that were skipped, each with the reason. */
  skipped: string[];
  /** The one line printed at start-up. */
  line: string;
}

/** Options for {@link setBackend}. */
export interface SetBackendOptions {
  /** Do not print the one-line report. */
  quiet?: boolean;
  /** Use native BLAS on wasm/cpu when available (default true; `IJEPA_BLAS=off` also disables). */
  blas?: boolean;
}

let current: BackendInfo | undefined;

/** The backend chosen by the last {@link setBackend} call, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

/** Silence tfjs's console advice (e.g. "install tfjs-node") without hiding our own errors. */
function quietTfjs(): void {
  // PROD turns off tfjs's debug checks and its informational warnings; errors still throw.
  tf.env().set("PROD", true);
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}

/**
 * Parse a backend name from a flag, else `IJEPA_BACKEND` (`envValue`, read from the environment
 * unless given), with a clear error.
 */
export function parseBackendName(
  name: string | undefined,
  envValue: string | undefined = env("IJEPA_BACKEND"),
): BackendName {
  // an empty IJEPA_BACKEND counts as unset, as the other variables do
  const fromEnv = name === undefined ? envValue?.trim() || undefined : undefined;
  const n = (name ?? fromEnv ?? "auto").trim().toLowerCase();
  if (!(BACKEND_NAMES as readonly string[]).includes(n)) {
    const given = name ?? fromEnv;
    throw new Error(
      `unknown backend "${given}"${name === undefined ? " (from IJEPA_BACKEND)" : ""}: expected one of ${
        BACKEND_NAMES.join(", ")
      }`,
    );
  }
  return n as BackendName;
}

const NODE_PACKAGES = {
  "tensorflow-gpu": "@tensorflow/tfjs-node-gpu",
  "tensorflow": "@tensorflow/tfjs-node",
} as const;

/**
 * Load tfjs-node(-gpu) if the user installed it. These packages download libtensorflow at install
 * time, which npm alone cannot provide, so they are never a dependency of ours: they are imported
 * by a computed specifier only when their folder exists under node_modules.
 */
async function tryNode(kind: "tensorflow-gpu" | "tensorflow"): Promise<string | undefined> {
  const pkg = NODE_PACKAGES[kind];
  const dir = new URL(`../../node_modules/${pkg}/`, import.meta.url);
  try {
    Deno.statSync(dir);
  } catch {
    return `not installed (optional, see the README, "Running on a GPU")`;
  }
  try {
    const spec = `npm:${pkg}@4.22.0`;
    await import(spec);
    if (!(await tf.setBackend("tensorflow"))) return `${pkg} loaded but its backend did not start`;
    await tf.ready();
    return undefined;
  } catch (e) {
    return `${pkg} failed to load its native library: ${(e as Error).message.split("\n")[0]}`;
  }
}

/** "a: why; b: why" -> "a, b: why": backends skipped for the same reason share one entry. */
export function groupReasons(skipped: readonly string[]): string[] {
  const byWhy = new Map<string, string[]>();
  for (const entry of skipped) {
    const at = entry.indexOf(": ");
    const [name, why] = at < 0 ? [entry, ""] : [entry.slice(0, at), entry.slice(at + 2)];
    byWhy.set(why, [...(byWhy.get(why) ?? []), name]);
  }
  return [...byWhy].map(([why, names]) => (why ? `${names.join(", ")}: ${why}` : names.join(", ")));
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render/i;

interface AdapterProbe {
  description?: string;
  software?: boolean;
  error?: string;
}

/**
 * On headless Linux the Vulkan loader prints "error: XDG_RUNTIME_DIR is invalid or not set" twice
 * when asked for an adapter: harmless, but it reads like a failure at the top of every task. Give it
 * a private runtime folder when none is set; if that is not allowed, the message stays.
 */
function quietVulkanLoader(): void {
  try {
    if (Deno.build.os !== "linux" || Deno.env.get("XDG_RUNTIME_DIR")) return;
    const dir = `/tmp/ijepa-deno-runtime-${Deno.uid() ?? "user"}`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // no env or write permission: keep the loader's message
  }
}

async function probeAdapter(): Promise<AdapterProbe> {
  // deno-lint-ignore no-explicit-any
  const gpu = (globalThis.navigator as any)?.gpu;
  if (!gpu) return { error: "this runtime has no navigator.gpu" };
  quietVulkanLoader();
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return { error: "no WebGPU adapter (no Vulkan/Metal/DX12 driver found)" };
    const info = adapter.info ?? {};
    const description = String(info.description || info.device || info.vendor || "unknown adapter");
    const software = Boolean(info.isFallbackAdapter) || SOFTWARE_ADAPTER.test(description);
    return { description, software };
  } catch (e) {
    return { error: `requestAdapter failed: ${(e as Error).message}` };
  }
}

async function startWebgpu(): Promise<string | undefined> {
  try {
    await import("@tensorflow/tfjs-backend-webgpu");
    if (!(await tf.setBackend("webgpu"))) return "the tfjs WebGPU backend did not start";
    await tf.ready();
    return undefined;
  } catch (e) {
    return `WebGPU failed to start: ${(e as Error).message.split("\n")[0]}`;
  }
}

/**
 * For `auto` on a hardware adapter: the remembered probe verdict, or a new probe (the fused block
 * step timed on webgpu, then on wasm with BLAS unless `blas` is false). When it answers `gpu: true`,
 * webgpu is the active backend; otherwise the caller starts wasm.
 */
async function gpuOrCpu(adapter: string, blas: boolean): Promise<{ gpu: boolean; why: string }> {
  const known = cachedVerdict(adapter);
  if (known) {
    if (known.gpuMs < known.cpuMs) {
      const why = await startWebgpu();
      if (why) return { gpu: false, why };
    }
    return { gpu: known.gpuMs < known.cpuMs, why: `${adapter} was ${describeVerdict(known, true)}` };
  }
  const whyGpu = await startWebgpu();
  if (whyGpu) return { gpu: false, why: whyGpu };
  const gpuMs = await probeWorkload();
  if (gpuMs === undefined) return { gpu: false, why: "the fused kernels do not run on it" };
  const whyCpu = await startWasm();
  if (whyCpu) {
    await tf.setBackend("webgpu");
    return { gpu: true, why: `wasm cannot start to compare (${whyCpu})` };
  }
  const lib = blas ? enableBlas() : undefined;
  const cpuMs = await probeWorkload() ?? Infinity;
  const v = {
    gpuMs,
    cpuMs,
    cpuLabel: lib?.enabled ? "wasm+BLAS" : "wasm",
    date: new Date().toISOString(),
  };
  saveVerdict(adapter, v);
  if (gpuMs < cpuMs) await tf.setBackend("webgpu");
  return { gpu: gpuMs < cpuMs, why: `${adapter} was ${describeVerdict(v, false)}` };
}

/** How many threads wasm's kernels use, and whether they compute in place (the heap shared). */
function wasmThreadsText(): string {
  const n = threadsWanted();
  if (n < 2) return "1 thread";
  const be = tf.backend() as unknown as { wasm?: { HEAPF32?: Float32Array } };
  const shared = be.wasm?.HEAPF32?.buffer instanceof SharedArrayBuffer;
  return shared
    ? `${n} threads, shared heap`
    : `${n} threads, copies (${sharedHeapReason() ?? "heap not shared"})`;
}

async function startWasm(): Promise<string | undefined> {
  try {
    // tfjs-wasm's memory made shared where it can be, for worker threads (lib/engine/shared_heap.ts)
    await installSharedHeap();
    await import("@tensorflow/tfjs-backend-wasm");
    patchWasmKernels();
    if (!(await tf.setBackend("wasm"))) return "the tfjs wasm backend did not start";
    await tf.ready();
    return undefined;
  } catch (e) {
    return `wasm failed to start (it reads its .wasm file from node_modules: grant --allow-read): ${
      (e as Error).message.split("\n")[0]
    }`;
  }
}

/**
 * Select and start a tfjs backend. `name` defaults to `IJEPA_BACKEND`, then `auto`. Prints one line
 * saying which backend runs and why faster ones were skipped (unless `quiet`). Throws when an
 * explicitly named backend cannot start, saying what to install.
 */
export async function setBackend(
  name?: string,
  opts: SetBackendOptions = {},
): Promise<BackendInfo> {
  quietTfjs();
  const requested = parseBackendName(name);
  // the thread pool's variables, read here so a bad value is refused before anything starts, whatever
  // the backend (wasm reads them later, on its first product)
  threadsWanted();
  workerTimeoutMs();
  const skipped: string[] = [];
  let chosen: string | undefined;
  let adapter: AdapterProbe | undefined;
  let gpuReason: string | undefined;

  const fail = (what: string, why: string, install: string): never => {
    throw new Error(`backend ${what} cannot start: ${why}. ${install}`);
  };

  if (requested === "tensorflow-gpu" || requested === "tensorflow") {
    const why = await tryNode(requested);
    if (why) {
      fail(
        requested,
        why,
        `Install it with \`deno install --allow-scripts npm:${
          NODE_PACKAGES[requested]
        }@4.22.0\` on a machine where its install script can download libtensorflow, or use --backend webgpu|wasm.`,
      );
    }
    chosen = "tensorflow";
  } else if (requested === "webgpu") {
    adapter = await probeAdapter();
    if (adapter.error) {
      fail(
        "webgpu",
        adapter.error,
        "Install a Vulkan driver (NVIDIA driver with Vulkan, or Debian mesa-vulkan-drivers for a software one), or use --backend wasm.",
      );
    }
    const why = await startWebgpu();
    if (why) fail("webgpu", why, "Check the Vulkan driver, or use --backend wasm.");
    chosen = "webgpu";
  } else if (requested === "wasm") {
    const why = await startWasm();
    if (why) fail("wasm", why, "Run with --allow-read (the task definitions in deno.json do).");
    chosen = "wasm";
  } else if (requested === "cpu") {
    await tf.setBackend("cpu");
    await tf.ready();
    chosen = "cpu";
  } else {
    // auto
    for (const kind of ["tensorflow-gpu", "tensorflow"] as const) {
      const why = await tryNode(kind);
      if (!why) {
        chosen = "tensorflow";
        break;
      }
      skipped.push(`${kind}: ${why}`);
    }
    if (!chosen) {
      adapter = await probeAdapter();
      if (adapter.error) skipped.push(`webgpu: ${adapter.error}`);
      else if (adapter.software && env("IJEPA_GPU_PROBE") !== "software") {
        skipped.push(
          `webgpu: ${adapter.description} is a software adapter, slower than wasm (--backend webgpu uses it anyway)`,
        );
      } else {
        // a hardware adapter: take it only where a timed probe finds it faster (lib/engine/backend_probe.ts)
        const r = await gpuOrCpu(adapter.description!, opts.blas !== false);
        if (r.gpu) {
          chosen = "webgpu";
          gpuReason = r.why;
        } else skipped.push(`webgpu: ${r.why}`);
      }
    }
    if (!chosen) {
      const why = await startWasm();
      if (why) {
        skipped.push(`wasm: ${why}`);
        await tf.setBackend("cpu");
        await tf.ready();
        chosen = "cpu";
      } else chosen = "wasm";
    }
  }

  let blas: BlasStatus | undefined;
  if (chosen === "wasm" || chosen === "cpu") {
    if (opts.blas === false) {
      disableBlas();
      blas = { enabled: false, reason: "off: disabled by the caller", backends: [] };
    } else blas = enableBlas();
  }

  const parts = [`backend: ${chosen}`];
  if (chosen === "webgpu" && adapter?.description) {
    parts.push(`(${adapter.description}${adapter.software ? ", software adapter" : ""})`);
  }
  if (gpuReason) parts.push(`| ${gpuReason}`);
  if (blas) parts.push(`| BLAS ${blas.enabled ? "on: " + blas.reason : blas.reason}`);
  if (chosen === "wasm") parts.push(`| ${wasmThreadsText()}`);
  if (requested === "auto" && skipped.length) parts.push(`| skipped ${groupReasons(skipped).join("; ")}`);
  const line = parts.join(" ");
  current = {
    name: chosen,
    requested,
    adapter: adapter?.description,
    softwareAdapter: adapter?.software,
    blas,
    skipped,
    line,
  };
  if (!opts.quiet) console.error(line);
  return current;
}
