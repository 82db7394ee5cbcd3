/**
 * HuggingFace's I-JEPA files. The released models on the hub (`facebook/ijepa_vith14_1k`,
 * `ijepa_vith14_22k`, `ijepa_vith16_1k`, `ijepa_vitg16_22k`) are safetensors in transformers'
 * `IJepaModel` naming, made by transformers' `convert_ijepa_to_hf.py` from the official checkpoints.
 * Two facts about them matter here:
 *
 * - they hold one encoder, the **context encoder**: the converter reads the checkpoint's `encoder`
 *   entry, not `target_encoder` (the EMA copy the paper evaluates), and no predictor;
 * - the names differ from the official state dict, and each block's attention input projection
 *   (`attn.qkv`, [3D, D]) is split into `query`, `key` and `value` ([D, D] each, in that order).
 *   Layouts are otherwise PyTorch's, as in the official checkpoints (the patch embedding is the same
 *   [D, C, p, p] convolution kernel).
 *
 * The renaming is our own table (`hf_names.ts`); {@link loadHfModel} infers the config from the
 * shapes, checks every name and shape, and fills the encoder(s) asked for through the official
 * layout's conversions (`official_layout.ts`). `loadModel` calls it when a safetensors file has the
 * `IJepaModel` names.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { type ModelConfig, modelConfig, type ResolvedConfig } from "../model/config.ts";
import { IJEPA } from "../model/ijepa.ts";
import { OFFICIAL_HEADS } from "./official.ts";
import {
  checkFits,
  fillPart,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type Part,
  type WeightsMeta,
} from "./official_layout.ts";
import type { SafetensorsFile, SafetensorsHeader } from "./safetensors_read.ts";
import {
  HF_LAYOUT,
  HF_MODELS,
  hfNames,
  hfPrefix,
  hfShapes,
  NOT_IJEPA,
  officialEncoderKeys,
  PATCH,
} from "./hf_names.ts";

export { HF_LAYOUT, HF_MODELS, hfNames, hfPrefix, hfShapes } from "./hf_names.ts";

/** Hints for what no tensor holds. */
export interface HfHints {
  /** Attention heads (else config.json beside the file, else the official family's table). */
  heads?: number;
  /** Image side in pixels (else the position embeddings, config.json, or the model's name). */
  imageSize?: number;
}

/** What {@link describeHf} finds, reading only the header (and config.json beside the file). */
export interface HfDescription {
  /** The layout found, in words ({@link HF_LAYOUT}). */
  kind: string;
  /** The model config the tensors imply. */
  config: ResolvedConfig;
  /** Where the head count came from. */
  headsFrom: string;
  /** Where the image size came from. */
  imageSizeFrom: string;
  /** The hub model named by the metadata or the path, if any. */
  model?: string;
  /** Key prefix of the encoder's tensors. */
  prefix: string;
  /** Number of encoder tensors. */
  tensors: number;
  /** Number of encoder parameters. */
  parameters: number;
  /** The dtypes of the encoder tensors, e.g. ["F32"]. */
  dtypes: string[];
  /** Tensors present that are not I-JEPA's encoder (a pooler, a mask token, a classifier head). */
  ignored: string[];
}

/** The fields of transformers' config.json this reader looks at. */
interface HfConfigJson {
  model_type?: string;
  image_size?: number;
  patch_size?: number;
  num_channels?: number;
  hidden_size?: number;
  num_hidden_layers?: number;
  num_attention_heads?: number;
  intermediate_size?: number;
  layer_norm_eps?: number;
  hidden_act?: string;
}

/** config.json beside the weights (a hub snapshot has one), when it is an I-JEPA one. */
async function sidecarConfig(path: string): Promise<{ file: string; json: HfConfigJson } | undefined> {
  const file = join(dirname(path), "config.json");
  try {
    const json = JSON.parse(await Deno.readTextFile(file));
    return json && json.model_type === "ijepa" ? { file, json } : undefined;
  } catch {
    return undefined; // absent, unreadable or not JSON: the tensors and hints decide
  }
}

/** A hub model named in the metadata values or the path (e.g. `models--facebook--ijepa_vith14_1k`). */
function modelName(metadata: Readonly<Record<string, string>>, path: string): string | undefined {
  for (const text of [...Object.values(metadata), path]) {
    const m = /ijepa_vit[a-z]\d+_\d+k/.exec(text);
    if (m && m[0] in HF_MODELS) return m[0];
  }
  return undefined;
}

/**
 * Infer the config of an `IJepaModel` file and check its names and shapes, from the header alone.
 * Missing, mis-shaped and unknown tensors are errors naming them with the shapes expected.
 */
