/**
 * Frozen features for evaluation: what a linear probe or a kNN classifier sees of an image.
 *
 * The paper's linear evaluation reads the target encoder's last-layer patch tokens, average-pooled
 * (after the encoder's final LayerNorm): that is the headline readout, `avgpool` (D features). Two
 * wider readouts sit beside it for comparison, each to be read the same way from a random-init
 * encoder, because a wide readout lets a linear probe recover the pixels through any encoder:
 *
 * - `last4`: the last 4 blocks' outputs, each put through the encoder's final norm, average-pooled
 *   and concatenated (4D), as DINO's `n_last_blocks = 4` linear evaluation.
 * - `pool2x2`: the last-layer tokens averaged over a 2x2 grid of image regions and concatenated
 *   (4D), with PyTorch's `AdaptiveAvgPool2d` bounds (on a 7x7 grid: rows 0-3 and 3-6, overlapping).
 *
 * Images are normalised per channel (`(x / 255 - mean) / std`) and, when the dataset's size is not
 * the model's, resized with the full crop box of lib/data/augment.ts `resizeCrop`. Each batch runs inside
 * `tf.tidy` and is read back to a `Float32Array`, so no graph or activation outlives its batch.
 *
 * {@link rawPixelFeatures} gives the raw-pixel baseline on the same footing: the model's input
 * pixels (resized when the model's size differs), one feature per pixel and channel.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { extractFeatures, rawPixelFeatures } from "./features.ts";
 * import { modelConfig } from "../model/config.ts";
 * import { Rng } from "../engine/rng.ts";
 * import { VisionTransformer } from "../model/vit.ts";
 * import type { ImageDataset } from "../data/dataset.ts";
 * await tf.setBackend("cpu");
 * const ds: ImageDataset = {
 *   images: new Uint8Array(5 * 16 * 16).map((_, i) => (i * 7) % 256), // [5, 16, 16, 1]
 *   labels: new Int32Array([0, 1, 0, 1, 0]),
 *   n: 5, height: 16, width: 16, channels: 1, classNames: ["a", "b"], source: "demo",
 * };
 * const enc = new VisionTransformer(modelConfig("tiny"), new Rng(0));
 * const f = await extractFeatures(enc, ds, { batchSize: 2, mean: [0.5], std: [0.25] });
 * if (f.n !== 5 || f.dim !== 32 || f.features.length !== 5 * 32) throw new Error("shape");
 * const px = rawPixelFeatures(ds);
 * if (px.dim !== 256) throw new Error(`expected 256 pixel features, got ${px.dim}`);
 * enc.dispose();
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ImageDataset } from "../data/dataset.ts";
import { layerNorm, patchify } from "../engine/ops.ts";
import { modelInput } from "../model/model_input.ts";
import type { VisionTransformer } from "../model/vit.ts";

/** The readouts {@link extractFeatures} knows, headline first. */
export const READOUTS = ["avgpool", "last4", "pool2x2"] as const;
/** One of {@link READOUTS}. */
export type Readout = typeof READOUTS[number];

/** A feature matrix: `n` rows of `dim` features, row-major. */
export interface FeatureSet {
  /** [n, dim] */
  features: Float32Array;
  /** Features per row. */
  dim: number;
  /** Number of rows. */
  n: number;
}

/** Options of {@link extractFeatures}. */
export interface ExtractOptions {
  /** Images per forward pass (default 256). */
  batchSize?: number;
  /** Per-channel mean in 0..1 units (from the weights file, else `channelStats(train)`). */
  mean: readonly number[];
  /** Per-channel std in 0..1 units. */
  std: readonly number[];
  /** Which tokens become features (default `avgpool`, the paper's linear-evaluation readout). */
  readout?: Readout;
  /** Called after every batch with the images done so far. */
  onProgress?: (done: number, total: number) => void;
}

/** Check a readout name, with an error that lists the known ones. */
export function parseReadout(name: string): Readout {
  if (!(READOUTS as readonly string[]).includes(name)) {
    throw new Error(`readout: unknown readout "${name}"; expected one of ${READOUTS.join(", ")}`);
  }
  return name as Readout;
}

/** Features per image of `readout` for an encoder of width `width`. */
export function readoutDim(readout: Readout, width: number): number {
  return readout === "avgpool" ? width : 4 * width;
}

function checkStats(mean: readonly number[], std: readonly number[], channels: number, where: string) {
  if (mean.length !== channels || std.length !== channels) {
    throw new Error(
      `${where}: expected ${channels} mean and std values (one per channel), got ${mean.length} and ${std.length}`,
    );
  }
  if (std.some((s) => !(s > 0)) || mean.some((m) => !Number.isFinite(m))) {
    throw new Error(
      `${where}: expected finite means and positive stds, got mean ${JSON.stringify(mean)} std ${
        JSON.stringify(std)
      }`,
    );
  }
}

