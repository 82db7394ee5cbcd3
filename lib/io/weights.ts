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
 * `loadModel` opens the other kinds too, told apart by their first bytes (`file_kind.ts`): the
 * official PyTorch checkpoints (`.pth.tar`, through `loadOfficialCheckpoint` in `official.ts`) and
 * HuggingFace's `IJepaModel` safetensors (the hub's `facebook/ijepa_vit*` models, through `hf.ts`),
 * inferring the config from the tensors. The conversions between layouts live in
 * `official_layout.ts`.
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
import { type ModelConfig, modelConfig, plainConfig } from "../model/config.ts";
import { IJEPA } from "../model/ijepa.ts";
import { weightsFileKind } from "./file_kind.ts";
import { float32ToFloat16 } from "./half.ts";
import { hfPrefix, loadHfModel } from "./hf.ts";
import { loadOfficialCheckpoint } from "./official.ts";
import {
  checkFits,
  fillPart,
  fromOfficial,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type Part,
  PARTS,
  posEmbeds,
  storeOf,
  toOfficial,
  type WeightsMeta,
} from "./official_layout.ts";
import { openSafetensors } from "./safetensors_read.ts";
import { type StoredTensor, writeSafetensors } from "./safetensors_write.ts";

// The layout helpers moved to official_layout.ts; these names stay importable from here.
export {
  checkFits,
  fillPart,
  fromOfficial,
  paramCount,
  type Part,
  PARTS,
  type TensorReader,
  toOfficial,
  WASM_PARAM_BYTES,
  type WeightsMeta,
} from "./official_layout.ts";

/** The `format` metadata value of our files. */
export const WEIGHTS_FORMAT = "ijepa-deno-weights";
/** The format version; bumped when the layout changes. */
export const WEIGHTS_VERSION = "1";

/**
 * Every tensor of the chosen parts, in the official names and layouts, ready for safetensors (read
 * asynchronously, so it works on every backend).
 */
export async function officialTensors(
  model: IJEPA,
  parts: readonly Part[] = PARTS,
): Promise<Record<string, StoredTensor>> {
  const out: Record<string, StoredTensor> = {};
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
  opts: { parts?: readonly Part[]; extra?: Record<string, StoredTensor>; dtype?: "F32" | "F16" } = {},
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

/** Options for {@link loadModel}. */
export interface LoadOptions {
  /** Which parts to load (default: every part the file holds). */
  parts?: readonly Part[];
  /** Head count, for official or HuggingFace files whose width is not in the official table. */
  heads?: number;
  /** Image side, for a HuggingFace file without position embeddings, config.json or model name. */
  imageSize?: number;
}

/**
 * Load a model from a weights file of any kind this toolkit reads, told apart by its content: one
 * of our safetensors files (or any safetensors file in the same layout with a config in its
 * metadata), an official PyTorch checkpoint (`.pth.tar`), or a HuggingFace `IJepaModel` safetensors
 * file. Only the parts asked for are built (default: those in the file); a target encoder asked of a
 * file holding only the encoder gets the encoder's weights. `meta.layout` names the kind for the
 * other two, with the ImageNet normalisation they were trained with as `meta.mean` / `meta.std`.
 */
export async function loadModel(
  path: string,
  opts: LoadOptions = {},
): Promise<{ model: IJEPA; meta: WeightsMeta }> {
  if (await weightsFileKind(path) === "pytorch") {
    const { model, meta } = await loadOfficialCheckpoint(path, { parts: opts.parts, heads: opts.heads });
    const C = model.cfg.channels;
    const layout = "official I-JEPA checkpoint (PyTorch)";
    return {
      model,
      meta: { ...meta, layout, mean: IMAGENET_MEAN.slice(0, C), std: IMAGENET_STD.slice(0, C) },
    };
  }
  using st = await openSafetensors(path);
  const md = st.metadata;
  if (md.format !== WEIGHTS_FORMAT && hfPrefix(st.names()) !== undefined) {
    // HuggingFace's file has one encoder (the context encoder); it fills the target encoder when asked.
    const { model, meta } = await loadHfModel(st, path, {
      parts: opts.parts ?? ["encoder"],
      heads: opts.heads,
      imageSize: opts.imageSize,
    });
    return { model, meta };
  }
  if (md.format !== WEIGHTS_FORMAT) {
    throw new Error(
      `${path}: not an ijepa-deno weights file (metadata format is ${
        md.format ? `"${md.format}"` : "missing"
      }, expected "${WEIGHTS_FORMAT}"), nor in HuggingFace's IJepaModel layout (no ` +
        `"embeddings.patch_embeddings.projection.weight"); official PyTorch checkpoints (.pth.tar) load too`,
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
