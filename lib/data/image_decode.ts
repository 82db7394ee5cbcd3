/**
 * One image file into the model's bytes: PNG/JPEG decoding, centre crop and resize to a square of
 * the model's side in grey or RGB, and the `source` phrase saying what the files were and what
 * was done to them.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { PNG } from "pngjs";
import { decode as decodeJpegBytes } from "jpeg-js";
import { type CropBox, resizeCrop } from "./augment.ts";
import { DataError } from "./dataset.ts";
import { hex } from "./files.ts";

interface PngSync {
  sync: { read(buf: Uint8Array): { width: number; height: number; data: Uint8Array } };
}

/** A decoded PNG or JPEG as RGBA bytes. */
export interface DecodedImage {
  width: number;
  height: number;
  /** [height, width, 4] */
  rgba: Uint8Array;
}

/** Decode PNG or JPEG bytes (detected from the magic bytes) to RGBA. */
export function decodeImage(bytes: Uint8Array, file: string): DecodedImage {
  const isPng = bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
    bytes[3] === 0x47;
  const isJpeg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!isPng && !isJpeg) {
    throw new DataError(
      `${file}: undecodable image: expected PNG (89 50 4e 47) or JPEG (ff d8 ff) magic bytes, got ${
        hex(bytes.subarray(0, 4))
      }`,
    );
  }
  try {
    if (isPng) {
      // pngjs reads with Buffer methods, so hand it a Buffer view (no copy).
      const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const png = (PNG as unknown as PngSync).sync.read(buf);
      return { width: png.width, height: png.height, rgba: png.data };
    }
    const jpg = decodeJpegBytes(bytes, { useTArray: true, formatAsRGBA: true });
    return { width: jpg.width, height: jpg.height, rgba: jpg.data };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new DataError(`${file}: undecodable ${isPng ? "PNG" : "JPEG"} image (${why})`);
  }
}

/** True when every pixel has R = G = B (a grey picture, whatever colour type its file has). */
function isGrey(rgba: Uint8Array): boolean {
  for (let q = 0; q < rgba.length; q += 4) {
    if (rgba[q] !== rgba[q + 1] || rgba[q] !== rgba[q + 2]) return false;
  }
  return true;
}

/**
 * Centre-crop a decoded image to a square, resize it to size x size and write its grey (luma) or
 * RGB bytes into `dst` ([size, size, channels]).
 */
export function convertInto(img: DecodedImage, size: number, channels: 1 | 3, dst: Uint8Array): void {
  const { width, height, rgba } = img;
  const src = new Uint8Array(width * height * channels); // [height, width, channels]
  for (let p = 0, q = 0; p < width * height; p++, q += 4) {
    if (channels === 3) {
      src[p * 3] = rgba[q];
      src[p * 3 + 1] = rgba[q + 1];
      src[p * 3 + 2] = rgba[q + 2];
    } else {
      // exact for grey pixels: (299 + 587 + 114) v / 1000 = v
      src[p] = Math.round((rgba[q] * 299 + rgba[q + 1] * 587 + rgba[q + 2] * 114) / 1000);
    }
  }
  const side = Math.min(width, height);
  const box: CropBox = {
    top: Math.floor((height - side) / 2),
    left: Math.floor((width - side) / 2),
    height: side,
    width: side,
  };
  if (side === size && width === height) {
    dst.set(src);
    return;
  }
  const out = resizeCrop(src, height, width, channels, box, size, size); // [size, size, C]
  for (let i = 0; i < dst.length; i++) dst[i] = Math.min(255, Math.max(0, Math.round(out[i])));
}

/** What the files of a folder were before conversion (for the `source` text). */
export interface SeenImages {
  n: number;
  /** Images with R = G = B in every pixel. */
  grey: number;
  /** "WxH" (width x height, as image sizes are usually written) -> count. */
  sizes: Map<string, { width: number; height: number; count: number }>;
}

/** Count `img` in `seen`: grey or not, and its size. */
export function noteImage(seen: SeenImages, img: DecodedImage): void {
  seen.n++;
  if (isGrey(img.rgba)) seen.grey++;
  const key = `${img.width}x${img.height}`;
  const s = seen.sizes.get(key);
  if (s) s.count++;
  else seen.sizes.set(key, { width: img.width, height: img.height, count: 1 });
}

function listAnd(items: string[]): string {
  return items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/**
 * One phrase for the `source` text: what the files were and what was done to them, e.g.
 * "50 images (30 grey, 20 RGB) of 31x45, 20x20 and 40x33 px as 28x28 grey: 20 converted from RGB
 * (luma), 35 centre-cropped, 50 resized".
 */
export function describeImages(seen: SeenImages, size: number, channels: 1 | 3): string {
  const { n, grey } = seen;
  const colour = n - grey;
  const kinds = colour === 0
    ? `${n} grey image${n === 1 ? "" : "s"}`
    : grey === 0
    ? `${n} RGB image${n === 1 ? "" : "s"}`
    : `${n} images (${grey} grey, ${colour} RGB)`;
  const sizes = [...seen.sizes.entries()].sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : 1));
  let sizeText: string;
  if (sizes.length <= 3) {
    sizeText = listAnd(sizes.map(([k]) => k));
  } else {
    const byArea = [...sizes].sort((a, b) => a[1].width * a[1].height - b[1].width * b[1].height);
    sizeText = `${sizes.length} sizes from ${byArea[0][0]} to ${byArea.at(-1)![0]}`;
  }
  let cropped = 0, resized = 0;
  for (const s of seen.sizes.values()) {
    if (s.width !== s.height) cropped += s.count;
    if (Math.min(s.width, s.height) !== size) resized += s.count;
  }
  const actions: string[] = [];
  if (channels === 1 && colour > 0) actions.push(`${colour} converted from RGB (luma)`);
  if (channels === 3 && grey > 0) actions.push(`${grey} converted from grey (repeated)`);
  if (cropped > 0) actions.push(`${cropped} centre-cropped`);
  if (resized > 0) actions.push(`${resized} resized`);
  const head = `${kinds} of ${sizeText} px as ${size}x${size} ${channels === 1 ? "grey" : "RGB"}`;
  return actions.length > 0 ? `${head}: ${actions.join(", ")}` : `${head}, unchanged`;
}
