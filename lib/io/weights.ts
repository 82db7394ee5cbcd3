/**
 * One weights format for the whole project: safetensors with the official I-JEPA names and layouts.
 *
 * A file holds up to three parts, each under its part name followed by the official state-dict key:
 * `encoder.blocks.0.attn.qkv.weight` ([3D, D], PyTorch's [out, in]), `target_encoder.pos_embed`
 * ([1, N, D]), `predictor.mask_token` ([1, 1, Dp]), `encoder.patch_embed.proj.weight` (the
 * convolution kernel [D, C, p, p]), and so on, so a file differs from the official checkpoint only
 * in its container (the README shows the PyTorch lines that load it into the official model). The
 * metadata holds the format name and version, the model config, the preset name and the input
 * normalisation. Trainer checkpoints are the same files plus optimizer moments (`adamw.m.<part>.<key>`)
 * and training state in the metadata.
 *
 * In memory the model keeps tfjs's fast layouts ([in, out] linear weights, [p*p*C, D] patch
 * embedding); the conversion happens once, here, at save and load.
 *
 * The official PyTorch checkpoints (`.pth.tar`) are read by `loadOfficialCheckpoint` (in
 * `official.ts`), which infers the config from the tensors.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { IJEPA } from "../model/ijepa.ts";
 * import { loadModel, saveModel } from "./weights.ts";
 * await tf.setBackend("cpu");
 * const dir = await Deno.makeTempDir();
 * const model = new IJEPA("tiny", { seed: 3 });
 * await saveModel(model, `${dir}/w.safetensors`, { preset: "tiny" });
 * const { model: again, meta } = await loadModel(`${dir}/w.safetensors`);
 * const a = model.encoder.params.get("norm.weight").dataSync();
 * const b = again.encoder.params.get("norm.weight").dataSync();
 * if (a.join() !== b.join() || meta.preset !== "tiny") throw new Error("round trip failed");
 * model.dispose();
 * again.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type ModelConfig, modelConfig, plainConfig, type ResolvedConfig } from "../model/config.ts";
import { IJEPA } from "../model/ijepa.ts";
import type { ParamStore } from "../model/params.ts";
import { sincosPosEmbed } from "../model/posembed.ts";
import { float32ToFloat16 } from "./half.ts";
import { openSafetensors } from "./safetensors_read.ts";
import { type Tensor, writeSafetensors } from "./safetensors_write.ts";

/** The `format` metadata value of our files. */
export const WEIGHTS_FORMAT = "ijepa-deno-weights";
/** The format version; bumped when the layout changes. */
export const WEIGHTS_VERSION = "1";

/** The parts of an I-JEPA model a file can hold. */
export type Part = "encoder" | "target_encoder" | "predictor";
/** All parts, in file order. */
export const PARTS: readonly Part[] = ["encoder", "target_encoder", "predictor"];

/** What a weights file says besides the tensors. */
export interface WeightsMeta {
  preset?: string;
  /** Per-channel mean and std the inputs were normalised with (0..1 pixel units). */
  mean?: number[];
  std?: number[];
  /** Anything else (training step, epoch, loss, ...), as strings. */
  [key: string]: unknown;
}

function storeOf(model: IJEPA, part: Part): ParamStore {
  if (part === "encoder") return model.encoder.params;
  if (part === "target_encoder") return model.targetEncoder.params;
  return model.predictor.params;
}

/**
 * Convert one parameter from our in-memory layout to the official one. Returns the official shape
 * and a new Float32Array.
 */
export function toOfficial(name: string, shape: readonly number[], data: Float32Array, cfg: ResolvedConfig): {
  shape: number[];
  data: Float32Array;
} {
  if (name === "patch_embed.proj.weight") {
    // ours [p*p*C, D] with rows ordered (i, j, c); official conv kernel [D, C, p, p]
    const p = cfg.patchSize, C = cfg.channels, D = shape[1];
    const out = new Float32Array(data.length);
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < p; j++) {
        for (let c = 0; c < C; c++) {
          const row = (i * p + j) * C + c;
          for (let d = 0; d < D; d++) out[((d * C + c) * p + i) * p + j] = data[row * D + d];
        }
      }
    }
    return { shape: [D, C, p, p], data: out };
  }
  if (name === "mask_token") return { shape: [1, 1, shape[0]], data: data.slice() };
  if (shape.length === 2) {
    // a linear weight: ours [in, out], PyTorch [out, in]
    const [r, c] = shape;
    const out = new Float32Array(data.length);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = data[i * c + j];
    return { shape: [c, r], data: out };
  }
  return { shape: [...shape], data: data.slice() };
}

