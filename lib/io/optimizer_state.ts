/**
 * AdamW's moments in a trainer checkpoint. They are stored like the weights, in the official
 * layout under `adamw.m.<part>.<key>` and `adamw.v.<part>.<key>` (the part's official state-dict
 * key), so a checkpoint converts to the official `opt` state without knowing our in-memory layout.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { ResolvedConfig } from "../model/config.ts";
import type { SafetensorsFile } from "./safetensors_read.ts";
import type { StoredTensor } from "./safetensors_write.ts";
import { fromOfficial, toOfficial } from "./weights.ts";

/** `adamw.m.encoder.blocks.0.attn.qkv.weight` -> `blocks.0.attn.qkv.weight`: the parameter's official key. */
function parameterKey(name: string): string {
  return name.replace(/^adamw\.[mv]\.(encoder|predictor)\./, "");
}

/**
 * The optimizer's moment tensors (`AdamW.stateTensors()`, our layout) as safetensors entries in the
 * official layout (read asynchronously, so it works on every backend).
 */
export async function momentsToOfficial(
  moments: Record<string, tf.Tensor>,
  cfg: ResolvedConfig,
): Promise<Record<string, StoredTensor>> {
  const out: Record<string, StoredTensor> = {};
  for (const [name, v] of Object.entries(moments)) {
    const t = toOfficial(parameterKey(name), v.shape, (await v.data()) as Float32Array, cfg);
    out[name] = { dtype: "F32", shape: t.shape, data: t.data };
  }
  return out;
}

/**
 * The moments of a checkpoint back in our layout, one per tensor of `like` (the fresh optimizer's
 * `stateTensors()`, which gives the names and our shapes). A missing tensor is an error naming it.
 */
export async function momentsFromOfficial(
  st: SafetensorsFile,
  like: Record<string, tf.Tensor>,
  cfg: ResolvedConfig,
  path: string,
): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(like)) {
    if (!st.has(name)) throw new Error(`${path}: the checkpoint lacks optimizer tensor "${name}"`);
    out[name] = fromOfficial(parameterKey(name), v.shape, await st.readFloat32(name), cfg);
  }
  return out;
}
