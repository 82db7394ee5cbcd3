/**
 * A bank of encoded patches and nearest-patch retrieval: the target encoder's (layer-normalised)
 * features of every patch of many images ({@link patchBank}), or normalised pixel patches
 * ({@link pixelPatchBank}), and the bank patches most cosine-similar to given features
 * ({@link nearestPatches}), which is how we show what the predictor predicts without a decoder.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ImageDataset } from "../data/dataset.ts";
import { modelInput } from "../model/model_input.ts";
import { TARGET_EPS } from "../model/ijepa.ts";
import { layerNorm } from "../engine/ops.ts";
import type { VisionTransformer } from "../model/vit.ts";
import { cutPatch, type ImageSet } from "./pixels.ts";

/** Features of many patches with where each came from. */
export interface PatchBank {
  /** [n, dim] */
  features: Float32Array;
  /** Features per patch. */
  dim: number;
  /** Number of patches. */
  n: number;
  /** Index of each patch's image in the dataset the bank was built from. [n] */
  image: Int32Array;
  /** Each patch's index on its image's grid (row * cols + col). [n] */
  patch: Int32Array;
  /** Rows of the patch grid. */
  rows?: number;
  /** Columns of the patch grid. */
  cols?: number;
  /** Patch side in the model's input pixels. */
  patchSize?: number;
}

/** Options of {@link patchBank}. */
export interface PatchBankOptions {
  /** Per-channel mean in 0..1 units, as the model was trained with. */
  mean: readonly number[];
  /** Per-channel std in 0..1 units. */
  std: readonly number[];
  /** Which images of the dataset (default all). */
  indices?: ArrayLike<number>;
  /** Images per forward pass (default 64). */
  batchSize?: number;
  /**
   * `"target"` (default): layer-normalise every patch's features over the feature dimension (eps
   * 1e-5, no affine), exactly as I-JEPA's regression targets are, so the predictor's outputs and
   * the bank live in the same space. `"none"`: the encoder's output tokens as they are.
   */
  normalize?: "target" | "none";
}

/**
 * Encode every patch of the chosen images with `encoder` (pass the target encoder) and keep the
 * features with their image and patch indices: the bank {@link nearestPatches} searches. Images
 * are normalised and, when their size is not the model's, resized as lib/eval/features.ts
 * `extractFeatures` does; their channels must match the model's (see {@link adaptImages}).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { patchBank } from "./retrieval.ts";
 * import { IJEPA } from "../model/ijepa.ts";
 * import type { ImageDataset } from "../data/dataset.ts";
 * await tf.setBackend("cpu");
 * const ds: ImageDataset = {
 *   images: new Uint8Array(3 * 16 * 16).map((_, i) => (i * 13) % 256), labels: new Int32Array(3),
 *   n: 3, height: 16, width: 16, channels: 1, classNames: ["a"], source: "demo",
 * };
 * const model = new IJEPA("tiny", { seed: 0, parts: ["target_encoder"] });
 * const bank = await patchBank(model.targetEncoder, ds, { mean: [0.5], std: [0.25], indices: [2, 0] });
 * if (bank.n !== 2 * 16 || bank.dim !== 32 || bank.image[16] !== 0 || bank.patch[17] !== 1) throw new Error("bank");
 * model.dispose();
 * ```
 *
 * Asynchronous: it reads each batch's features with `await data()`, which every backend supports
 * (webgpu cannot read synchronously under Deno).
 */
export async function patchBank(
  encoder: VisionTransformer,
  ds: ImageDataset,
  opts: PatchBankOptions,
): Promise<PatchBank> {
  for (const key of Object.keys(opts)) {
    if (!["mean", "std", "indices", "batchSize", "normalize"].includes(key)) {
      throw new Error(
        `patchBank: unknown option "${key}"; expected mean, std, indices, batchSize or normalize`,
      );
    }
  }
  const cfg = encoder.cfg;
  if (ds.channels !== cfg.channels) {
    throw new Error(
      `patchBank: the encoder expects ${cfg.channels}-channel images, the dataset has ${ds.channels} (${ds.source}); ` +
        `adaptImages(ds, { size, channels }) converts them`,
    );
  }
  if (opts.mean.length !== cfg.channels || opts.std.length !== cfg.channels) {
    throw new Error(
      `patchBank: expected ${cfg.channels} mean and std values, got ${opts.mean.length} and ${opts.std.length}`,
    );
  }
  const norm = opts.normalize ?? "target";
  if (norm !== "target" && norm !== "none") {
    throw new Error(`patchBank: normalize must be "target" or "none", got "${norm}"`);
  }
  const idx = Int32Array.from(opts.indices ?? Array.from({ length: ds.n }, (_, i) => i));
  for (const i of idx) {
    if (!(i >= 0 && i < ds.n)) throw new Error(`patchBank: image index ${i} is out of range 0..${ds.n - 1}`);
  }
  const batchSize = opts.batchSize ?? 64;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new Error(`patchBank: batchSize must be a positive integer, got ${batchSize}`);
  }
  const { imageSize: S, channels: C, numPatches: N, width: D } = cfg;
  const features = new Float32Array(idx.length * N * D); // [images * N, D]
  const pix = ds.height * ds.width * ds.channels;
  for (let start = 0; start < idx.length; start += batchSize) {
    const count = Math.min(batchSize, idx.length - start);
    // Gather this batch's images into a contiguous set for modelInput.
    const images = new Uint8Array(count * pix);
    for (let b = 0; b < count; b++) {
      const i = idx[start + b];
      images.set(ds.images.subarray(i * pix, (i + 1) * pix), b * pix);
    }
    const batch: ImageDataset = { ...ds, images, n: count, labels: new Int32Array(count) };
    const input = modelInput(batch, 0, count, S, opts.mean, opts.std); // [count, S, S, C]
    const out = tf.tidy(() => {
      const tokens = encoder.forward(tf.tensor4d(input, [count, S, S, C])); // [count, N, D]
      return norm === "target" ? layerNorm(tokens, TARGET_EPS) : tokens; // [count, N, D]
    });
    try {
      features.set((await out.data()) as Float32Array, start * N * D);
    } finally {
      out.dispose();
    }
  }
  const image = new Int32Array(idx.length * N), patch = new Int32Array(idx.length * N);
  for (let a = 0; a < idx.length; a++) {
    for (let p = 0; p < N; p++) {
      image[a * N + p] = idx[a];
      patch[a * N + p] = p;
    }
  }
  return {
    features,
    dim: D,
    n: idx.length * N,
    image,
    patch,
    rows: cfg.gridSize,
    cols: cfg.gridSize,
    patchSize: cfg.patchSize,
  };
}