/** The inverse of {@link toOfficial}: official layout to ours, for a parameter of our shape `ours`. */
export function fromOfficial(
  name: string,
  ours: readonly number[],
  data: Float32Array,
  cfg: ResolvedConfig,
): Float32Array {
  if (name === "patch_embed.proj.weight") {
    const p = cfg.patchSize, C = cfg.channels, D = ours[1];
    const out = new Float32Array(data.length);
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < p; j++) {
        for (let c = 0; c < C; c++) {
          const row = (i * p + j) * C + c;
          for (let d = 0; d < D; d++) out[row * D + d] = data[((d * C + c) * p + i) * p + j];
        }
      }
    }
    return out;
  }
  if (ours.length === 2 && name !== "mask_token") {
    const [r, c] = ours; // official is [c, r]
    const out = new Float32Array(data.length);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[i * c + j] = data[j * r + i];
    return out;
  }
  return data;
}

/** The official shape of one of our parameters. */
function officialShape(name: string, ours: readonly number[], cfg: ResolvedConfig): number[] {
  if (name === "patch_embed.proj.weight") return [ours[1], cfg.channels, cfg.patchSize, cfg.patchSize];
  if (name === "mask_token") return [1, 1, ours[0]];
  if (ours.length === 2) return [ours[1], ours[0]];
  return [...ours];
}

/** The fixed position embeddings the official state dicts carry, per part. */
function posEmbeds(cfg: ResolvedConfig, part: Part): Record<string, { shape: number[]; data: Float32Array }> {
  const g = cfg.gridSize;
  if (part === "predictor") {
    return {
      predictor_pos_embed: {
        shape: [1, cfg.numPatches, cfg.predictorWidth],
        data: sincosPosEmbed(g, g, cfg.predictorWidth),
      },
    };
  }
  return { pos_embed: { shape: [1, cfg.numPatches, cfg.width], data: sincosPosEmbed(g, g, cfg.width) } };
}

/**
 * Every tensor of the chosen parts, in the official names and layouts, ready for safetensors (read
 * asynchronously, so it works on every backend).
 */
export async function officialTensors(
  model: IJEPA,
  parts: readonly Part[] = PARTS,
): Promise<Record<string, Tensor>> {
  const out: Record<string, Tensor> = {};
  for (const part of parts) {
    for (const [k, v] of Object.entries(posEmbeds(model.cfg, part))) {
      out[`${part}.${k}`] = { dtype: "F32", shape: v.shape, data: v.data };
    }
    for (const [name, v] of storeOf(model, part).vars) {
      const t = toOfficial(name, v.shape, (await v.data()) as Float32Array, model.cfg);
      out[`${part}.${name}`] = { dtype: "F32", shape: t.shape, data: t.data };
    }
  }
  if (model.pixelHead) {
    for (const [name, v] of model.pixelHead.vars) {
      const t = toOfficial(name, v.shape, (await v.data()) as Float32Array, model.cfg);
      out[name] = { dtype: "F32", shape: t.shape, data: t.data };
    }
  }
  return out;
}