/** The readout of one batch of normalised images [B, S, S, C]: [B, F]. Call inside tf.tidy. */
function readoutBatch(encoder: VisionTransformer, x: tf.Tensor4D, readout: Readout): tf.Tensor2D {
  const cfg = encoder.cfg;
  if (readout === "avgpool") {
    return encoder.forward(x).mean(1) as tf.Tensor2D; // [B, N, D] -> [B, D]
  }
  if (readout === "last4") {
    const { layers } = encoder.encodePatches(patchify(x, cfg.patchSize), undefined, { layers: 4 });
    const gamma = encoder.params.get("norm.weight") as tf.Tensor1D;
    const beta = encoder.params.get("norm.bias") as tf.Tensor1D;
    // Each block's output [B, N, D] through the final norm, then pooled: [B, D] x 4 -> [B, 4D].
    return tf.concat(
      layers.map((h) => layerNorm(h, cfg.layerNormEps, gamma, beta).mean(1)),
      1,
    ) as tf.Tensor2D;
  }
  // pool2x2: adaptive 2x2 average over the token grid, PyTorch's bounds floor(i*G/2)..ceil((i+1)*G/2).
  const G = cfg.gridSize;
  const tokens = encoder.forward(x); // [B, N, D]
  const B = tokens.shape[0], D = tokens.shape[2];
  const grid = tokens.reshape([B, G, G, D]); // [B, G, G, D]
  const parts: tf.Tensor[] = [];
  for (let i = 0; i < 2; i++) {
    const r0 = Math.floor((i * G) / 2), r1 = Math.ceil(((i + 1) * G) / 2);
    for (let j = 0; j < 2; j++) {
      const c0 = Math.floor((j * G) / 2), c1 = Math.ceil(((j + 1) * G) / 2);
      parts.push(grid.slice([0, r0, c0, 0], [B, r1 - r0, c1 - c0, D]).mean([1, 2])); // [B, D]
    }
  }
  return tf.concat(parts, 1) as tf.Tensor2D; // [B, 4D]
}

/**
 * Frozen features of every image of `ds` through `encoder` (pass the target encoder:
 * `model.targetEncoder`), computed in batches, each inside `tf.tidy` and read back. Images are
 * normalised with `mean`/`std` and resized to the encoder's input size when they differ; a
 * dataset whose channel count differs from the encoder's is an error.
 */
export async function extractFeatures(
  encoder: VisionTransformer,
  ds: ImageDataset,
  opts: ExtractOptions,
): Promise<FeatureSet> {
  const cfg = encoder.cfg;
  const readout = parseReadout(opts.readout ?? "avgpool");
  const batchSize = opts.batchSize ?? 256;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new Error(`extractFeatures: batchSize must be a positive integer, got ${batchSize}`);
  }
  if (ds.channels !== cfg.channels) {
    throw new Error(
      `extractFeatures: the encoder expects ${cfg.channels}-channel images, the dataset has ${ds.channels} (${ds.source})`,
    );
  }
  if (readout === "last4" && cfg.depth < 4) {
    throw new Error(`extractFeatures: readout last4 needs an encoder of at least 4 blocks, got ${cfg.depth}`);
  }
  checkStats(opts.mean, opts.std, cfg.channels, "extractFeatures");
  const S = cfg.imageSize, C = cfg.channels;
  const dim = readoutDim(readout, cfg.width);
  const features = new Float32Array(ds.n * dim); // [n, dim]
  for (let start = 0; start < ds.n; start += batchSize) {
    const count = Math.min(batchSize, ds.n - start);
    const pixels = modelInput(ds, start, count, S, opts.mean, opts.std); // [count, S, S, C]
    const f = tf.tidy(() => readoutBatch(encoder, tf.tensor4d(pixels, [count, S, S, C]), readout));
    try {
      const values = await f.data(); // [count, dim]
      if (values.length !== count * dim) {
        throw new Error(`extractFeatures: expected ${count}x${dim} features, got ${f.shape.join("x")}`);
      }
      features.set(values as Float32Array, start * dim);
    } finally {
      f.dispose();
    }
    opts.onProgress?.(start + count, ds.n);
  }
  return { features, dim, n: ds.n };
}

/**
 * The raw-pixel baseline: each image as the model would see it, pixels in 0..1 (x / 255), resized
 * to `size` x `size` when given and different from the dataset's, flattened HWC. The probe
 * standardises every feature, so no per-channel normalisation is needed here.
 */
export function rawPixelFeatures(ds: ImageDataset, opts: { size?: number } = {}): FeatureSet {
  const size = opts.size ?? ds.height;
  if (opts.size === undefined && ds.height !== ds.width) {
    throw new Error(
      `rawPixelFeatures: the dataset's images are ${ds.height}x${ds.width}; pass a square size to resize to`,
    );
  }
  const C = ds.channels;
  const mean = new Array(C).fill(0), std = new Array(C).fill(1);
  const features = modelInput(ds, 0, ds.n, size, mean, std); // [n, size * size * C]
  return { features, dim: size * size * C, n: ds.n };
}