export async function describeHf(
  st: SafetensorsHeader,
  path: string,
  hints: HfHints = {},
): Promise<HfDescription> {
  const prefix = hfPrefix(st.names());
  if (prefix === undefined) {
    throw new Error(`${path}: not in HuggingFace's IJepaModel layout (no "${PATCH}")`);
  }
  const shapes = new Map<string, readonly number[]>();
  const ignored: string[] = [];
  for (const n of st.names()) {
    if (!n.startsWith(prefix) || NOT_IJEPA.test(n.slice(prefix.length))) ignored.push(n);
    else shapes.set(n.slice(prefix.length), st.info(n).shape);
  }
  const where = `${path} (${HF_LAYOUT})`;
  const side = await sidecarConfig(path);
  const model = modelName(st.metadata, path);
  const pe = shapes.get(PATCH)!;
  if (pe.length !== 4 || pe[2] !== pe[3]) {
    throw new Error(`${where}: "${PATCH}" has shape [${pe.join(", ")}], expected [D, C, p, p]`);
  }
  const [D, C, p] = pe;
  let depth = 0;
  while (shapes.has(`encoder.layer.${depth}.layernorm_before.weight`)) depth++;
  if (depth === 0) throw new Error(`${where}: no "encoder.layer.0.*" tensors: a partial file?`);
  const fc1 = shapes.get("encoder.layer.0.intermediate.dense.weight");
  if (!fc1 || fc1.length !== 2) {
    throw new Error(`${where}: missing "encoder.layer.0.intermediate.dense.weight" [mlp, ${D}]`);
  }
  const named = model && HF_MODELS[model].patchSize === p && HF_MODELS[model].width === D ? model : undefined;
  const sj = side?.json;
  // Cross-check config.json against the tensors: one from another model would mislead.
  const checks: [keyof HfConfigJson, number][] = [
    ["hidden_size", D],
    ["num_channels", C],
    ["patch_size", p],
    ["num_hidden_layers", depth],
    ["intermediate_size", fc1[0]],
  ];
  for (const [k, v] of checks) {
    if (sj && sj[k] !== undefined && sj[k] !== v) {
      throw new Error(`${where}: ${side!.file} says ${k} ${sj[k]}, the tensors ${v}: is it another model's?`);
    }
  }
  if (sj?.hidden_act !== undefined && sj.hidden_act !== "gelu") {
    throw new Error(
      `${where}: ${side!.file} says hidden_act "${sj.hidden_act}"; this toolkit's blocks use "gelu"`,
    );
  }
  const [heads, headsFrom] = hints.heads !== undefined
    ? [hints.heads, "the heads option"]
    : sj?.num_attention_heads !== undefined
    ? [sj.num_attention_heads, side!.file]
    : [OFFICIAL_HEADS[D], `the official family's table (width ${D})`];
  if (!heads) {
    throw new Error(
      `${where}: width ${D} is not in the official family (${
        Object.keys(OFFICIAL_HEADS).join(", ")
      }) and no ` +
        `config.json beside the file gives num_attention_heads: pass the head count ({ heads } in code)`,
    );
  }
  const pos = shapes.get("embeddings.position_embeddings");
  let imageSize: number | undefined, imageSizeFrom: string;
  if (pos) {
    const g = Math.round(Math.sqrt(pos[1] ?? 0));
    if (pos.length !== 3 || g * g !== pos[1] || pos[2] !== D) {
      throw new Error(
        `${where}: "embeddings.position_embeddings" has shape [${pos.join(", ")}], expected [1, N, ${D}] ` +
          `with N a square number of patches`,
      );
    }
    [imageSize, imageSizeFrom] = [g * p, `the position embeddings (${g}x${g} patches of ${p} px)`];
    for (
      const [v, from] of [[hints.imageSize, "the imageSize option"], [sj?.image_size, side?.file]] as const
    ) {
      if (v !== undefined && v !== imageSize) {
        throw new Error(`${where}: ${from} says image size ${v}, the position embeddings ${imageSize}`);
      }
    }
  } else {
    // The model may rebuild fixed sin-cos embeddings: then the image size must come from elsewhere.
    [imageSize, imageSizeFrom] = hints.imageSize !== undefined
      ? [hints.imageSize, "the imageSize option"]
      : sj?.image_size !== undefined
      ? [sj.image_size, side!.file]
      : named
      ? [HF_MODELS[named].imageSize, `the model name ${named}`]
      : [undefined, ""];
    if (imageSize === undefined) {
      throw new Error(
        `${where}: no "embeddings.position_embeddings" to read the image size from, and neither a config.json ` +
          `beside the file nor a released model's name (${
            Object.keys(HF_MODELS).join(", ")
          }) in its metadata ` +
          `or path gives it: pass the image size ({ imageSize: 224 } in code)`,
      );
    }
  }
  const config: ModelConfig = {
    imageSize,
    patchSize: p,
    channels: C,
    width: D,
    depth,
    heads,
    mlpHidden: fc1[0],
    // No predictor in the file: these fields are placeholders, never built from it.
    predictorWidth: 4 * heads,
    predictorDepth: 1,
    predictorHeads: heads,
    // The converter sets 1e-6, the official value (IJepaConfig's own default is 1e-12).
    layerNormEps: sj?.layer_norm_eps ?? 1e-6,
    targetMode: "representation",
    loss: "smooth_l1",
    varianceWeight: 0,
    covarianceWeight: 0,
    sigregWeight: 0,
    sigregOn: "images",
    targetNorm: "layernorm",
  };
  const cfg = modelConfig(config);
  checkNames(shapes, hfShapes(cfg), !pos, path, depth);
  const dtypes = new Set<string>();
  let parameters = 0;
  for (const n of shapes.keys()) {
    const info = st.info(prefix + n);
    dtypes.add(info.dtype);
    parameters += info.shape.reduce((a, b) => a * b, 1);
  }
  return {
    kind: HF_LAYOUT,
    config: cfg,
    headsFrom,
    imageSizeFrom,
    model: named,
    prefix,
    tensors: shapes.size,
    parameters,
    dtypes: [...dtypes],
    ignored,
  };
}

