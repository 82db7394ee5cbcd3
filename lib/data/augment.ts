/**
 * Image augmentation for I-JEPA pre-training: RandomResizedCrop and per-channel normalisation.
 *
 * The official I-JEPA config turns every augmentation off except `RandomResizedCrop(scale=(0.3,
 * 1.0))` (flip and colour jitter are off), so that is all this file does. Images are plain typed
 * arrays in NHWC order, one image `[H, W, C]` at a time; nothing here touches tfjs.
 *
 * - {@link sampleCropBox} draws a crop box with the torchvision algorithm (10 tries, then a centre
 *   crop fallback).
 * - {@link resizeCrop} cuts a box out of an image and resizes it with a bilinear (triangle) filter
 *   that widens when it shrinks, as PIL's `BILINEAR` resize does, so downscaling does not alias.
 * - {@link randomResizedCrop} is the two together.
 * - {@link normalize} maps pixels `0..255` to `(x / 255 - mean) / std` per channel.
 *
 * @example
 * ```ts
 * import { normalize, randomResizedCrop } from "./augment.ts";
 * import { Rng } from "../engine/rng.ts";
 * const img = new Uint8Array(28 * 28).map((_, i) => i % 256); // [28, 28, 1]
 * const crop = randomResizedCrop(img, 28, 28, 1, new Rng(0)); // [28, 28, 1], pixel units
 * const x = normalize(crop, 1, [0.286], [0.353]);
 * if (x.length !== 28 * 28) throw new Error(`expected 784 values, got ${x.length}`);
 * ```
 * @module
 */

import type { Rng } from "../engine/rng.ts";

/** An integer crop box inside an image, in pixels. */
export interface CropBox {
  /** First row. */
  top: number;
  /** First column. */
  left: number;
  /** Rows in the box (at least 1). */
  height: number;
  /** Columns in the box (at least 1). */
  width: number;
}

/** Pixels of one image: bytes as stored, or floats in the same 0..255 units. */
export type Pixels = Uint8Array | Float32Array;

/** The official I-JEPA crop scale range (fraction of the image area). */
export const IJEPA_CROP_SCALE: readonly [number, number] = [0.3, 1.0];
/** torchvision's default aspect-ratio range (width / height), used by the official config. */
export const DEFAULT_CROP_RATIO: readonly [number, number] = [3 / 4, 4 / 3];

/** Options of {@link randomResizedCrop}. */
export interface RandomResizedCropOptions {
  /** Range of the crop area as a fraction of the image area; official I-JEPA: (0.3, 1.0). */
  scale?: readonly [number, number];
  /** Range of the crop aspect ratio width / height; torchvision default (3/4, 4/3). */
  ratio?: readonly [number, number];
  /** Output rows; default the input height (the official code crops to the model's input size). */
  outHeight?: number;
  /** Output columns; default the input width. */
  outWidth?: number;
  /** Write into this array (at `outOffset`) instead of allocating one. */
  out?: Float32Array;
  /** Where the image starts in `out`. */
  outOffset?: number;
}

/** Python's `round`: halves go to the even neighbour (torchvision's crop sizes use it). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkRange(what: string, r: readonly [number, number]): void {
  if (!(r.length === 2 && r[0] > 0 && r[1] >= r[0] && Number.isFinite(r[1]))) {
    throw new RangeError(`${what}: expected [lo, hi] with 0 < lo <= hi, got ${JSON.stringify(r)}`);
  }
}

/**
 * Draw a RandomResizedCrop box with the torchvision algorithm: up to 10 tries of a uniform area
 * fraction in `scale` and a log-uniform aspect ratio in `ratio`, kept when the rounded box fits;
 * after 10 misses, the largest centre crop whose ratio is clamped into `ratio`.
 *
 * @example
 * ```ts
 * import { sampleCropBox } from "./augment.ts";
 * import { Rng } from "../engine/rng.ts";
 * const b = sampleCropBox(224, 224, new Rng(1), [0.3, 1], [3 / 4, 4 / 3]);
 * const frac = (b.height * b.width) / (224 * 224);
 * if (frac < 0.29 || frac > 1) throw new Error(`area fraction ${frac} out of range`);
 * ```
 */
