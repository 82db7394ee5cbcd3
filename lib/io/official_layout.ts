/**
 * The official I-JEPA state-dict layout and ours: the parts of a model, each parameter converted
 * between our in-memory layout ([in, out] linear weights, [p*p*C, D] patch embedding) and the
 * official one (PyTorch's [out, in], the convolution kernel [D, C, p, p]), and one part of a model
 * filled from official-layout tensors with every key and shape checked. Our safetensors files
 * (`weights.ts`), the official `.pth.tar` checkpoints (`official.ts`) and HuggingFace's `IJepaModel`
 * files (`hf.ts`) all load through {@link fillPart}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ResolvedConfig } from "../model/config.ts";
import type { IJEPA } from "../model/ijepa.ts";
import type { ParamStore } from "../model/params.ts";
import { sincosPosEmbed } from "../model/posembed.ts";

/** The parts of an I-JEPA model a file can hold. */
export type Part = "encoder" | "target_encoder" | "predictor";
/** All parts, in file order. */
export const PARTS: readonly Part[] = ["encoder", "target_encoder", "predictor"];

/**
 * The input normalisation of the official training (torchvision's ImageNet mean and std, per RGB
 * channel): what the official checkpoints and the HuggingFace conversions of them expect.
 */
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
/** See {@link IMAGENET_MEAN}. */
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/** What a weights file says besides the tensors. */
export interface WeightsMeta {
  /** The preset the weights were made with, if recorded. */
  preset?: string;
  /** Per-channel mean the inputs were normalised with (0..1 pixel units). */
  mean?: number[];
  /** Per-channel std the inputs were normalised with (0..1 pixel units). */
  std?: number[];
  /** Anything else (training step, epoch, loss, ...), as strings. */
  [key: string]: unknown;
}

export function storeOf(model: IJEPA, part: Part): ParamStore {
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
export function officialShape(name: string, ours: readonly number[], cfg: ResolvedConfig): number[] {
  if (name === "patch_embed.proj.weight") return [ours[1], cfg.channels, cfg.patchSize, cfg.patchSize];
  if (name === "mask_token") return [1, 1, ours[0]];
  if (ours.length === 2) return [ours[1], ours[0]];
  return [...ours];
}

/** The fixed position embeddings the official state dicts carry, per part. */
export function posEmbeds(
  cfg: ResolvedConfig,
  part: Part,
): Record<string, { shape: number[]; data: Float32Array }> {
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