/** Metadata strings for a model and its extra fields. */
export function weightsMetadata(model: IJEPA, meta: WeightsMeta = {}): Record<string, string> {
  const md: Record<string, string> = {
    format: WEIGHTS_FORMAT,
    format_version: WEIGHTS_VERSION,
    config: JSON.stringify(plainConfig(model.cfg)),
  };
  for (const [k, v] of Object.entries(meta)) {
    if (v === undefined) continue;
    md[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return md;
}

/**
 * Save a model's weights (all parts by default) to a safetensors file, atomically. `extra` tensors
 * (e.g. optimizer moments) are written beside them.
 */
export async function saveModel(
  model: IJEPA,
  path: string,
  meta: WeightsMeta = {},
  opts: { parts?: readonly Part[]; extra?: Record<string, Tensor>; dtype?: "F32" | "F16" } = {},
): Promise<void> {
  const weights = await officialTensors(model, opts.parts);
  if (opts.dtype === "F16") {
    // Half the bytes (the shipped weights fit in ~12 MB); every loader converts back to float32.
    // The fixed position embeddings stay F32: loaders check them against sin-cos at 1e-5.
    for (const [k, t] of Object.entries(weights)) {
      if (k.endsWith("pos_embed")) continue;
      weights[k] = { dtype: "F16", shape: t.shape, data: float32ToFloat16(t.data as Float32Array) };
    }
  } else if (opts.dtype !== undefined && opts.dtype !== "F32") {
    throw new Error(`saveModel: dtype must be "F32" or "F16", got ${JSON.stringify(opts.dtype)}`);
  }
  await writeSafetensors(path, { ...weights, ...(opts.extra ?? {}) }, weightsMetadata(model, meta));
}

function parseMeta(md: Record<string, string>): WeightsMeta {
  const out: WeightsMeta = {};
  for (const [k, v] of Object.entries(md)) {
    if (k === "format" || k === "format_version" || k === "config") continue;
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

/** Reads a float32 tensor (any float dtype converted) by name with its shape. */
export type TensorReader = (key: string) => Promise<Float32Array>;

/**
 * Fill one part of `model` from official-layout tensors. `shapes` lists what the source holds;
 * unknown, missing and mis-shaped keys are errors naming the key with expected and found shapes.
 */
export async function fillPart(
  model: IJEPA,
  part: Part,
  prefix: string,
  shapes: Map<string, readonly number[]>,
  read: TensorReader,
  source: string,
): Promise<void> {
  const cfg = model.cfg;
  const store = storeOf(model, part);
  const expected = new Set<string>();
  for (const [name, v] of store.vars) {
    const key = prefix + name;
    expected.add(key);
    const want = officialShape(name, v.shape, cfg);
    const got = shapes.get(key);
    if (!got) throw new Error(`${source}: missing tensor "${key}" (expected shape [${want.join(", ")}])`);
    if (got.join() !== want.join()) {
      throw new Error(
        `${source}: tensor "${key}" has shape [${got.join(", ")}], expected [${
          want.join(", ")
        }] for this config`,
      );
    }
    const data = fromOfficial(name, v.shape, await read(key), cfg);
    tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
  }
  // Fixed position embeddings: stored for the official loader; check they are the sin-cos we use.
  for (const [k, v] of Object.entries(posEmbeds(cfg, part))) {
    const key = prefix + k;
    expected.add(key);
    const got = shapes.get(key);
    if (!got) continue; // optional in our files' parts
    if (got.join() !== v.shape.join()) {
      throw new Error(
        `${source}: tensor "${key}" has shape [${got.join(", ")}], expected [${v.shape.join(", ")}]`,
      );
    }
    const data = await read(key);
    let worst = 0;
    for (let i = 0; i < data.length; i++) worst = Math.max(worst, Math.abs(data[i] - v.data[i]));
    if (worst > 1e-5) {
      throw new Error(
        `${source}: "${key}" differs from the 2-D sin-cos embedding by ${worst.toExponential(2)} (> 1e-5); ` +
          `this toolkit uses fixed sin-cos position embeddings`,
      );
    }
  }
  const unknown = [...shapes.keys()].filter((k) => k.startsWith(prefix) && !expected.has(k));
  if (unknown.length) {
    throw new Error(`${source}: unknown tensors for ${part}: ${unknown.slice(0, 8).join(", ")}`);
  }
}

/** Options for {@link loadModel}. */
export interface LoadOptions {
  /** Which parts to load (default: every part the file holds). */
  parts?: readonly Part[];
}

/**
 * Load a model from one of our safetensors files (or any safetensors file in the same layout with
 * a config in its metadata). Only the parts asked for are built (default: those in the file); a
 * target encoder asked of a file holding only the encoder gets the encoder's weights.
 */
export async function loadModel(
  path: string,
  opts: LoadOptions = {},
): Promise<{ model: IJEPA; meta: WeightsMeta }> {
  using st = await openSafetensors(path);
  const md = st.metadata;
  if (md.format !== WEIGHTS_FORMAT) {
    throw new Error(
      `${path}: not an ijepa-deno weights file (metadata format is ${
        md.format ? `"${md.format}"` : "missing"
      }, expected "${WEIGHTS_FORMAT}"); official PyTorch checkpoints load with loadOfficialCheckpoint`,
    );
  }
  if (md.format_version !== WEIGHTS_VERSION) {
    throw new Error(
      `${path}: weights format version ${md.format_version}, this toolkit reads ${WEIGHTS_VERSION}`,
    );
  }
  let config: ModelConfig;
  try {
    config = JSON.parse(md.config);
  } catch {
    throw new Error(`${path}: the "config" metadata is not valid JSON`);
  }
  const shapes = new Map(st.names().map((n) => [n, st.info(n).shape] as const));
  const present = PARTS.filter((p) => [...shapes.keys()].some((k) => k.startsWith(p + ".")));
  const parts = opts.parts ?? present;
  for (const p of parts) {
    const fromEncoder = p === "target_encoder" && present.includes("encoder");
    if (!present.includes(p) && !fromEncoder) {
      throw new Error(`${path}: the file holds no ${p} (it holds ${present.join(", ")})`);
    }
  }
  checkFits(modelConfig(config), parts, path);
  const model = new IJEPA(config, { parts, init: false });
  try {
    for (const p of parts) {
      // a file with only the encoder (e.g. an export) gives its weights to the target encoder too
      const src = present.includes(p) ? p : "encoder";
      await fillPart(model, p, src + ".", shapes, (k) => st.readFloat32(k), path);
    }
    if (model.pixelHead) {
      for (const [name, v] of model.pixelHead.vars) {
        if (!shapes.has(name)) continue;
        v.assign(tf.tensor(fromOfficial(name, v.shape, await st.readFloat32(name), model.cfg), v.shape));
      }
    }
    return { model, meta: parseMeta(md) };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Parameters of one part of a model with this config (position embeddings excluded). */
export function paramCount(cfg: ResolvedConfig, part: Part): number {
  const block = (d: number, h: number) =>
    4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * h + h) + (h * d + d);
  if (part === "predictor") {
    const { width: D, predictorWidth: Dp, predictorDepth } = cfg;
    return D * Dp + Dp + Dp + predictorDepth * block(Dp, 4 * Dp) + 2 * Dp + Dp * D + D;
  }
  return cfg.patchDim * cfg.width + cfg.width + cfg.depth * block(cfg.width, cfg.mlpHidden) + 2 * cfg.width;
}

/** The most float32 parameter bytes we let the wasm backend hold (its heap is capped at 4 GiB). */
export const WASM_PARAM_BYTES = 3.2 * 2 ** 30;

/** Fail before loading when the asked parts cannot fit the active backend, naming the numbers. */
export function checkFits(cfg: ResolvedConfig, parts: readonly Part[], source: string): void {
  if (tf.getBackend() !== "wasm") return;
  const bytes = parts.reduce((a, p) => a + 4 * paramCount(cfg, p), 0);
  if (bytes <= WASM_PARAM_BYTES) return;
  const each = parts.map((p) => `${p} ${(4 * paramCount(cfg, p) / 2 ** 30).toFixed(2)} GiB`).join(", ");
  const fitting = PARTS.filter((p) => 4 * paramCount(cfg, p) <= WASM_PARAM_BYTES);
  throw new Error(
    `${source}: the parts asked for need ${(bytes / 2 ** 30).toFixed(2)} GiB of float32 weights (${each}), ` +
      `more than the wasm backend's ${
        (WASM_PARAM_BYTES / 2 ** 30).toFixed(1)
      } GiB (its heap is capped at 4 GiB). ` +
      `Load fewer parts (e.g. { parts: ["target_encoder"] }, which fits: ${fitting.join(", ") || "none"}) ` +
      `or use a backend without that cap (webgpu on a GPU, tensorflow).`,
  );
}
