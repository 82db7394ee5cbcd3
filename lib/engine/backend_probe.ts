/**
 * Whether a hardware WebGPU adapter is worth using: `auto` (lib/engine/backend.ts) times the same
 * small piece of training on the GPU and on the CPU backend and takes the faster, and remembers the
 * verdict per adapter, so the probe runs once per machine and toolkit version.
 *
 * Why a probe and not a rule: the answer depends on the adapter and on the CPU path. Measured on an
 * NVIDIA H200 before the WebGPU engine existed, a train step took 3135 ms on WebGPU against 580 ms
 * on 2 CPU cores with OpenBLAS; integrated GPUs, Apple's Metal and a CPU without BLAS move the
 * balance either way, and we cannot measure every machine.
 *
 * The probe is {@link probeWorkload}: forward and backward of one transformer block at the bench's
 * reference shape (64 sequences of 25 tokens, width 192, 3 heads, MLP 768), through the fused path
 * the model takes on that backend; one warm-up run (shader compilation, BLAS start-up), then the
 * median of three. The cache is a JSON file in `$XDG_CACHE_HOME/ijepa-deno` (or `~/.cache/...`);
 * `IJEPA_GPU_PROBE=again` ignores it. Without permission to read or write it, the probe runs again
 * next time and nothing fails.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { BLOCK_PARAMS, fusedBlock } from "./fused_block.ts";
import { fusedEnabled } from "./fused_mode.ts";

/** One probe's outcome for an adapter. */
export interface ProbeVerdict {
  /** Median ms of {@link probeWorkload} on the GPU and on the CPU backend. */
  gpuMs: number;
  cpuMs: number;
  /** What the CPU side was, e.g. "wasm+BLAS". */
  cpuLabel: string;
  /** ISO date of the measurement. */
  date: string;
}

/** Bump when the engine changes enough to make old verdicts stale. */
const PROBE_VERSION = 1;

/**
 * Median ms of one block's forward and backward at the reference shape on the active backend, or
 * undefined when the fused kernels do not run there (the model would then take the slow autodiff
 * path, which is not worth timing against).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { probeWorkload } from "./backend_probe.ts";
 * await tf.setBackend("cpu");
 * if (await probeWorkload() !== undefined) throw new Error("cpu does not take the fused path");
 * ```
 */
export async function probeWorkload(): Promise<number | undefined> {
  if (!fusedEnabled()) return undefined;
  const B = 64, T = 25, D = 192, H = 3, F = 768;
  const shapes: Record<string, number[]> = {
    "norm1.weight": [D],
    "norm1.bias": [D],
    "attn.qkv.weight": [D, 3 * D],
    "attn.qkv.bias": [3 * D],
    "attn.proj.weight": [D, D],
    "attn.proj.bias": [D],
    "norm2.weight": [D],
    "norm2.bias": [D],
    "mlp.fc1.weight": [D, F],
    "mlp.fc1.bias": [F],
    "mlp.fc2.weight": [F, D],
    "mlp.fc2.bias": [D],
  };
  const ws = BLOCK_PARAMS.map((n, i) => tf.variable(tf.randomNormal(shapes[n], 0, 0.05, "float32", i)));
  const x = tf.randomNormal([B * T, D], 0, 1, "float32", 99) as tf.Tensor2D;
  const once = async () => {
    const { value, grads } = tf.variableGrads(
      () => fusedBlock(x, ws, { batch: B, tokens: T, heads: H, eps: 1e-6 }).square().mean() as tf.Scalar,
      ws,
    );
    await value.data(); // waits for the GPU; the gradients were queued before the loss was read
    tf.dispose([value, ...Object.values(grads)]);
  };
  try {
    await once();
    const ms: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await once();
      ms.push(performance.now() - t0);
    }
    return ms.sort((a, b) => a - b)[1];
  } finally {
    tf.dispose([x, ...ws]);
  }
}

function cacheFile(): string | undefined {
  try {
    const base = Deno.env.get("XDG_CACHE_HOME") ??
      (Deno.env.get("HOME") ? `${Deno.env.get("HOME")}/.cache` : undefined);
    return base ? `${base}/ijepa-deno/gpu-probe.json` : undefined;
  } catch {
    return undefined; // no --allow-env
  }
}

function key(adapter: string): string {
  return `v${PROBE_VERSION} tfjs ${tf.version_core} | ${adapter}`;
}

function readAll(): Record<string, ProbeVerdict> {
  const f = cacheFile();
  if (!f) return {};
  try {
    return JSON.parse(Deno.readTextFileSync(f));
  } catch {
    return {}; // absent, unreadable or not allowed: probe again
  }
}

/** The remembered verdict for `adapter`, unless `IJEPA_GPU_PROBE=again`. */
export function cachedVerdict(adapter: string): ProbeVerdict | undefined {
  try {
    if (Deno.env.get("IJEPA_GPU_PROBE") === "again") return undefined;
  } catch {
    // no --allow-env: use the cache
  }
  return readAll()[key(adapter)];
}

/** Remember `v` for `adapter` (silently not, where the cache cannot be written). */
export function saveVerdict(adapter: string, v: ProbeVerdict): void {
  const f = cacheFile();
  if (!f) return;
  try {
    const all = readAll();
    all[key(adapter)] = v;
    Deno.mkdirSync(f.slice(0, f.lastIndexOf("/")), { recursive: true });
    Deno.writeTextFileSync(f, JSON.stringify(all, null, 1) + "\n");
  } catch {
    // not allowed here: the probe runs again next time
  }
}

/** How a verdict reads in the backend line. */
export function describeVerdict(v: ProbeVerdict, cached: boolean): string {
  const ratio = v.cpuMs / v.gpuMs;
  const faster = ratio >= 1 ? `${ratio.toFixed(1)}x faster` : `${(1 / ratio).toFixed(1)}x slower`;
  return `${faster} than ${v.cpuLabel} in a timed probe (${v.gpuMs.toFixed(0)} vs ${
    v.cpuMs.toFixed(0)
  } ms a block step, ${v.date.slice(0, 10)}${cached ? ", remembered" : ""})`;
}
