/**
 * The model's input from a dataset's images: bytes normalised per channel (`(x / 255 - mean) /
 * std`) and, when the dataset's size is not the model's, resized with the full crop box of
 * lib/data/augment.ts `resizeCrop`. Shared by feature extraction and the analyses of lib/inside/.
 *
 * @module
 */
import { resizeCrop } from "../data/augment.ts";
import type { ImageDataset } from "../data/dataset.ts";

/**
 * The images `[start, start + count)` of `ds` as the model's input: resized to `size` x `size`
 * when needed, normalised per channel. Returns [count, size, size, C] floats.
 */
export function modelInput(
  ds: ImageDataset,
  start: number,
  count: number,
  size: number,
  mean: readonly number[],
  std: readonly number[],
): Float32Array {
  const { height: H, width: W, channels: C } = ds;
  const pix = H * W * C;
  const out = new Float32Array(count * size * size * C); // [count, size, size, C]
  const scale = mean.map((_, c) => 1 / (255 * std[c]));
  const shift = mean.map((m, c) => m / std[c]);
  const resize = H !== size || W !== size;
  const buf = resize ? new Float32Array(size * size * C) : undefined;
  for (let b = 0; b < count; b++) {
    const src = ds.images.subarray((start + b) * pix, (start + b + 1) * pix); // [H, W, C]
    const img = buf
      ? resizeCrop(src, H, W, C, { top: 0, left: 0, height: H, width: W }, size, size, buf)
      : src;
    const o = b * size * size * C;
    for (let i = 0; i < img.length; i += C) {
      for (let c = 0; c < C; c++) out[o + i + c] = img[i + c] * scale[c] - shift[c];
    }
  }
  return out;
}
