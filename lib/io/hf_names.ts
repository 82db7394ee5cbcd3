/**
 * The names of HuggingFace's `IJepaModel` files against the official state dict's, as our own
 * table: outside the blocks ({@link hfNames}), inside each block, and the attention input projection
 * `attn.qkv` ([3D, D]) split into `query`, `key` and `value` ([D, D] each, rows in that order), as
 * transformers' `convert_ijepa_to_hf.py` splits it. Also the shapes an encoder of a config has in
 * that layout, and the released models on the hub.
 *
 * @module
 */
import type { ResolvedConfig } from "../model/config.ts";

/** What `loadHfModel` (hf.ts) and `loadModel` say such a file holds. */
export const HF_LAYOUT = "HuggingFace IJepaModel layout: context encoder, no predictor";

/**
 * The released models on the hub, by name: what the name tells that no tensor does when the position
 * embeddings are absent (the image size), and the official checkpoint each was converted from.
 */
export const HF_MODELS: Record<
  string,
  { imageSize: number; patchSize: number; width: number; from: string }
> = {
  ijepa_vith14_1k: { imageSize: 224, patchSize: 14, width: 1280, from: "IN1K-vit.h.14-300e.pth.tar" },
  ijepa_vith14_22k: { imageSize: 224, patchSize: 14, width: 1280, from: "IN22K-vit.h.14-900e.pth.tar" },
  ijepa_vith16_1k: { imageSize: 448, patchSize: 16, width: 1280, from: "IN1K-vit.h.16-448px-300e.pth.tar" },
  ijepa_vitg16_22k: { imageSize: 224, patchSize: 16, width: 1408, from: "IN22K-vit.g.16-600e.pth.tar" },
};

/** Official encoder key -> `IJepaModel` key, outside the blocks. */
const GLOBAL_NAMES: readonly (readonly [string, string])[] = [
  ["pos_embed", "embeddings.position_embeddings"],
  ["patch_embed.proj.weight", "embeddings.patch_embeddings.projection.weight"],
  ["patch_embed.proj.bias", "embeddings.patch_embeddings.projection.bias"],
  ["norm.weight", "layernorm.weight"],
  ["norm.bias", "layernorm.bias"],
];

/** Official key inside `blocks.N.` -> key inside `encoder.layer.N.` (qkv is split: see {@link QKV}). */
const BLOCK_NAMES: readonly (readonly [string, string])[] = [
  ["norm1.weight", "layernorm_before.weight"],
  ["norm1.bias", "layernorm_before.bias"],
  ["attn.proj.weight", "attention.output.dense.weight"],
  ["attn.proj.bias", "attention.output.dense.bias"],
  ["norm2.weight", "layernorm_after.weight"],
  ["norm2.bias", "layernorm_after.bias"],
  ["mlp.fc1.weight", "intermediate.dense.weight"],
  ["mlp.fc1.bias", "intermediate.dense.bias"],
  ["mlp.fc2.weight", "output.dense.weight"],
  ["mlp.fc2.bias", "output.dense.bias"],
];

/** The rows of the official `attn.qkv` [3D, D] in order: query rows, then key rows, then value rows. */
const QKV = ["query", "key", "value"] as const;

/** `IJepaModel` tensors that are not part of I-JEPA's encoder (an optional pooler, a mask token). */
export const NOT_IJEPA = /^(pooler\.dense\.(weight|bias)|embeddings\.mask_token)$/;

/**
 * The `IJepaModel` names of one official encoder key (without part prefix): one name, or three for
 * `blocks.N.attn.qkv.weight` / `.bias` (query, key, value).
 *
 * @example
 * ```ts
 * import { hfNames } from "./hf.ts";
 * if (hfNames("blocks.3.norm1.weight")[0] !== "encoder.layer.3.layernorm_before.weight") throw new Error();
 * if (hfNames("blocks.0.attn.qkv.bias")[2] !== "encoder.layer.0.attention.attention.value.bias") throw new Error();
 * ```
 */
export function hfNames(official: string): string[] {
  const g = GLOBAL_NAMES.find(([o]) => o === official);
  if (g) return [g[1]];
  const m = /^blocks\.(\d+)\.(.+)$/.exec(official);
  if (m) {
    const [, i, rest] = m;
    const qkv = /^attn\.qkv\.(weight|bias)$/.exec(rest);
    if (qkv) return QKV.map((q) => `encoder.layer.${i}.attention.attention.${q}.${qkv[1]}`);
    const b = BLOCK_NAMES.find(([o]) => o === rest);
    if (b) return [`encoder.layer.${i}.${b[1]}`];
  }
  throw new Error(`hfNames: "${official}" is not an official encoder key`);
}

/** Every `IJepaModel` tensor of an encoder with this config and its shape (PyTorch layout). */
export function hfShapes(cfg: ResolvedConfig): Map<string, number[]> {
  const { width: D, channels: C, patchSize: p, mlpHidden: H, numPatches: N } = cfg;
  const out = new Map<string, number[]>([
    ["embeddings.position_embeddings", [1, N, D]],
    ["embeddings.patch_embeddings.projection.weight", [D, C, p, p]],
    ["embeddings.patch_embeddings.projection.bias", [D]],
    ["layernorm.weight", [D]],
    ["layernorm.bias", [D]],
  ]);
  for (let i = 0; i < cfg.depth; i++) {
    const l = `encoder.layer.${i}`;
    for (const q of QKV) {
      out.set(`${l}.attention.attention.${q}.weight`, [D, D]);
      out.set(`${l}.attention.attention.${q}.bias`, [D]);
    }
    for (const n of ["layernorm_before", "layernorm_after"]) {
      out.set(`${l}.${n}.weight`, [D]);
      out.set(`${l}.${n}.bias`, [D]);
    }
    out.set(`${l}.attention.output.dense.weight`, [D, D]);
    out.set(`${l}.attention.output.dense.bias`, [D]);
    out.set(`${l}.intermediate.dense.weight`, [H, D]);
    out.set(`${l}.intermediate.dense.bias`, [H]);
    out.set(`${l}.output.dense.weight`, [D, H]);
    out.set(`${l}.output.dense.bias`, [D]);
  }
  return out;
}

/** The patch embedding's key: every `IJepaModel` file has it. */
export const PATCH = "embeddings.patch_embeddings.projection.weight";

/** The key prefix of the `IJepaModel` tensors ("" for `IJepaModel`, "ijepa." inside a classifier), if any. */
export function hfPrefix(names: readonly string[]): string | undefined {
  const set = new Set(names);
  return set.has(PATCH) ? "" : set.has(`ijepa.${PATCH}`) ? "ijepa." : undefined;
}

/** The official encoder keys (without part prefix) of an encoder `depth` blocks deep, in file order. */
export function officialEncoderKeys(depth: number): string[] {
  const out = GLOBAL_NAMES.map(([o]) => o);
  for (let i = 0; i < depth; i++) {
    out.push(
      `blocks.${i}.attn.qkv.weight`,
      `blocks.${i}.attn.qkv.bias`,
      ...BLOCK_NAMES.map(([o]) => `blocks.${i}.${o}`),
    );
  }
  return out;
}
