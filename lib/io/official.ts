/**
 * The official I-JEPA checkpoints (`.pth.tar` from facebookresearch/ijepa's train.py), loaded
 * without Python: their state dicts by part, the model config inferred from tensor shapes, and a
 * model filled from them through the layout conversions of `official_layout.ts`.
 *
 * @module
 */
import { type ModelConfig, modelConfig, type ResolvedConfig } from "../model/config.ts";
import { IJEPA } from "../model/ijepa.ts";
import { openTorchCheckpoint, stateDict } from "./torch/checkpoint.ts";
import type { LazyTensor } from "./torch/tensors.ts";
import { checkFits, fillPart, type Part, PARTS, type WeightsMeta } from "./official_layout.ts";

/** Head counts of the official model family by width (no tensor holds the head count). */
export const OFFICIAL_HEADS: Record<number, number> = {
  192: 3,
  384: 6,
  768: 12,
  1024: 16,
  1280: 16,
  1408: 16,
};

/**
 * Infer a model config from official state-dict shapes (encoder keys without prefix, predictor
 * keys likewise). `heads` overrides the official width table.
 */
export function inferConfig(
  enc: Map<string, readonly number[]>,
  pred: Map<string, readonly number[]> | undefined,
  heads?: number,
): ModelConfig {
  const pe = enc.get("patch_embed.proj.weight");
  const pos = enc.get("pos_embed");
  if (!pe || pe.length !== 4) throw new Error(`checkpoint: missing "patch_embed.proj.weight" [D, C, p, p]`);
  const [D, C, p] = pe;
  const depth = countBlocks(enc, "blocks.");
  const fc1 = enc.get("blocks.0.mlp.fc1.weight");
  if (!fc1) throw new Error(`checkpoint: missing "blocks.0.mlp.fc1.weight"`);
  const N = pos ? pos[1] : undefined;
  if (!N) throw new Error(`checkpoint: missing "pos_embed" [1, N, D], needed for the image size`);
  const g = Math.round(Math.sqrt(N));
  if (g * g !== N) throw new Error(`checkpoint: pos_embed has ${N} positions, not a square grid`);
  const h = heads ?? OFFICIAL_HEADS[D];
  if (!h) {
    throw new Error(
      `checkpoint: width ${D} is not in the official family (${
        Object.keys(OFFICIAL_HEADS).join(", ")
      }); pass the head count (--heads N, or { heads } in code)`,
    );
  }
  let predictorWidth = 4 * Math.max(1, Math.round(D / 8)), predictorDepth = 1;
  if (pred) {
    const emb = pred.get("predictor_embed.weight");
    if (!emb) throw new Error(`checkpoint: missing "predictor_embed.weight"`);
    predictorWidth = emb[0];
    predictorDepth = countBlocks(pred, "predictor_blocks.");
  }
  return {
    imageSize: g * p,
    patchSize: p,
    channels: C,
    width: D,
    depth,
    heads: h,
    mlpHidden: fc1[0],
    predictorWidth,
    predictorDepth,
    predictorHeads: h,
    layerNormEps: 1e-6,
    targetMode: "representation",
    loss: "smooth_l1",
    varianceWeight: 0,
    covarianceWeight: 0,
    sigregWeight: 0,
    sigregOn: "images",
    targetNorm: "layernorm",
  };
}

function countBlocks(m: Map<string, readonly number[]>, prefix: string): number {
  let n = 0;
  while (m.has(`${prefix}${n}.norm1.weight`)) n++;
  if (n === 0) throw new Error(`checkpoint: no "${prefix}0.*" tensors found`);
  return n;
}

/**
 * The state dicts of an official checkpoint's parts (encoder, target_encoder, predictor, those
 * present), with the `module.` prefix of distributed training stripped.
 */
export function officialStateDicts(root: Record<string, unknown>): Map<Part, Map<string, LazyTensor>> {
  const dicts = new Map<Part, Map<string, LazyTensor>>();
  for (const part of PARTS) {
    if (!(part in root)) continue;
    const stripped = new Map<string, LazyTensor>();
    for (const [k, v] of stateDict(root, part)) stripped.set(k.startsWith("module.") ? k.slice(7) : k, v);
    dicts.set(part, stripped);
  }
  return dicts;
}

/** Options for {@link loadOfficialCheckpoint}. */
export interface OfficialLoadOptions {
  /** Parts to load (default all three; the target encoder alone is what probing needs). */
  parts?: readonly Part[];
  /** Head count, where the width is not in the official table. */
  heads?: number;
}

/**
 * Open an official I-JEPA checkpoint (`.pth.tar` from facebookresearch/ijepa's train.py) without
 * Python: the config is inferred from the tensors, the `module.` prefix is stripped, layouts are
 * converted. Returns the model and the training state stored (epoch, loss, lr, ...).
 */
export async function loadOfficialCheckpoint(
  path: string,
  opts: OfficialLoadOptions = {},
): Promise<{ model: IJEPA; meta: WeightsMeta; config: ResolvedConfig }> {
  using ckpt = await openTorchCheckpoint(path);
  const root = ckpt.root as Record<string, unknown>;
  if (!root || typeof root !== "object") throw new Error(`${path}: the checkpoint is not a dict`);
  const parts = opts.parts ?? PARTS;
  const dicts = officialStateDicts(root);
  for (const p of parts) {
    if (!dicts.has(p)) {
      throw new Error(`${path}: the checkpoint has no "${p}" (it has ${[...dicts.keys()].join(", ")})`);
    }
  }
  const shapesOf = (m: Map<string, LazyTensor>) => new Map([...m].map(([k, v]) => [k, v.shape] as const));
  const encDict = dicts.get("target_encoder") ?? dicts.get("encoder")!;
  const cfg = modelConfig(
    inferConfig(
      shapesOf(encDict),
      dicts.has("predictor") ? shapesOf(dicts.get("predictor")!) : undefined,
      opts.heads,
    ),
  );
  checkFits(cfg, parts, path);
  const model = new IJEPA(cfg, { parts, init: false });
  try {
    for (const p of parts) {
      const d = dicts.get(p)!;
      const shapes = new Map([...d].map(([k, v]) => [`${p}.${k}`, v.shape] as const));
      await fillPart(model, p, p + ".", shapes, (k) => d.get(k.slice(p.length + 1))!.readFloat32(), path);
    }
    const meta: WeightsMeta = {};
    for (const k of ["epoch", "loss", "lr", "batch_size", "world_size"]) {
      const v = root[k];
      if (typeof v === "number" || typeof v === "string") meta[k] = v;
    }
    return { model, meta, config: cfg };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