/**
 * A bank of pixel patches: every `patchSize` x `patchSize` patch of the chosen images, normalised to
 * mean 0 and variance 1 over its values (eps 1e-6), which is what a `pixel`-mode model predicts
 * (MAE's `norm_pix_loss`); so {@link nearestPatches} can search a pixel prediction's neighbours as it
 * searches a representation's. The images must be at the model's input size.
 *
 * @example
 * ```ts
 * import { pixelPatchBank } from "./retrieval.ts";
 * const set = { images: Uint8Array.from({ length: 16 }, (_, i) => i), n: 1, height: 4, width: 4, channels: 1 };
 * const bank = pixelPatchBank(set, [0], 2); // patch 0 holds 0, 1, 4, 5: mean 2.5, std 2.06
 * if (bank.n !== 4 || bank.dim !== 4 || Math.abs(bank.features[0] + 1.213) > 0.001) throw new Error("bank");
 * ```
 */
export function pixelPatchBank(set: ImageSet, indices: ArrayLike<number>, patchSize: number): PatchBank {
  const { height: H, width: W, channels: C } = set;
  if (!(Number.isInteger(patchSize) && patchSize >= 1) || H % patchSize !== 0 || W % patchSize !== 0) {
    throw new Error(`pixelPatchBank: patch size ${patchSize} does not divide the ${H}x${W} images`);
  }
  const rows = H / patchSize, cols = W / patchSize, N = rows * cols, dim = patchSize * patchSize * C;
  const features = new Float32Array(indices.length * N * dim); // [images * N, dim]
  const image = new Int32Array(indices.length * N), patch = new Int32Array(indices.length * N);
  for (let a = 0; a < indices.length; a++) {
    for (let p = 0; p < N; p++) {
      const px = cutPatch(set, indices[a], p, patchSize).data;
      let mean = 0, v = 0;
      for (const x of px) mean += x / dim;
      for (const x of px) v += (x - mean) ** 2 / dim;
      const inv = 1 / Math.sqrt(v + 1e-6);
      const row = a * N + p;
      for (let j = 0; j < dim; j++) features[row * dim + j] = (px[j] - mean) * inv;
      image[row] = indices[a];
      patch[row] = p;
    }
  }
  return { features, dim, n: indices.length * N, image, patch, rows, cols, patchSize };
}

/**
 * The mean feature of a bank's patches [dim]: the component every patch shares, which
 * `nearestPatches(..., { centre })` can remove.
 *
 * @example
 * ```ts
 * import { meanFeature } from "./retrieval.ts";
 * const bank = { features: new Float32Array([1, 2, 3, 6]), dim: 2, n: 2, image: new Int32Array(2), patch: new Int32Array(2) };
 * if (meanFeature(bank).join() !== "2,4") throw new Error("mean");
 * ```
 */
export function meanFeature(bank: PatchBank): Float32Array {
  const { features, dim, n } = bank;
  if (features.length !== n * dim || n === 0) {
    throw new Error(
      `meanFeature: expected a non-empty bank of ${n} x ${dim} features, got ${features.length} values`,
    );
  }
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += features[i * dim + j];
  return Float32Array.from(mean, (v) => v / n);
}

/** What {@link nearestPatches} returns: for query q, entries `q * k .. q * k + k - 1`, best first. */
export interface Neighbours {
  /** Bank rows. [queries, k] */
  index: Int32Array;
  /** Cosine similarity of each. [queries, k] */
  similarity: Float32Array;
  /** Neighbours per query. */
  k: number;
}