/** Missing, mis-shaped and unknown tensors, each listed with the shapes expected. */
function checkNames(
  got: Map<string, readonly number[]>,
  want: Map<string, number[]>,
  noPos: boolean,
  path: string,
  depth: number,
): void {
  const where = `${path} (${HF_LAYOUT})`;
  const show = (xs: string[]) =>
    xs.slice(0, 6).join(", ") + (xs.length > 6 ? `, ... (${xs.length} in all)` : "");
  // transformers splits big checkpoints into model-00001-of-0000N.safetensors; this reader takes one file
  const shard = /-\d{5}-of-\d{5}\.safetensors$/.test(path) ? "; one shard of a split checkpoint?" : "";
  const missing = [...want].filter(([k]) => !got.has(k) && !(noPos && k === "embeddings.position_embeddings"))
    .map(([k, s]) => `${k} [${s.join(", ")}]`);
  if (missing.length) {
    throw new Error(`${where}: missing tensors (a partial file?${shard}): ${show(missing)}`);
  }
  const wrong = [...want].filter(([k, s]) => got.has(k) && got.get(k)!.join() !== s.join())
    .map(([k, s]) => `${k} is [${got.get(k)!.join(", ")}], expected [${s.join(", ")}]`);
  if (wrong.length) throw new Error(`${where}: tensors of the wrong shape: ${show(wrong)}`);
  const unknown = [...got.keys()].filter((k) => !want.has(k));
  if (unknown.length) {
    const gap = unknown.some((k) => k.startsWith("encoder.layer."))
      ? ` (blocks 0-${
        depth - 1
      } are complete and later ones exist: is "encoder.layer.${depth}.layernorm_before.weight" missing?)`
      : "";
    throw new Error(`${where}: tensors this layout does not have${gap}: ${show(unknown)}`);
  }
}

/** Options for {@link loadHfModel}. */
export interface HfLoadOptions extends HfHints {
  /** The encoders to fill: "encoder" (default), "target_encoder", or both; the file has no predictor. */
  parts?: readonly Part[];
}

/**
 * Build a model from an `IJepaModel` safetensors file. The file's one encoder (the context encoder)
 * fills each encoder asked for. The metadata says so ({@link HF_LAYOUT}) and carries the ImageNet
 * normalisation the weights were trained with.
 */
export async function loadHfModel(
  st: SafetensorsFile,
  path: string,
  opts: HfLoadOptions = {},
): Promise<{ model: IJEPA; meta: WeightsMeta; description: HfDescription }> {
  const d = await describeHf(st, path, opts);
  const parts = opts.parts ?? ["encoder"];
  if (parts.includes("predictor")) {
    throw new Error(
      `${path}: ${HF_LAYOUT}: it holds no predictor; ask for parts "encoder" or "target_encoder"`,
    );
  }
  checkFits(d.config, parts, path);
  const model = new IJEPA(d.config, { parts, init: false });
  try {
    for (const part of parts) {
      // Official keys and shapes of this part, read from the HF names (qkv from its three pieces).
      const shapes = new Map<string, readonly number[]>();
      const sources = new Map<string, string[]>();
      for (const o of officialEncoderKeys(d.config.depth)) {
        const names = hfNames(o).map((n) => d.prefix + n);
        if (!st.has(names[0])) continue; // only the position embeddings may be absent
        const s = st.info(names[0]).shape;
        shapes.set(`${part}.${o}`, names.length === 3 ? [3 * s[0], ...s.slice(1)] : s);
        sources.set(`${part}.${o}`, names);
      }
      await fillPart(model, part, `${part}.`, shapes, async (key) => {
        const names = sources.get(key)!;
        if (names.length === 1) return await st.readFloat32(names[0]);
        const pieces = await Promise.all(names.map((n) => st.readFloat32(n)));
        const out = new Float32Array(pieces.reduce((a, x) => a + x.length, 0));
        let at = 0;
        for (const x of pieces) {
          out.set(x, at);
          at += x.length;
        }
        return out; // rows of query, then key, then value: the official [3D, D]
      }, path);
    }
    const C = d.config.channels;
    const meta: WeightsMeta = {
      layout: HF_LAYOUT,
      // The converter's image processor keeps ViTImageProcessor's defaults (mean and std 0.5); the
      // weights were trained on inputs normalised with ImageNet's statistics (official transforms).
      mean: IMAGENET_MEAN.slice(0, C),
      std: IMAGENET_STD.slice(0, C),
      ...(d.model ? { model: d.model } : {}),
      ...(d.ignored.length ? { ignored: d.ignored } : {}),
    };
    return { model, meta, description: d };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