export function sampleCropBox(
  height: number,
  width: number,
  rng: Rng,
  scale: readonly [number, number] = IJEPA_CROP_SCALE,
  ratio: readonly [number, number] = DEFAULT_CROP_RATIO,
): CropBox {
  checkSize("sampleCropBox", height, width, 1);
  checkRange("sampleCropBox: scale", scale);
  checkRange("sampleCropBox: ratio", ratio);
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(0, height - h + 1);
      const left = rng.int(0, width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  // Fallback: centre crop with the aspect ratio clamped into `ratio`.
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = roundHalfEven(w / ratio[0]);
  else if (inRatio > ratio[1]) w = roundHalfEven(h * ratio[1]);
  return {
    top: Math.floor((height - h) / 2),
    left: Math.floor((width - w) / 2),
    height: h,
    width: w,
  };
}

function checkSize(what: string, h: number, w: number, c: number): void {
  for (const [name, v] of [["height", h], ["width", w], ["channels", c]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${what}: expected a positive integer ${name}, got ${v}`);
    }
  }
}

/** Tap table of a 1-D resample: for output i, `count[i]` weights from input `start[i]`. */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  stride: number;
}

/**
 * Triangle-filter taps mapping `inSize` samples onto `outSize`, PIL style: the filter support is
 * 1 input pixel when enlarging and widens to `inSize / outSize` pixels when shrinking.
 */
function bilinearTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the triangle's support is 1, stretched by filterScale
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    let total = 0;
    let k = 0;
    for (let x = lo; x < hi && k < stride; x++, k++) {
      const d = Math.abs((x - center + 0.5) / filterScale);
      const wgt = d < 1 ? 1 - d : 0;
      weights[i * stride + k] = wgt;
      total += wgt;
    }
    for (let j = 0; j < k; j++) weights[i * stride + j] /= total;
    start[i] = lo;
    count[i] = k;
  }
  return { start, count, weights, stride };
}

/**
 * Cut `box` out of an `[height, width, channels]` image and resize it to `[outHeight, outWidth,
 * channels]` with a separable bilinear filter (antialiased when shrinking). Values stay in the
 * input's units (0..255 for bytes). A box the size of the image resized to the same size is an
 * exact copy.
 *
 * @example
 * ```ts
 * import { resizeCrop } from "./augment.ts";
 * const img = new Uint8Array([0, 100, 200, 255]); // [2, 2, 1]
 * const same = resizeCrop(img, 2, 2, 1, { top: 0, left: 0, height: 2, width: 2 }, 2, 2);
 * if (same.join() !== "0,100,200,255") throw new Error(`identity failed: ${same.join()}`);
 * const one = resizeCrop(img, 2, 2, 1, { top: 0, left: 0, height: 2, width: 2 }, 1, 1);
 * if (one[0] !== 138.75) throw new Error(`expected the mean 138.75, got ${one[0]}`);
 * ```
 */
export function resizeCrop(
  src: Pixels,
  height: number,
  width: number,
  channels: number,
  box: CropBox,
  outHeight: number,
  outWidth: number,
  out?: Float32Array,
  outOffset = 0,
): Float32Array {
  checkSize("resizeCrop", height, width, channels);
  checkSize("resizeCrop: output", outHeight, outWidth, channels);
  if (src.length !== height * width * channels) {
    throw new RangeError(
      `resizeCrop: expected ${height}x${width}x${channels} = ${
        height * width * channels
      } pixels, got ${src.length}`,
    );
  }
  const { top, left } = box;
  const bh = box.height;
  const bw = box.width;
  if (
    !Number.isInteger(top) || !Number.isInteger(left) || !Number.isInteger(bh) ||
    !Number.isInteger(bw) || top < 0 || left < 0 || bh < 1 || bw < 1 ||
    top + bh > height || left + bw > width
  ) {
    throw new RangeError(
      `resizeCrop: expected an integer box inside the ${height}x${width} image, got ${JSON.stringify(box)}`,
    );
  }
  const size = outHeight * outWidth * channels;
  const dst = out ?? new Float32Array(size);
  if (outOffset < 0 || outOffset + size > dst.length) {
    throw new RangeError(
      `resizeCrop: output needs ${size} values at offset ${outOffset}, but out has ${dst.length}`,
    );
  }
  const C = channels;
  // The crop is taken first and the filter never reads outside it, as torchvision's
  // resized_crop (crop, then resize) does.
  const hx = bilinearTaps(bw, outWidth);
  const vy = bilinearTaps(bh, outHeight);
  // Pass 1, horizontal: box rows x output columns. [bh, outWidth, C]
  // Departure from PIL: the intermediate stays float (PIL rounds it to uint8 between passes).
  const tmp = new Float32Array(bh * outWidth * C);
  for (let y = 0; y < bh; y++) {
    const rowBase = ((top + y) * width + left) * C;
    for (let x = 0; x < outWidth; x++) {
      const s = hx.start[x];
      const n = hx.count[x];
      const wb = x * hx.stride;
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += hx.weights[wb + k] * src[rowBase + (s + k) * C + c];
        tmp[(y * outWidth + x) * C + c] = acc;
      }
    }
  }
  // Pass 2, vertical: output rows x output columns. [outHeight, outWidth, C]
  const rowLen = outWidth * C;
  for (let y = 0; y < outHeight; y++) {
    const s = vy.start[y];
    const n = vy.count[y];
    const wb = y * vy.stride;
    const o = outOffset + y * rowLen;
    for (let i = 0; i < rowLen; i++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += vy.weights[wb + k] * tmp[(s + k) * rowLen + i];
      dst[o + i] = acc;
    }
  }
  return dst;
}

/**
 * RandomResizedCrop as in the official I-JEPA config: draw a box with {@link sampleCropBox}
 * (scale (0.3, 1.0), ratio (3/4, 4/3) by default) and resize it with {@link resizeCrop} to the
 * input size (or `outHeight` x `outWidth`). Returns `[outHeight, outWidth, channels]` floats in
 * the input's units (0..255 for bytes); the same `rng` state gives the same crop.
 *
 * @example
 * ```ts
 * import { randomResizedCrop } from "./augment.ts";
 * import { Rng } from "../engine/rng.ts";
 * const img = new Uint8Array(32 * 32 * 3).fill(7); // [32, 32, 3]
 * const a = randomResizedCrop(img, 32, 32, 3, new Rng(5), { outHeight: 16, outWidth: 16 });
 * const b = randomResizedCrop(img, 32, 32, 3, new Rng(5), { outHeight: 16, outWidth: 16 });
 * if (a.length !== 16 * 16 * 3 || a.join() !== b.join()) throw new Error("not deterministic");
 * if (Math.abs(a[0] - 7) > 1e-4) throw new Error(`a flat image must stay flat, got ${a[0]}`);
 * ```
 */
export function randomResizedCrop(
  src: Pixels,
  height: number,
  width: number,
  channels: number,
  rng: Rng,
  opts: RandomResizedCropOptions = {},
): Float32Array {
  const box = sampleCropBox(
    height,
    width,
    rng,
    opts.scale ?? IJEPA_CROP_SCALE,
    opts.ratio ?? DEFAULT_CROP_RATIO,
  );
  return resizeCrop(
    src,
    height,
    width,
    channels,
    box,
    opts.outHeight ?? height,
    opts.outWidth ?? width,
    opts.out,
    opts.outOffset ?? 0,
  );
}

/**
 * Per-channel normalisation of NHWC pixels in 0..255 units: `(x / 255 - mean[c]) / std[c]`,
 * where `c` is the index modulo `channels` (mean and std in 0..1 units, as torchvision's
 * `ToTensor` + `Normalize`). Writes into `out` (which may be `src` itself) or a new array.
 *
 * @example
 * ```ts
 * import { normalize } from "./augment.ts";
 * // Two pixels of two channels: channel 0 keeps x / 255, channel 1 is shifted and scaled.
 * const x = normalize(new Uint8Array([0, 255, 51, 102]), 2, [0, 0.2], [1, 0.2]);
 * const want = [0, 4, 0.2, 1];
 * if (want.some((v, i) => Math.abs(x[i] - v) > 1e-6)) throw new Error(`got ${x.join()}`);
 * ```
 */
export function normalize(
  src: Pixels,
  channels: number,
  mean: readonly number[],
  std: readonly number[],
  out?: Float32Array,
): Float32Array {
  if (mean.length !== channels || std.length !== channels) {
    throw new RangeError(
      `normalize: expected ${channels} mean and std values (one per channel), got ${mean.length} and ${std.length}`,
    );
  }
  if (std.some((s) => !(s > 0))) {
    throw new RangeError(`normalize: expected every std > 0, got ${JSON.stringify(std)}`);
  }
  if (src.length % channels !== 0) {
    throw new RangeError(
      `normalize: expected a multiple of ${channels} values (NHWC), got ${src.length}`,
    );
  }
  const dst = out ?? new Float32Array(src.length);
  if (dst.length < src.length) {
    throw new RangeError(`normalize: out has ${dst.length} values, expected ${src.length}`);
  }
  const scale = std.map((s) => 1 / (255 * s));
  const shift = mean.map((m, c) => m / std[c]);
  for (let i = 0; i < src.length; i += channels) {
    for (let c = 0; c < channels; c++) dst[i + c] = src[i + c] * scale[c] - shift[c];
  }
  return dst;
}
