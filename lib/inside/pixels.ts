/**
 * Pixels for drawing: {@link PlotImage}, the image the plots of lib/viz/ take; one image or one
 * patch of a set ({@link imageAt}, {@link cutPatch}), patches painted over or framed
 * ({@link pastePatches}, {@link highlightPatch}), and a dataset resized and matched to a model's
 * channels ({@link adaptImages}).
 *
 * @module
 */
import { resizeCrop } from "../data/augment.ts";
import type { ImageDataset } from "../data/dataset.ts";

/** An image in row-major HWC layout; floats in [0, 1] or any range (min-max scaled). */
export interface PlotImage {
  /** Pixel values, `height * width * channels` of them. */
  data: Float32Array | Uint8Array;
  /** Height in pixels. */
  height: number;
  /** Width in pixels. */
  width: number;
  /** 1 (grey), 3 (RGB) or 4 (RGBA). */
  channels: number;
}

/** Pixels of a PlotImage as bytes: Uint8 as is, floats in [0, 1] times 255, other floats min-max. */
export function toBytes(img: PlotImage): Uint8Array {
  if (img.data instanceof Uint8Array) return img.data;
  let lo = Infinity, hi = -Infinity;
  for (const v of img.data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const [a, b] = lo >= 0 && hi <= 1 ? [0, 1] : [lo, hi > lo ? hi : lo + 1];
  return Uint8Array.from(img.data, (v) => Math.round(255 * (v - a) / (b - a)));
}

/** Images in NHWC bytes: an {@link ImageDataset}, or any object with these fields. */
export type ImageSet = Pick<ImageDataset, "images" | "n" | "height" | "width" | "channels">;

/**
 * Image `i` of a set, as a `PlotImage` (a view, not a copy).
 *
 * @example
 * ```ts
 * import { imageAt } from "./pixels.ts";
 * const set = { images: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), n: 2, height: 2, width: 2, channels: 1 };
 * if (imageAt(set, 1).data.join() !== "5,6,7,8") throw new Error("image 1");
 * ```
 */
export function imageAt(set: ImageSet, i: number): PlotImage & { data: Uint8Array } {
  if (!(Number.isInteger(i) && i >= 0 && i < set.n)) {
    throw new Error(`imageAt: image index ${i} is out of range 0..${set.n - 1}`);
  }
  const pix = set.height * set.width * set.channels;
  return {
    data: set.images.subarray(i * pix, (i + 1) * pix),
    height: set.height,
    width: set.width,
    channels: set.channels,
  };
}

/**
 * The pixels of patch `patch` (index `row * cols + col` on a grid of `patchSize` x `patchSize`
 * patches) of image `image`, as a `PlotImage` of `patchSize` x `patchSize` (a copy). The set's
 * images must be at the model's input size (see {@link adaptImages}).
 *
 * @example
 * ```ts
 * import { cutPatch } from "./pixels.ts";
 * // One 4x4 grey image, values 0..15 row-major; patch 3 of its 2x2 grid is the bottom-right 2x2.
 * const set = { images: Uint8Array.from({ length: 16 }, (_, i) => i), n: 1, height: 4, width: 4, channels: 1 };
 * const p = cutPatch(set, 0, 3, 2);
 * if (p.data.join() !== "10,11,14,15") throw new Error(`got ${p.data.join()}`);
 * ```
 */
export function cutPatch(
  set: ImageSet,
  image: number,
  patch: number,
  patchSize: number,
): PlotImage & { data: Uint8Array } {
  const { height: H, width: W, channels: C } = set;
  if (!(Number.isInteger(patchSize) && patchSize >= 1) || H % patchSize !== 0 || W % patchSize !== 0) {
    throw new Error(`cutPatch: patch size ${patchSize} does not divide the ${H}x${W} images`);
  }
  const cols = W / patchSize, rows = H / patchSize;
  if (!(Number.isInteger(patch) && patch >= 0 && patch < rows * cols)) {
    throw new Error(
      `cutPatch: patch index ${patch} is outside the ${rows}x${cols} grid (0..${rows * cols - 1})`,
    );
  }
  const src = imageAt(set, image).data;
  const r0 = Math.floor(patch / cols) * patchSize, c0 = (patch % cols) * patchSize;
  const out = new Uint8Array(patchSize * patchSize * C);
  for (let y = 0; y < patchSize; y++) {
    const from = ((r0 + y) * W + c0) * C;
    out.set(src.subarray(from, from + patchSize * C), y * patchSize * C);
  }
  return { data: out, height: patchSize, width: patchSize, channels: C };
}

/** One patch to paint by {@link pastePatches}: its grid index and either pixels or a flat grey level. */
export interface PatchPaint {
  /** The patch's index on the image's grid (row * cols + col). */
  patch: number;
  /** Pixels of one patch (patchSize x patchSize, the image's channels), e.g. from {@link cutPatch}. */
  pixels?: PlotImage;
  /** A flat value 0..255 for every channel (used when no pixels are given; default 128). */
  fill?: number;
}

/**
 * A copy of `image` (bytes) with some patches painted over: with other patches' pixels (to show
 * retrieved neighbours in place of a target block) or with a flat grey (to hide them).
 *
 * @example
 * ```ts
 * import { pastePatches } from "./pixels.ts";
 * const img = { data: new Uint8Array(16), height: 4, width: 4, channels: 1 };
 * const out = pastePatches(img, 2, [{ patch: 1, fill: 200 }]);
 * if (out.data[2] !== 200 || out.data[0] !== 0 || img.data[2] !== 0) throw new Error("paste");
 * ```
 */
export function pastePatches(
  image: PlotImage,
  patchSize: number,
  paints: PatchPaint[],
): PlotImage & { data: Uint8Array } {
  const { height: H, width: W, channels: C } = image;
  if (!(Number.isInteger(patchSize) && patchSize >= 1) || H % patchSize !== 0 || W % patchSize !== 0) {
    throw new Error(`pastePatches: patch size ${patchSize} does not divide the ${H}x${W} image`);
  }
  const cols = W / patchSize, rows = H / patchSize;
  const out = toBytes(image).slice();
  for (const { patch, pixels, fill } of paints) {
    if (!(Number.isInteger(patch) && patch >= 0 && patch < rows * cols)) {
      throw new Error(`pastePatches: patch index ${patch} is outside the ${rows}x${cols} grid`);
    }
    let src: Uint8Array | undefined;
    if (pixels) {
      if (pixels.height !== patchSize || pixels.width !== patchSize || pixels.channels !== C) {
        throw new Error(
          `pastePatches: expected ${patchSize}x${patchSize}x${C} patch pixels, got ${pixels.height}x${pixels.width}x${pixels.channels}`,
        );
      }
      src = toBytes(pixels);
    }
    const r0 = Math.floor(patch / cols) * patchSize, c0 = (patch % cols) * patchSize;
    const grey = Math.round(Math.min(255, Math.max(0, fill ?? 128)));
    for (let y = 0; y < patchSize; y++) {
      for (let x = 0; x < patchSize; x++) {
        for (let c = 0; c < C; c++) {
          out[((r0 + y) * W + c0 + x) * C + c] = src ? src[(y * patchSize + x) * C + c] : grey;
        }
      }
    }
  }
  return { data: out, height: H, width: W, channels: C };
}

/**
 * A copy of `image` as RGB with a frame drawn just outside patch `patch` (clipped to the image), so
 * the patch itself stays visible, even on a dark background. The frame is `thickness` pixels wide
 * (default: 1 pixel per 56 of the image's side, at least 1, so it still shows when a 224 px image
 * is drawn small).
 *
 * @example
 * ```ts
 * import { highlightPatch } from "./pixels.ts";
 * const img = { data: new Uint8Array(36), height: 6, width: 6, channels: 1 }; // a 3x3 grid of 2x2 patches
 * const out = highlightPatch(img, 2, 4); // the centre patch: pixels (2..3, 2..3), frame (1..4, 1..4)
 * const at = (y: number, x: number) => out.data[(y * 6 + x) * 3];
 * if (out.channels !== 3 || at(1, 1) !== 255 || at(2, 2) !== 0 || at(0, 0) !== 0) throw new Error("frame");
 * ```
 */
export function highlightPatch(
  image: PlotImage,
  patchSize: number,
  patch: number,
  colour: readonly [number, number, number] = [255, 40, 40],
  thickness?: number,
): PlotImage & { data: Uint8Array } {
  const { height: H, width: W, channels: C } = image;
  const t = thickness ?? Math.max(1, Math.round(Math.max(H, W) / 56));
  if (!(Number.isInteger(t) && t >= 1)) {
    throw new Error(`highlightPatch: thickness must be a positive integer, got ${t}`);
  }
  if (!(Number.isInteger(patchSize) && patchSize >= 1) || H % patchSize !== 0 || W % patchSize !== 0) {
    throw new Error(`highlightPatch: patch size ${patchSize} does not divide the ${H}x${W} image`);
  }
  const cols = W / patchSize, rows = H / patchSize;
  if (!(Number.isInteger(patch) && patch >= 0 && patch < rows * cols)) {
    throw new Error(`highlightPatch: patch index ${patch} is outside the ${rows}x${cols} grid`);
  }
  const src = toBytes(image);
  const out = new Uint8Array(H * W * 3);
  for (let p = 0; p < H * W; p++) {
    for (let c = 0; c < 3; c++) out[p * 3 + c] = src[p * C + (C === 1 ? 0 : Math.min(c, C - 1))];
  }
  // The patch covers [py, py + patchSize) x [px, px + patchSize); the frame is the t pixels around it.
  const py = Math.floor(patch / cols) * patchSize, px = (patch % cols) * patchSize;
  for (let y = py - t; y < py + patchSize + t; y++) {
    for (let x = px - t; x < px + patchSize + t; x++) {
      const inside = y >= py && y < py + patchSize && x >= px && x < px + patchSize;
      if (inside || y < 0 || x < 0 || y >= H || x >= W) continue;
      out.set(colour, (y * W + x) * 3);
    }
  }
  return { data: out, height: H, width: W, channels: 3 };
}

/**
 * A dataset resized to `size` x `size` (bilinear over the whole image, as lib/eval/features.ts resizes)
 * and converted to `channels`: grey repeated into RGB, or RGB averaged into grey. Use it to feed
 * data to a checkpoint trained on other images (the shipped grey 28 px Fashion-MNIST to an RGB
 * model), and to cut patches at the model's resolution. Returns a new dataset; labels are shared.
 *
 * @example
 * ```ts
 * import { adaptImages } from "./pixels.ts";
 * import type { ImageDataset } from "../data/dataset.ts";
 * const ds: ImageDataset = {
 *   images: Uint8Array.from([0, 100, 200, 255]), labels: new Int32Array([0]), n: 1,
 *   height: 2, width: 2, channels: 1, classNames: ["a"], source: "demo",
 * };
 * const rgb = adaptImages(ds, { size: 2, channels: 3 });
 * if (rgb.channels !== 3 || rgb.images.slice(3, 6).join() !== "100,100,100") throw new Error("rgb");
 * ```
 */
export function adaptImages(ds: ImageDataset, opts: { size: number; channels: number }): ImageDataset {
  const { size, channels } = opts;
  if (!(Number.isInteger(size) && size >= 1)) {
    throw new Error(`adaptImages: size must be a positive integer, got ${size}`);
  }
  const C = ds.channels;
  if (!(channels === C || (C === 1 && channels === 3) || (C === 3 && channels === 1))) {
    throw new Error(`adaptImages: can convert 1 <-> 3 channels, got ${C} -> ${channels}`);
  }
  const resize = ds.height !== size || ds.width !== size;
  const pix = ds.height * ds.width * C;
  const images = new Uint8Array(ds.n * size * size * channels); // [n, size, size, channels]
  const buf = new Float32Array(size * size * C);
  const box = { top: 0, left: 0, height: ds.height, width: ds.width };
  for (let i = 0; i < ds.n; i++) {
    const src = ds.images.subarray(i * pix, (i + 1) * pix);
    const img = resize ? resizeCrop(src, ds.height, ds.width, C, box, size, size, buf) : src;
    const o = i * size * size * channels;
    for (let p = 0; p < size * size; p++) {
      if (channels === C) {
        for (let c = 0; c < C; c++) images[o + p * C + c] = Math.round(img[p * C + c]);
      } else if (C === 1) {
        const v = Math.round(img[p]);
        images[o + p * 3] = images[o + p * 3 + 1] = images[o + p * 3 + 2] = v;
      } else {
        images[o + p] = Math.round((img[p * 3] + img[p * 3 + 1] + img[p * 3 + 2]) / 3);
      }
    }
  }
  return {
    ...ds,
    images,
    height: size,
    width: size,
    channels,
    source: `${ds.source}, as ${size}x${size}x${channels}`,
  };
}