/**
 * The `k` bank patches most cosine-similar to each query row ([queries, dim], e.g. the predictor's
 * outputs for one target block), best first; equal similarities go to the lower bank row.
 * `excludeImages` skips bank patches of those images (e.g. the query's own image). `centre`
 * subtracts a vector from queries and bank rows first (`true`: the bank's mean feature): when every
 * feature shares one large component, as in a collapsing encoder, raw cosines are all near 1 and
 * the ranking hinges on that component's noise; centring ranks by what tells patches apart. Plain
 * TypeScript, deterministic.
 *
 * @example
 * ```ts
 * import { nearestPatches } from "./retrieval.ts";
 * const bank = {
 *   features: new Float32Array([1, 0, 0, 1, -1, 0]), dim: 2, n: 3,
 *   image: Int32Array.from([0, 0, 1]), patch: Int32Array.from([0, 1, 0]),
 * };
 * const r = nearestPatches(new Float32Array([0.9, 0.1, -1, 0.2]), bank, 1);
 * if (r.index.join() !== "0,2") throw new Error(`got ${r.index.join()}`);
 * ```
 */
export function nearestPatches(
  queries: Float32Array,
  bank: PatchBank,
  k = 5,
  opts: { excludeImages?: ArrayLike<number>; centre?: boolean | Float32Array } = {},
): Neighbours {
  const { dim, n } = bank;
  if (bank.features.length !== n * dim || bank.image.length !== n || bank.patch.length !== n) {
    throw new Error(
      `nearestPatches: expected a bank of ${n} x ${dim} features with ${n} image and patch indices, got ` +
        `${bank.features.length} features, ${bank.image.length} image and ${bank.patch.length} patch indices`,
    );
  }
  if (queries.length % dim !== 0) {
    throw new Error(
      `nearestPatches: expected queries [K, ${dim}] (the bank's width), got ${queries.length} values`,
    );
  }
  if (!(Number.isInteger(k) && k >= 1)) {
    throw new Error(`nearestPatches: k must be a positive integer, got ${k}`);
  }
  const skip = new Set(Array.from(opts.excludeImages ?? []));
  const allowed: number[] = [];
  for (let i = 0; i < n; i++) if (!skip.has(bank.image[i])) allowed.push(i);
  if (allowed.length < k) {
    throw new Error(
      `nearestPatches: asked for ${k} neighbours, the bank has ${allowed.length} patches to offer`,
    );
  }
  // Centring: cos(q - c, b - c), expanded so no centred copy of the bank is made:
  // (q - c).(b - c) = q.b - q.c - b.c + c.c and |b - c|^2 = |b|^2 - 2 b.c + c.c.
  const c = new Float64Array(dim); // [dim], zero without centring
  if (opts.centre instanceof Float32Array) {
    if (opts.centre.length !== dim) {
      throw new Error(`nearestPatches: expected a centre of ${dim} values, got ${opts.centre.length}`);
    }
    c.set(opts.centre);
  } else if (opts.centre) {
    for (const i of allowed) {
      for (let j = 0; j < dim; j++) c[j] += bank.features[i * dim + j] / allowed.length;
    }
  }
  let cc = 0;
  for (let j = 0; j < dim; j++) cc += c[j] * c[j];
  const inv = new Float64Array(n), bc = new Float64Array(n); // 1 / |b - c| and b.c per bank row
  for (const i of allowed) {
    let s = 0, d = 0;
    for (let j = 0; j < dim; j++) {
      const b = bank.features[i * dim + j];
      s += b * b;
      d += b * c[j];
    }
    const norm2 = s - 2 * d + cc;
    bc[i] = d;
    inv[i] = norm2 > 1e-12 * Math.max(s, 1e-300) ? 1 / Math.sqrt(norm2) : 0;
  }
  const K = queries.length / dim;
  const index = new Int32Array(K * k), similarity = new Float32Array(K * k);
  const topS = new Float64Array(k), topI = new Int32Array(k);
  for (let q = 0; q < K; q++) {
    let qn = 0, qc = 0;
    for (let j = 0; j < dim; j++) {
      qn += queries[q * dim + j] ** 2;
      qc += queries[q * dim + j] * c[j];
    }
    const qn2 = qn - 2 * qc + cc;
    const qinv = qn2 > 1e-12 * Math.max(qn, 1e-300) ? 1 / Math.sqrt(qn2) : 0;
    topS.fill(-Infinity);
    topI.fill(-1);
    for (const i of allowed) {
      let s = 0;
      const o = i * dim, qo = q * dim;
      for (let j = 0; j < dim; j++) s += queries[qo + j] * bank.features[o + j];
      s = (s - qc - bc[i] + cc) * qinv * inv[i];
      if (s <= topS[k - 1]) continue; // strictly better only: ties keep the lower row
      let pos = k - 1;
      while (pos > 0 && s > topS[pos - 1]) {
        topS[pos] = topS[pos - 1];
        topI[pos] = topI[pos - 1];
        pos--;
      }
      topS[pos] = s;
      topI[pos] = i;
    }
    index.set(topI, q * k);
    similarity.set(topS, q * k);
  }
  return { index, similarity, k };
}
