/**
 * Per-channel pixel statistics (mean and std in 0..1 units, for normalisation) and subsets of a
 * dataset by index.
 *
 * @module
 */

import { DataError, type ImageDataset } from "./dataset.ts";

/**
 * Per-channel mean and standard deviation of the pixels, in 0..1 units (pixel / 255), as
 * torchvision's `Normalize` expects. Compute it on the training set and reuse it for test data.
 *
 * @example
 * ```ts
 * import { channelStats } from "./stats.ts";
 * import { loadFashionMnist, shippedFashionMnistDir } from "./load.ts";
 * const { train } = await loadFashionMnist({ dir: shippedFashionMnistDir() });
 * const { mean, std } = channelStats(train);
 * if (Math.abs(mean[0] - 0.286) > 0.01 || Math.abs(std[0] - 0.353) > 0.01) throw new Error("stats");
 * ```
 */
export function channelStats(ds: ImageDataset): { mean: number[]; std: number[] } {
  const C = ds.channels;
  const count = ds.n * ds.height * ds.width;
  if (count === 0) {
    throw new DataError(`channelStats: expected a non-empty dataset, got ${ds.source}`);
  }
  const sum = new Float64Array(C);
  const sq = new Float64Array(C);
  const px = ds.images;
  if (C === 1) {
    // Histogram: exact sums without a multiply per pixel.
    const hist = new Float64Array(256);
    for (let i = 0; i < px.length; i++) hist[px[i]]++;
    for (let v = 0; v < 256; v++) {
      sum[0] += v * hist[v];
      sq[0] += v * v * hist[v];
    }
  } else {
    for (let i = 0; i < px.length; i += C) {
      for (let c = 0; c < C; c++) {
        const v = px[i + c];
        sum[c] += v;
        sq[c] += v * v;
      }
    }
  }
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < C; c++) {
    const m = sum[c] / count;
    mean.push(m / 255);
    std.push(Math.sqrt(Math.max(sq[c] / count - m * m, 0)) / 255);
  }
  return { mean, std };
}

/**
 * A copy of the images and labels at `indices`, in that order.
 *
 * @example
 * ```ts
 * import { subset } from "./stats.ts";
 * import { loadFashionMnist, shippedFashionMnistDir } from "./load.ts";
 * const { test } = await loadFashionMnist({ dir: shippedFashionMnistDir() });
 * const s = subset(test, [5, 0]);
 * if (s.n !== 2 || s.labels[1] !== test.labels[0]) throw new Error("subset order");
 * ```
 */
export function subset(ds: ImageDataset, indices: ArrayLike<number>): ImageDataset {
  const pix = ds.height * ds.width * ds.channels;
  const n = indices.length;
  const images = new Uint8Array(n * pix); // [n, H, W, C]
  const labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.n) {
      throw new RangeError(`subset: index ${i} at position ${k} is out of range 0..${ds.n - 1}`);
    }
    images.set(ds.images.subarray(i * pix, (i + 1) * pix), k * pix);
    labels[k] = ds.labels[i];
  }
  return {
    ...ds,
    images,
    labels,
    n,
    classNames: [...ds.classNames],
    source: `${ds.source} [${n} selected]`,
  };
}
