/**
 * Image datasets for I-JEPA: loaders (IDX, CIFAR binary, image folders), the Fashion-MNIST
 * resolution order, channel statistics, subsets, and a resumable stream of augmented batches.
 *
 * Images are kept as bytes in NHWC order (`Uint8Array` `[N, H, W, C]`), labels as `Int32Array`.
 * Nothing here makes a tensor: {@link BatchStream} yields plain `Float32Array` batches and the
 * trainer turns each into a tensor, so memory stays at one copy of the bytes plus one batch.
 *
 * Fashion-MNIST is found in this order: an explicit directory, the `IJEPA_DATA` environment
 * variable, Debian's `/usr/share/datasets/fashion-mnist` (package `dataset-fashion-mnist`), and
 * last the class-balanced subset shipped in `data/fashion-mnist/` (10000 train / 2000 test).
 *
 * @example
 * ```ts
 * import { BatchStream, channelStats, loadFashionMnist, shippedFashionMnistDir } from "./data.ts";
 * import { Rng } from "../engine/rng.ts";
 * const { train, source } = await loadFashionMnist({ dir: shippedFashionMnistDir() });
 * console.log(source); // Fashion-MNIST, shipped subset (10000 train / 2000 test) from ...
 * const stream = new BatchStream(train, {
 *   batchSize: 64,
 *   rng: new Rng(0),
 *   augment: true,
 *   stats: channelStats(train),
 * });
 * const batch = stream.next(); // images: [64, 28, 28, 1] normalised, labels: [64]
 * if (batch.images.length !== 64 * 28 * 28) throw new Error("wrong batch size");
 * ```
 * @module
 */

import { gunzipSync } from "node:zlib";
import { Buffer } from "node:buffer";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PNG } from "pngjs";
import { decode as decodeJpegBytes } from "jpeg-js";
import { Rng } from "../engine/rng.ts";
import {
  type CropBox,
  normalize,
  randomResizedCrop,
  type RandomResizedCropOptions,
  resizeCrop,
} from "./augment.ts";

/** A labelled image set held in memory as bytes. */
export interface ImageDataset {
  /** Pixels 0..255, NHWC. [n, height, width, channels] */
  images: Uint8Array;
  /** Class index per image, `0 <= label < classNames.length`. [n] */
  labels: Int32Array;
  /** Number of images. */
  n: number;
  height: number;
  width: number;
  channels: number;
  /** Name of each class index. */
  classNames: string[];
  /** Where the images came from, in words (printed by the tasks). */
  source: string;
}

/** A train/test pair with a one-line description of where it came from. */
export interface DatasetSplits {
  train: ImageDataset;
  test: ImageDataset;
  /** e.g. "Fashion-MNIST, full set (60000 train / 10000 test) from /usr/share/datasets/fashion-mnist". */
  source: string;
  /** False only for the subset shipped in `data/fashion-mnist/`. */
  full: boolean;
}

/** A dataset file or folder that is missing, corrupt or of an unexpected layout. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}

/** Fashion-MNIST class names, index = label (from the dataset's README). */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** CIFAR-10 class names, used when `batches.meta.txt` is absent. */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/** Where Debian's `dataset-fashion-mnist` package installs the full set. */
export const SYSTEM_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** The directory of the Fashion-MNIST subset shipped with this toolkit (`data/fashion-mnist/`). */
export function shippedFashionMnistDir(): string {
  const url = new URL("../../data/fashion-mnist/", import.meta.url);
  if (url.protocol !== "file:") {
    throw new DataError(
      `shipped Fashion-MNIST: expected a local checkout (file: URL), got ${url.href}; pass a directory`,
    );
  }
  return fileURLToPath(url).replace(/\/$/, "");
}

// ---------------------------------------------------------------------------------------------
// Files: reading, gzip, IDX

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new DataError(`${path}: file not found`);
    throw e;
  }
}

/** Gunzip when the bytes start with the gzip magic 1f 8b; a `.gz` name without it is an error. */
function maybeGunzip(bytes: Uint8Array, file: string): Uint8Array {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    let out: Uint8Array;
    try {
      out = gunzipSync(bytes);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new DataError(
        `${file}: corrupt gzip data (${why}); the file is probably truncated, fetch it again`,
      );
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  if (file.endsWith(".gz")) {
    throw new DataError(
      `${file}: expected gzip data (magic 1f 8b) for a .gz file, got ${hex(bytes.subarray(0, 2))}`,
    );
  }
  return bytes;
}

function hex(b: Uint8Array): string {
  return b.length === 0 ? "no bytes" : Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}

const IDX_TYPES: Record<number, string> = {
  0x08: "unsigned byte",
  0x09: "signed byte",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
};

/** A parsed IDX file: its dimensions and its unsigned-byte payload. */
export interface IdxArray {
  dims: number[];
  /** Row-major payload. [...dims] */
  data: Uint8Array;
}

/**
 * Parse IDX bytes (the MNIST family's format: magic `00 00 08 NDIM`, NDIM big-endian uint32
 * sizes, then the bytes). Only unsigned-byte payloads are supported. `file` names the source in
 * errors.
 *
 * @example
 * ```ts
 * import { encodeIdx, parseIdx } from "./data.ts";
 * const bytes = encodeIdx(new Uint8Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * const { dims, data } = parseIdx(bytes, "demo.idx");
 * if (dims.join() !== "2,3" || data[5] !== 6) throw new Error("round trip failed");
 * ```
 */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4) {
    throw new DataError(`${file}: expected an IDX header of at least 4 bytes, got ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const type = bytes[2];
  const ndim = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || !(type in IDX_TYPES) || ndim === 0) {
    throw new DataError(
      `${file}: bad magic number 0x${magic.toString(16).padStart(8, "0")}: expected ` +
        `0x000008NN (IDX: two zero bytes, type 0x08, then the number of dimensions)`,
    );
  }
  if (type !== 0x08) {
    throw new DataError(
      `${file}: IDX element type 0x${type.toString(16)} (${
        IDX_TYPES[type]
      }) is not supported; expected 0x08 (unsigned byte)`,
    );
  }
  const header = 4 + 4 * ndim;
  if (bytes.length < header) {
    throw new DataError(
      `${file}: expected ${header} header bytes for ${ndim} dimensions, got ${bytes.length} (truncated)`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  const expected = header + size;
  if (bytes.length !== expected) {
    throw new DataError(
      `${file}: expected ${expected} bytes (${header} header + ${dims.join("x")}), got ${bytes.length}` +
        (bytes.length < expected ? " (truncated)" : " (trailing bytes)"),
    );
  }
  return { dims, data: bytes.subarray(header) };
}

/**
 * Encode bytes as an IDX file (unsigned-byte type), the inverse of {@link parseIdx}. Used by
 * `lib/cli/make_subset.ts` and the tests; gzip the result with `node:zlib` for `.gz` files.
 *
 * @example
 * ```ts
 * import { encodeIdx } from "./data.ts";
 * const idx = encodeIdx(new Uint8Array([3, 1, 4]), [3]);
 * if (idx.length !== 4 + 4 + 3 || idx[2] !== 8 || idx[3] !== 1) throw new Error("bad header");
 * ```
 */
export function encodeIdx(data: Uint8Array, dims: readonly number[]): Uint8Array {
  const size = dims.reduce((a, b) => a * b, 1);
  if (dims.length < 1 || dims.length > 255 || size !== data.length) {
    throw new RangeError(
      `encodeIdx: expected data of ${dims.join("x")} = ${size} bytes, got ${data.length}`,
    );
  }
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, header);
  return out;
}

/** Options of {@link loadIdx}. */
export interface IdxOptions {
  /** Class names, index = label; default "0", "1", ... up to the largest label. */
  classNames?: readonly string[];
  /** The dataset's `source` text; default "IDX <images file> (<n> images)". */
  source?: string;
}

function checkLabels(
  labels: Int32Array,
  numClasses: number,
  file: string,
): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y < 0 || y >= numClasses) {
      throw new DataError(
        `${file}: label ${y} at index ${i} is out of range: expected 0..${
          numClasses - 1
        } (${numClasses} classes)`,
      );
    }
  }
}

function defaultClassNames(labels: Int32Array): string[] {
  let max = -1;
  for (let i = 0; i < labels.length; i++) if (labels[i] > max) max = labels[i];
  return Array.from({ length: max + 1 }, (_, i) => String(i));
}

/**
 * Load an IDX image file (`[N, H, W]` or `[N, H, W, C]`) and its IDX label file (`[N]`), each gzip
 * or raw (detected from the bytes). Errors name the file and what was wrong: bad magic number,
 * truncated data, label count different from image count, label out of range.
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_CLASSES, loadIdx, shippedFashionMnistDir } from "./data.ts";
 * const dir = shippedFashionMnistDir();
 * const test = await loadIdx(
 *   `${dir}/t10k-images-idx3-ubyte.gz`,
 *   `${dir}/t10k-labels-idx1-ubyte.gz`,
 *   { classNames: FASHION_MNIST_CLASSES },
 * );
 * if (test.n !== 2000 || test.height !== 28 || test.channels !== 1) throw new Error("bad shape");
 * ```
 */
export async function loadIdx(
  imagesPath: string,
  labelsPath: string,
  opts: IdxOptions = {},
): Promise<ImageDataset> {
  const [imgBytes, labBytes] = await Promise.all([readBytes(imagesPath), readBytes(labelsPath)]);
  const img = parseIdx(maybeGunzip(imgBytes, imagesPath), imagesPath);
  const lab = parseIdx(maybeGunzip(labBytes, labelsPath), labelsPath);
  if (img.dims.length !== 3 && img.dims.length !== 4) {
    throw new DataError(
      `${imagesPath}: expected images of 3 dims [N, H, W] or 4 dims [N, H, W, C], got [${
        img.dims.join(", ")
      }]`,
    );
  }
  if (lab.dims.length !== 1) {
    throw new DataError(
      `${labelsPath}: expected labels of 1 dim [N], got [${lab.dims.join(", ")}]`,
    );
  }
  const [n, height, width] = img.dims;
  const channels = img.dims.length === 4 ? img.dims[3] : 1;
  if (lab.dims[0] !== n) {
    throw new DataError(
      `${labelsPath}: label count ${lab.dims[0]} != image count ${n} in ${imagesPath}`,
    );
  }
  const labels = Int32Array.from(lab.data);
  const classNames = opts.classNames ? [...opts.classNames] : defaultClassNames(labels);
  checkLabels(labels, classNames.length, labelsPath);
  return {
    images: img.data, // [n, height, width, channels]
    labels,
    n,
    height,
    width,
    channels,
    classNames,
    source: opts.source ?? `IDX ${imagesPath} (${n} images)`,
  };
}

// ---------------------------------------------------------------------------------------------
// CIFAR binary batches

/** Options of {@link loadCifar}. */
export interface CifarOptions {
  /** With a directory: which files to read; default "train". */
  split?: "train" | "test";
  /** CIFAR-10 (1 label byte per record) or CIFAR-100 (2); default from the file names. */
  variant?: 10 | 100;
  /** CIFAR-100 only: the 100 fine labels (default) or the 20 coarse ones. */
  labels?: "fine" | "coarse";
  /** Class names; default from the meta text file beside the data, else built-in or numbers. */
  classNames?: readonly string[];
}

const CIFAR_IMAGE_BYTES = 3072; // 3 x 32 x 32, channel-major (CHW)

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotCapable) return false;
    throw e;
  }
}

async function listDir(dir: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (!e.name.startsWith(".")) out.push(e);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new DataError(`${dir}: directory not found`);
    throw e;
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The CIFAR binary files of one split in `dir` (or its extracted sub-folder), if any. */
async function findCifarFiles(
  dir: string,
  split: "train" | "test",
): Promise<{ dir: string; files: string[]; variant: 10 | 100 } | undefined> {
  for (const sub of ["", "cifar-10-batches-bin", "cifar-100-binary"]) {
    const d = sub ? join(dir, sub) : dir;
    if (!(await isDir(d))) continue;
    const names = (await listDir(d)).filter((e) => e.isFile).map((e) => e.name);
    const c10 = split === "train"
      ? names.filter((n) => /^data_batch_\d+\.bin(\.gz)?$/.test(n))
      : names.filter((n) => /^test_batch\.bin(\.gz)?$/.test(n));
    if (c10.length) return { dir: d, files: c10.map((n) => join(d, n)), variant: 10 };
    const c100 = names.filter((n) => n === `${split}.bin` || n === `${split}.bin.gz`);
    if (c100.length) return { dir: d, files: [join(d, c100[0])], variant: 100 };
  }
  return undefined;
}

async function readNames(path: string): Promise<string[] | undefined> {
  try {
    const text = await Deno.readTextFile(path);
    return text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * Load CIFAR-10 or CIFAR-100 binary batches: records of label byte(s) then 3072 bytes of a 32x32
 * RGB image stored channel-major (CHW), turned here into NHWC. Pass the files, or a directory
 * (the extracted `cifar-10-batches-bin` / `cifar-100-binary`, or its parent) with `split`.
 *
 * @example
 * ```ts
 * import { loadCifar } from "./data.ts";
 * const file = await Deno.makeTempFile({ suffix: ".bin" });
 * const rec = new Uint8Array(2 * 3073);
 * rec[0] = 3; // label of record 0; its red plane follows
 * rec[3073] = 9; // label of record 1
 * rec[3073 + 1 + 1024] = 200; // record 1, green channel, pixel (0, 0)
 * await Deno.writeFile(file, rec);
 * const ds = await loadCifar([file], { variant: 10 });
 * if (ds.n !== 2 || ds.labels.join() !== "3,9") throw new Error("bad labels");
 * if (ds.images[32 * 32 * 3 + 1] !== 200) throw new Error("CHW -> HWC failed");
 * await Deno.remove(file);
 * ```
 */
export async function loadCifar(
  paths: string[] | string,
  opts: CifarOptions = {},
): Promise<ImageDataset> {
  let files: string[];
  let variant = opts.variant;
  let metaDir: string | undefined;
  if (typeof paths === "string") {
    if (!(await isDir(paths))) {
      files = [paths];
    } else {
      const split = opts.split ?? "train";
      const found = await findCifarFiles(paths, split);
      if (!found) {
        throw new DataError(
          `${paths}: no CIFAR ${split} files: expected ${
            split === "train"
              ? "data_batch_N.bin (CIFAR-10) or train.bin"
              : "test_batch.bin (CIFAR-10) or test.bin"
          } (CIFAR-100)`,
        );
      }
      files = found.files;
      variant ??= found.variant;
      metaDir = found.dir;
    }
  } else {
    files = paths;
  }
  if (files.length === 0) throw new DataError("loadCifar: expected at least one file, got none");
  const raws: Uint8Array[] = [];
  for (const f of files) raws.push(maybeGunzip(await readBytes(f), f));
  if (variant === undefined) {
    const byName = files.every((f) => /(data|test)_batch/.test(basename(f)))
      ? 10
      : files.every((f) => /^(train|test)\.bin/.test(basename(f)))
      ? 100
      : undefined;
    const fits10 = raws.every((r) => r.length % (1 + CIFAR_IMAGE_BYTES) === 0);
    const fits100 = raws.every((r) => r.length % (2 + CIFAR_IMAGE_BYTES) === 0);
    variant = byName ?? (fits10 && !fits100 ? 10 : fits100 && !fits10 ? 100 : undefined);
    if (variant === undefined) {
      throw new DataError(
        `${files[0]}: cannot tell CIFAR-10 from CIFAR-100 by name or length; pass { variant: 10 | 100 }`,
      );
    }
  }
  const labelBytes = variant === 10 ? 1 : 2;
  const fine = opts.labels !== "coarse";
  const labelAt = variant === 10 ? 0 : fine ? 1 : 0;
  const record = labelBytes + CIFAR_IMAGE_BYTES;
  let n = 0;
  raws.forEach((r, i) => {
    if (r.length === 0 || r.length % record !== 0) {
      throw new DataError(
        `${
          files[i]
        }: bad CIFAR-${variant} file length ${r.length}: expected a positive multiple of ${record} bytes ` +
          `(${labelBytes} label byte${labelBytes > 1 ? "s" : ""} + 3072 image bytes per record)`,
      );
    }
    n += r.length / record;
  });
  let classNames = opts.classNames ? [...opts.classNames] : undefined;
  if (!classNames && metaDir) {
    classNames = variant === 10
      ? await readNames(join(metaDir, "batches.meta.txt"))
      : await readNames(join(metaDir, fine ? "fine_label_names.txt" : "coarse_label_names.txt"));
  }
  const numClasses = variant === 10 ? 10 : fine ? 100 : 20;
  classNames ??= variant === 10
    ? [...CIFAR10_CLASSES]
    : Array.from({ length: numClasses }, (_, i) => String(i));
  const images = new Uint8Array(n * CIFAR_IMAGE_BYTES); // [n, 32, 32, 3]
  const labels = new Int32Array(n);
  let k = 0;
  raws.forEach((r, fi) => {
    const first = k;
    for (let o = 0; o < r.length; o += record, k++) {
      labels[k] = r[o + labelAt];
      const base = k * CIFAR_IMAGE_BYTES;
      for (let ch = 0; ch < 3; ch++) {
        const plane = o + labelBytes + ch * 1024; // [32, 32] of one channel
        for (let p = 0; p < 1024; p++) images[base + p * 3 + ch] = r[plane + p];
      }
    }
    checkLabels(labels.subarray(first, k), classNames!.length, files[fi]);
  });
  return {
    images,
    labels,
    n,
    height: 32,
    width: 32,
    channels: 3,
    classNames,
    source: `CIFAR-${variant} ${
      files.length === 1 ? files[0] : `${files.length} files in ${metaDir ?? "(list)"}`
    } (${n} images)`,
  };
}

// ---------------------------------------------------------------------------------------------
// A folder of PNG / JPEG images, one sub-folder per class

/** Options of {@link loadImageFolder} and {@link loadImageFiles}. */
export interface ImageFolderOptions {
  /**
   * Output side in pixels: each image is centre-cropped to a square and resized to size x size
   * (pass the model's `imageSize`). Default: from the data, the median of the images' shorter sides.
   */
  size?: number;
  /**
   * 1 = grey (colour images converted by ITU-R 601 luma, as PIL's "L"), 3 = RGB (grey images
   * repeated into the three channels); alpha is dropped. Pass the model's `channels`. Default: from
   * the data, 1 when every image is grey (R = G = B in every pixel, whatever the file's colour
   * type), else 3.
   */
  channels?: 1 | 3;
}

interface PngSync {
  sync: { read(buf: Uint8Array): { width: number; height: number; data: Uint8Array } };
}

const IMAGE_EXT = /\.(png|jpe?g)$/i;

interface DecodedImage {
  width: number;
  height: number;
  /** [height, width, 4] */
  rgba: Uint8Array;
}

/** Decode PNG or JPEG bytes (detected from the magic bytes) to RGBA. */
function decodeImage(bytes: Uint8Array, file: string): DecodedImage {
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
function convertInto(img: DecodedImage, size: number, channels: 1 | 3, dst: Uint8Array): void {
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
interface SeenImages {
  n: number;
  /** Images with R = G = B in every pixel. */
  grey: number;
  /** "WxH" (width x height, as image sizes are usually written) -> count. */
  sizes: Map<string, { width: number; height: number; count: number }>;
}

function noteImage(seen: SeenImages, img: DecodedImage): void {
  seen.n++;
  if (isGrey(img.rgba)) seen.grey++;
  const key = `${img.width}x${img.height}`;
  const s = seen.sizes.get(key);
  if (s) s.count++;
  else seen.sizes.set(key, { width: img.width, height: img.height, count: 1 });
}

function checkFolderOptions(who: string, size: number | undefined, channels: number | undefined): void {
  if (size !== undefined && (!Number.isInteger(size) || size < 1)) {
    throw new RangeError(`${who}: expected a positive integer size, got ${size}`);
  }
  if (channels !== undefined && channels !== 1 && channels !== 3) {
    throw new RangeError(`${who}: expected channels 1 or 3, got ${channels}`);
  }
}

/**
 * Decode `files` and convert each to size x size x channels. A size or channel count left out is
 * taken from the data (a first pass over the files): the median shorter side; grey when every
 * image is grey.
 */
async function readImages(
  files: string[],
  opts: ImageFolderOptions,
): Promise<{ images: Uint8Array; size: number; channels: 1 | 3; seen: SeenImages }> {
  const seen: SeenImages = { n: 0, grey: 0, sizes: new Map() };
  let { size, channels } = opts;
  const scanned = size === undefined || channels === undefined;
  if (scanned) {
    for (const f of files) noteImage(seen, decodeImage(await readBytes(f), f));
    const sides: number[] = [];
    for (const s of seen.sizes.values()) {
      for (let i = 0; i < s.count; i++) sides.push(Math.min(s.width, s.height));
    }
    sides.sort((a, b) => a - b);
    size ??= sides[Math.floor((sides.length - 1) / 2)];
    channels ??= seen.grey === seen.n ? 1 : 3;
  }
  const S = size!, C = channels!;
  const pix = S * S * C;
  const images = new Uint8Array(files.length * pix); // [n, S, S, C]
  for (let k = 0; k < files.length; k++) {
    const img = decodeImage(await readBytes(files[k]), files[k]);
    if (!scanned) noteImage(seen, img);
    convertInto(img, S, C, images.subarray(k * pix, (k + 1) * pix));
  }
  return { images, size: S, channels: C, seen };
}

function listAnd(items: string[]): string {
  return items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/**
 * One phrase for the `source` text: what the files were and what was done to them, e.g.
 * "50 images (30 grey, 20 RGB) of 31x45, 20x20 and 40x33 px as 28x28 grey: 20 converted from RGB
 * (luma), 35 centre-cropped, 50 resized".
 */
function describeImages(seen: SeenImages, size: number, channels: 1 | 3): string {
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

/**
 * Every PNG/JPEG under `dir` (sub-folders included, sorted by path), centre-cropped and resized
 * like {@link loadImageFolder}, with the file names: for embedding a folder that has no classes.
 * Labels are 0. `source` says what the files were and how they were converted.
 */
export async function loadImageFiles(
  dir: string,
  opts: ImageFolderOptions = {},
): Promise<{ dataset: ImageDataset; files: string[] }> {
  checkFolderOptions("loadImageFiles", opts.size, opts.channels);
  const files: string[] = [];
  const walk = async (d: string) => {
    for (const e of await listDir(d)) {
      if (e.isDirectory) await walk(join(d, e.name));
      else if (e.isFile && IMAGE_EXT.test(e.name)) files.push(join(d, e.name));
    }
  };
  await walk(dir);
  files.sort();
  if (files.length === 0) {
    throw new DataError(`${dir}: no .png/.jpg/.jpeg images found (sub-folders included)`);
  }
  const { images, size, channels, seen } = await readImages(files, opts);
  return {
    dataset: {
      images,
      labels: new Int32Array(files.length),
      n: files.length,
      height: size,
      width: size,
      channels,
      classNames: ["(none)"],
      source: `image files under ${dir}: ${describeImages(seen, size, channels)}`,
    },
    files,
  };
}

/** The class sub-folders of `dir` (sorted) and their image files, with a label per file. */
async function listClassFiles(
  dir: string,
): Promise<{ classNames: string[]; files: string[]; labels: Int32Array }> {
  const classNames = (await listDir(dir)).filter((e) => e.isDirectory).map((e) => e.name);
  if (classNames.length === 0) {
    throw new DataError(
      `${dir}: empty folder: expected one sub-folder of images per class, found none`,
    );
  }
  const files: string[] = [];
  const labels: number[] = [];
  for (let c = 0; c < classNames.length; c++) {
    const cls = classNames[c];
    const found = (await listDir(join(dir, cls)))
      .filter((e) => e.isFile && IMAGE_EXT.test(e.name))
      .map((e) => join(dir, cls, e.name));
    if (found.length === 0) {
      throw new DataError(
        `${join(dir, cls)}: empty folder: expected .png/.jpg/.jpeg images of class "${cls}", found none`,
      );
    }
    for (const f of found) {
      files.push(f);
      labels.push(c);
    }
  }
  return { classNames, files, labels: Int32Array.from(labels) };
}

/** A class folder (or several, read as one so they share size and channels) as datasets. */
async function readClassFolders(
  dirs: string[],
  opts: ImageFolderOptions,
): Promise<{ datasets: ImageDataset[]; description: string }> {
  checkFolderOptions("loadImageFolder", opts.size, opts.channels);
  const lists = [];
  for (const d of dirs) lists.push(await listClassFiles(d));
  const { images, size, channels, seen } = await readImages(lists.flatMap((l) => l.files), opts);
  const pix = size * size * channels;
  let start = 0;
  const datasets = lists.map((l, i): ImageDataset => {
    const n = l.files.length;
    const ds = {
      images: images.subarray(start * pix, (start + n) * pix), // [n, size, size, channels]
      labels: l.labels,
      n,
      height: size,
      width: size,
      channels,
      classNames: l.classNames,
      source: `image folder ${
        dirs[i]
      } (${n} images, ${l.classNames.length} classes, ${size}x${size}x${channels})`,
    };
    start += n;
    return ds;
  });
  return { datasets, description: describeImages(seen, size, channels) };
}

/**
 * Load a folder with one sub-folder per class (`dir/<class>/*.png|jpg|jpeg`, class names sorted
 * as torchvision's `ImageFolder` does). Each image is centre-cropped to a square, resized to
 * `size` x `size` with the antialiased bilinear filter of `lib/data/augment.ts`, and kept as grey or RGB
 * bytes: pass the model's `imageSize` and `channels` (see {@link ImageFolderOptions} for the
 * defaults taken from the data). `source` says what the files were and what was done to them.
 * Hidden files and other extensions are skipped; an empty folder or class is an error.
 *
 * @example
 * ```ts
 * import { PNG } from "pngjs";
 * import { loadImageFolder } from "./data.ts";
 * const dir = await Deno.makeTempDir();
 * for (const cls of ["cats", "dogs"]) {
 *   await Deno.mkdir(`${dir}/${cls}`);
 *   const png = new PNG({ width: 4, height: 6 });
 *   png.data.fill(cls === "cats" ? 0 : 255);
 *   await Deno.writeFile(`${dir}/${cls}/a.png`, PNG.sync.write(png));
 * }
 * const ds = await loadImageFolder(dir, { size: 8, channels: 1 });
 * if (ds.n !== 2 || ds.classNames.join() !== "cats,dogs" || ds.images.length !== 2 * 64) {
 *   throw new Error("bad folder load");
 * }
 * if (!ds.source.endsWith("2 grey images of 4x6 px as 8x8 grey: 2 centre-cropped, 2 resized")) {
 *   throw new Error(ds.source);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadImageFolder(
  dir: string,
  opts: ImageFolderOptions = {},
): Promise<ImageDataset> {
  const { datasets: [ds], description } = await readClassFolders([dir], opts);
  return {
    ...ds,
    source: `image folder ${dir} (${ds.n} images, ${ds.classNames.length} classes): ${description}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Fashion-MNIST and the generic entry point

/** Options of {@link loadFashionMnist}. */
export interface FashionMnistOptions {
  /** A directory with the four IDX files; wins over `IJEPA_DATA` and the installed set. */
  dir?: string;
}

function envDataDir(): string | undefined {
  // Read IJEPA_DATA only when env access is already granted, so no permission prompt appears.
  const p = Deno.permissions.querySync({ name: "env", variable: "IJEPA_DATA" });
  if (p.state !== "granted") return undefined;
  const v = Deno.env.get("IJEPA_DATA");
  return v && v.trim() !== "" ? v : undefined;
}

/** Whether the Debian full set is there; looks only when read access is already granted. */
async function systemSetPresent(): Promise<boolean> {
  const p = Deno.permissions.querySync({ name: "read", path: SYSTEM_FASHION_MNIST_DIR });
  if (p.state !== "granted") return false;
  return (await findIdxPair(SYSTEM_FASHION_MNIST_DIR, "train").catch(() => undefined)) !==
    undefined;
}

/** The train or test IDX pair in `dir` (gz or raw), e.g. train-images-idx3-ubyte.gz. */
async function findIdxPair(
  dir: string,
  split: "train" | "test",
): Promise<{ images: string; labels: string } | undefined> {
  const names = (await listDir(dir)).filter((e) => e.isFile).map((e) => e.name);
  const prefix = split === "train" ? /^train/i : /^(t10k|test)/i;
  const images = names.find((n) => prefix.test(n) && /images/i.test(n) && /idx3/i.test(n));
  const labels = names.find((n) => prefix.test(n) && /labels/i.test(n) && /idx1/i.test(n));
  return images && labels ? { images: join(dir, images), labels: join(dir, labels) } : undefined;
}

/**
 * Load Fashion-MNIST train and test sets from, in order: `opts.dir`, `IJEPA_DATA` (read only when
 * env access is granted), `/usr/share/datasets/fashion-mnist`, the shipped subset. `source` says
 * which, and `full` is false only for the shipped subset.
 *
 * @example
 * ```ts
 * import { loadFashionMnist, shippedFashionMnistDir } from "./data.ts";
 * const fm = await loadFashionMnist({ dir: shippedFashionMnistDir() });
 * if (fm.full || fm.train.n !== 10000 || fm.test.n !== 2000) throw new Error(fm.source);
 * if (fm.train.classNames[9] !== "Ankle boot") throw new Error("class names");
 * ```
 */
export async function loadFashionMnist(opts: FashionMnistOptions = {}): Promise<DatasetSplits> {
  let dir: string;
  let via: string;
  const env = opts.dir === undefined ? envDataDir() : undefined;
  if (opts.dir !== undefined) {
    dir = opts.dir;
    via = "";
  } else if (env !== undefined) {
    dir = env;
    via = " (IJEPA_DATA)";
  } else if (await systemSetPresent()) {
    dir = SYSTEM_FASHION_MNIST_DIR;
    via = "";
  } else {
    dir = shippedFashionMnistDir();
    via = "";
  }
  const shipped = resolve(dir) === shippedFashionMnistDir();
  const [trainFiles, testFiles] = [await findIdxPair(dir, "train"), await findIdxPair(dir, "test")];
  if (!trainFiles || !testFiles) {
    throw new DataError(
      `${dir}${via}: expected Fashion-MNIST IDX files train-images-idx3-ubyte[.gz], ` +
        `train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]; missing the ${
          trainFiles ? "t10k (test)" : "train"
        } pair`,
    );
  }
  const kind = shipped ? "shipped subset" : "full set";
  const [train, test] = await Promise.all([
    loadIdx(trainFiles.images, trainFiles.labels, {
      classNames: FASHION_MNIST_CLASSES,
      source: `Fashion-MNIST train, ${kind} from ${dir}`,
    }),
    loadIdx(testFiles.images, testFiles.labels, {
      classNames: FASHION_MNIST_CLASSES,
      source: `Fashion-MNIST test, ${kind} from ${dir}`,
    }),
  ]);
  return {
    train,
    test,
    source: `Fashion-MNIST, ${kind} (${train.n} train / ${test.n} test) from ${dir}${via}`,
    full: !shipped,
  };
}

/**
 * Options of {@link loadDataset}. Pass the model's `imageSize` and `channels` (as the tasks do) so
 * the data comes in the way the model reads it, and `source` says what was converted.
 */
export interface LoadDatasetOptions {
  /**
   * The model's image side. Image folders are centre-cropped and resized to it on loading (default:
   * the median shorter side of the images). IDX and CIFAR keep their stored size (the trainer and
   * the feature extractor resize each batch to the model's, from the full resolution); `source`
   * notes it when the sizes differ.
   */
  imageSize?: number;
  /**
   * The model's channels, 1 = grey, 3 = RGB: images are converted to it (colour to grey by ITU-R
   * 601 luma, grey to RGB by repetition), in every format. Default: image folders grey when every
   * image is grey, else RGB; IDX and CIFAR as stored.
   */
  channels?: 1 | 3;
  /** Fraction held out as the test set when a folder has no test split (default 0.2). */
  testFraction?: number;
  /** Seed of that hold-out draw (default 0). */
  seed?: number;
}

function channelName(c: number): string {
  return c === 1 ? "grey" : c === 3 ? "RGB" : `${c}-channel`;
}

/** A copy of `ds` with grey repeated into RGB, or RGB turned into grey by ITU-R 601 luma. */
function convertChannels(ds: ImageDataset, channels: 1 | 3): ImageDataset {
  const C = ds.channels;
  const px = ds.n * ds.height * ds.width;
  const src = ds.images;
  const images = new Uint8Array(px * channels); // [n, H, W, channels]
  if (C === 1 && channels === 3) {
    for (let p = 0; p < px; p++) images[3 * p] = images[3 * p + 1] = images[3 * p + 2] = src[p];
  } else if (C === 3 && channels === 1) {
    for (let p = 0; p < px; p++) {
      images[p] = Math.round((src[3 * p] * 299 + src[3 * p + 1] * 587 + src[3 * p + 2] * 114) / 1000);
    }
  } else {
    throw new DataError(`${ds.source}: cannot convert ${C} channels to ${channels}`);
  }
  return { ...ds, images, channels, source: `${ds.source}, as ${channelName(channels)}` };
}

/**
 * IDX, CIFAR and Fashion-MNIST come at their stored shape: convert the channels to the model's
 * when they differ (grey <-> RGB only; anything else is an error naming both), and say in `source`
 * what was converted and that the size differs from the model's (batches are resized to it later).
 */
function fitStored(d: DatasetSplits, opts: LoadDatasetOptions): DatasetSplits {
  const { height: H, width: W, channels: C } = d.train;
  const want = opts.channels;
  const S = opts.imageSize;
  if (want !== undefined && want !== 1 && want !== 3) {
    throw new RangeError(`loadDataset: expected channels 1 or 3, got ${want}`);
  }
  if (S !== undefined && (!Number.isInteger(S) || S < 1)) {
    throw new RangeError(`loadDataset: expected a positive integer imageSize, got ${S}`);
  }
  const notes: string[] = [];
  let { train, test } = d;
  if (want !== undefined && want !== C) {
    if (C !== 1 && C !== 3) {
      throw new DataError(
        `${d.source}: the images have ${C} channels and the model expects ${want}; ` +
          `only grey (1) and RGB (3) convert into each other`,
      );
    }
    train = convertChannels(train, want);
    test = convertChannels(test, want);
    notes.push(want === 1 ? "converted to grey (luma)" : "converted to RGB (grey repeated)");
  }
  if (S !== undefined && (H !== S || W !== S)) {
    notes.push(`resized to the model's ${S}x${S} batch by batch`);
  }
  if (notes.length === 0) return d;
  return { ...d, train, test, source: `${d.source}: ${H}x${W} ${channelName(C)}, ${notes.join(", ")}` };
}

/**
 * Hold out `fraction` of each class as a test set (stratified, seeded), for data that comes
 * without a test split.
 *
 * @example
 * ```ts
 * import { loadFashionMnist, splitHoldout, shippedFashionMnistDir } from "./data.ts";
 * const { test } = await loadFashionMnist({ dir: shippedFashionMnistDir() });
 * const parts = splitHoldout(test, 0.25, 0);
 * if (parts.test.n !== 500 || parts.train.n !== 1500) throw new Error("bad split");
 * ```
 */
export function splitHoldout(
  ds: ImageDataset,
  fraction: number,
  seed = 0,
): { train: ImageDataset; test: ImageDataset } {
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(`splitHoldout: expected 0 < fraction < 1, got ${fraction}`);
  }
  const rng = new Rng(seed);
  const byClass: number[][] = ds.classNames.map(() => []);
  for (let i = 0; i < ds.n; i++) byClass[ds.labels[i]].push(i);
  const trainIdx: number[] = [];
  const testIdx: number[] = [];
  for (const idx of byClass) {
    rng.shuffle(idx);
    const k = Math.min(Math.round(idx.length * fraction), idx.length - 1);
    for (let i = 0; i < idx.length; i++) (i < k ? testIdx : trainIdx).push(idx[i]);
  }
  trainIdx.sort((a, b) => a - b);
  testIdx.sort((a, b) => a - b);
  const pct = Math.round(fraction * 100);
  return {
    train: {
      ...subset(ds, trainIdx),
      source: `${ds.source}, ${100 - pct}% train split (seed ${seed})`,
    },
    test: {
      ...subset(ds, testIdx),
      source: `${ds.source}, ${pct}% held-out test split (seed ${seed})`,
    },
  };
}

/**
 * Load a dataset by spec: `undefined` (then `IJEPA_DATA` if set, else Fashion-MNIST as in
 * {@link loadFashionMnist}), `"fashion-mnist"`, `"fashion-mnist-subset"` (always the shipped
 * subset), or a directory whose layout is detected: IDX files (MNIST family), CIFAR-10/100 binary
 * batches, or an image folder (with `train/` and `test/` or `val/` sub-folders, or one folder of
 * classes split by {@link splitHoldout}).
 *
 * For a model, pass its shape: `loadDataset(spec, { imageSize: cfg.imageSize, channels:
 * cfg.channels })`. Image folders then come in at that size and channels, IDX and CIFAR with
 * those channels, and `source` (one line) says what the images were and what was converted.
 *
 * @example
 * ```ts
 * import { loadDataset } from "./data.ts";
 * const d = await loadDataset("fashion-mnist-subset");
 * if (d.full || d.train.n !== 10000) throw new Error(d.source);
 * const rgb = await loadDataset("fashion-mnist-subset", { imageSize: 16, channels: 3 });
 * if (rgb.train.channels !== 3 || !rgb.source.endsWith("28x28 grey, converted to RGB (grey repeated), " +
 *   "resized to the model's 16x16 batch by batch")) throw new Error(rgb.source);
 * ```
 */
export async function loadDataset(
  spec?: string,
  opts: LoadDatasetOptions = {},
): Promise<DatasetSplits> {
  if (spec === undefined) {
    const env = envDataDir();
    return env === undefined ? fitStored(await loadFashionMnist(), opts) : loadDataset(env, opts);
  }
  if (spec === "fashion-mnist") return fitStored(await loadFashionMnist(), opts);
  if (spec === "fashion-mnist-subset") {
    return fitStored(await loadFashionMnist({ dir: shippedFashionMnistDir() }), opts);
  }
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(spec);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DataError(
        `${spec}: not found: expected a dataset directory, "fashion-mnist" or "fashion-mnist-subset"`,
      );
    }
    throw e;
  }
  if (!st.isDirectory) {
    throw new DataError(
      `${spec}: expected a dataset directory (IDX files, CIFAR binary batches or an image folder), got a file`,
    );
  }
  const dir = spec;
  const fraction = opts.testFraction ?? 0.2;
  const seed = opts.seed ?? 0;
  // IDX (MNIST family)
  const idxTrain = await findIdxPair(dir, "train");
  if (idxTrain) {
    if (/fashion/i.test(resolve(dir))) return fitStored(await loadFashionMnist({ dir }), opts);
    const classNames = await readNames(join(dir, "classes.txt"));
    const train = await loadIdx(idxTrain.images, idxTrain.labels, { classNames });
    const idxTest = await findIdxPair(dir, "test");
    const split = idxTest
      ? {
        train,
        test: await loadIdx(idxTest.images, idxTest.labels, { classNames: train.classNames }),
      }
      : splitHoldout(train, fraction, seed);
    return fitStored({
      ...split,
      source:
        `IDX ${train.height}x${train.width}x${train.channels} (${split.train.n} train / ${split.test.n} test${
          idxTest ? "" : `, test held out with seed ${seed}`
        }) from ${dir}`,
      full: true,
    }, opts);
  }
  // CIFAR binary
  const cifarTrain = await findCifarFiles(dir, "train");
  if (cifarTrain) {
    const train = await loadCifar(dir, { split: "train" });
    const hasTest = await findCifarFiles(dir, "test");
    const split = hasTest
      ? { train, test: await loadCifar(dir, { split: "test" }) }
      : splitHoldout(train, fraction, seed);
    return fitStored({
      ...split,
      source: `CIFAR-${cifarTrain.variant} (${split.train.n} train / ${split.test.n} test) from ${dir}`,
      full: true,
    }, opts);
  }
  // Image folder: every image converted to the model's size and channels as it is read
  const folderOpts: ImageFolderOptions = { size: opts.imageSize, channels: opts.channels };
  const subdirs = (await listDir(dir)).filter((e) => e.isDirectory).map((e) => e.name);
  const testName = subdirs.find((s) => s === "test") ?? subdirs.find((s) => s === "val");
  if (subdirs.includes("train") && testName) {
    const { datasets: [train, test], description } = await readClassFolders(
      [join(dir, "train"), join(dir, testName)],
      folderOpts,
    );
    if (test.classNames.join("\n") !== train.classNames.join("\n")) {
      throw new DataError(
        `${join(dir, testName)}: expected the same class folders as train/ (${
          train.classNames.join(", ")
        }), got ${test.classNames.join(", ")}`,
      );
    }
    return {
      train,
      test,
      source: `image folder (${train.n} train / ${test.n} test) from ${dir}: ${description}`,
      full: true,
    };
  }
  if (subdirs.length === 0) {
    throw new DataError(
      `${dir}: expected IDX files (train-images-idx3-ubyte[.gz] ...), CIFAR binary batches ` +
        `(data_batch_N.bin / train.bin) or one sub-folder of images per class; found none of these`,
    );
  }
  const { datasets: [all], description } = await readClassFolders([dir], folderOpts);
  const split = splitHoldout(all, fraction, seed);
  return {
    ...split,
    source: `image folder (${split.train.n} train / ${split.test.n} test held out with seed ${seed}) ` +
      `from ${dir}: ${description}`,
    full: true,
  };
}

// ---------------------------------------------------------------------------------------------
// Statistics and subsets

/**
 * Per-channel mean and standard deviation of the pixels, in 0..1 units (pixel / 255), as
 * torchvision's `Normalize` expects. Compute it on the training set and reuse it for test data.
 *
 * @example
 * ```ts
 * import { channelStats, loadFashionMnist, shippedFashionMnistDir } from "./data.ts";
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
 * import { loadFashionMnist, subset, shippedFashionMnistDir } from "./data.ts";
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

// ---------------------------------------------------------------------------------------------
// Batches

/** One batch of normalised images. */
export interface Batch {
  /** Normalised pixels. [B, H, W, C] */
  images: Float32Array;
  /** [B] */
  labels: Int32Array;
  /** Dataset index of each image. [B] */
  indices: Int32Array;
  /** `[B, H, W, C]` of `images`. */
  shape: [number, number, number, number];
  /** Epoch this batch belongs to (0-based). */
  epoch: number;
  /** True when this is the epoch's last batch. */
  lastInEpoch: boolean;
}

/** Options of {@link BatchStream}; the ones that shape the batches are saved in its state. */
export interface BatchOptions {
  /** Images per batch. */
  batchSize: number;
  /** Source of the shuffle and augmentation streams (two forks are taken); default `new Rng(0)`. */
  rng?: Rng;
  /** Reshuffle every epoch (default true); false keeps dataset order, e.g. for evaluation. */
  shuffle?: boolean;
  /** Drop the last incomplete batch of each epoch (default true); false yields it smaller. */
  dropLast?: boolean;
  /** RandomResizedCrop per image: true for the official I-JEPA settings, or options; default off. */
  augment?: boolean | Pick<RandomResizedCropOptions, "scale" | "ratio">;
  /** Output side (square) in pixels; default the dataset's size. */
  size?: number;
  /** Normalisation stats in 0..1 units; default {@link channelStats} of this dataset. */
  stats?: { mean: readonly number[]; std: readonly number[] };
}

/** Everything needed to resume a {@link BatchStream} where it stood (JSON-serialisable). */
export interface BatchStreamState {
  epoch: number;
  /** Next position in the epoch's order. */
  position: number;
  /** Shuffle generator state at the start of this epoch (the order is redrawn from it). */
  shuffleRng: number[];
  /** Augmentation generator state now. */
  augmentRng: number[];
  /** Checked on resume: the dataset size and the options that shape batches. */
  n: number;
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
}

/**
 * An endless stream of batches, epoch after epoch, with a state that can be saved and restored:
 * `BatchStream.fromState(ds, opts, s.state())` yields exactly what `s` would have yielded next.
 * Iterable (`for (const b of stream)` never ends by itself; stop on `b.lastInEpoch` or a step
 * count). Each batch is a new `Float32Array`, safe to hand to `tf.tensor` without copying.
 *
 * @example
 * ```ts
 * import { BatchStream, loadFashionMnist, shippedFashionMnistDir } from "./data.ts";
 * import { Rng } from "../engine/rng.ts";
 * const { test } = await loadFashionMnist({ dir: shippedFashionMnistDir() });
 * const opts = { batchSize: 32, augment: true };
 * const a = new BatchStream(test, { ...opts, rng: new Rng(1) });
 * a.next();
 * const saved = JSON.parse(JSON.stringify(a.state()));
 * const want = a.next();
 * const b = BatchStream.fromState(test, opts, saved);
 * if (b.next().images.join() !== want.images.join()) throw new Error("resume differs");
 * ```
 */
export class BatchStream implements Iterable<Batch> {
  readonly ds: ImageDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  /** Output height and width of every batch image. */
  readonly size: [number, number];
  readonly mean: readonly number[];
  readonly std: readonly number[];
  #augment: Pick<RandomResizedCropOptions, "scale" | "ratio"> | undefined;
  #shuffleRng: Rng;
  #augRng: Rng;
  #epochStart: number[] = [];
  #order: Int32Array;
  #epoch = 0;
  #position = 0;

  constructor(ds: ImageDataset, opts: BatchOptions) {
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`BatchStream: expected a positive integer batchSize, got ${batchSize}`);
    }
    this.ds = ds;
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? true;
    if (ds.n === 0) {
      throw new DataError(`BatchStream: expected a non-empty dataset, got ${ds.source}`);
    }
    if (this.dropLast && batchSize > ds.n) {
      throw new RangeError(
        `BatchStream: batchSize ${batchSize} exceeds the dataset size ${ds.n} with dropLast (no batch would be full)`,
      );
    }
    const side = opts.size;
    if (side !== undefined && (!Number.isInteger(side) || side < 1)) {
      throw new RangeError(`BatchStream: expected a positive integer size, got ${side}`);
    }
    this.size = side === undefined ? [ds.height, ds.width] : [side, side];
    // Departure: the official code normalises with ImageNet's mean/std; we default to this
    // dataset's own (ImageNet's colour stats do not fit grey Fashion-MNIST).
    const stats = opts.stats ?? channelStats(ds);
    if (stats.mean.length !== ds.channels || stats.std.length !== ds.channels) {
      throw new RangeError(
        `BatchStream: expected ${ds.channels} stats values per channel, got mean ${stats.mean.length}, std ${stats.std.length}`,
      );
    }
    this.mean = [...stats.mean];
    this.std = [...stats.std];
    this.#augment = opts.augment === true ? {} : opts.augment || undefined;
    const rng = opts.rng ?? new Rng(0);
    this.#shuffleRng = rng.fork();
    this.#augRng = rng.fork();
    this.#order = new Int32Array(ds.n);
    this.#startEpoch();
  }

  /** Resume from {@link BatchStream.state}; `ds` and `opts` must match the saved stream's. */
  static fromState(
    ds: ImageDataset,
    opts: Omit<BatchOptions, "rng">,
    state: BatchStreamState,
  ): BatchStream {
    const s = new BatchStream(ds, opts);
    const checks: [string, unknown, unknown][] = [
      ["dataset size", state.n, ds.n],
      ["batchSize", state.batchSize, s.batchSize],
      ["shuffle", state.shuffle, s.shuffle],
      ["dropLast", state.dropLast, s.dropLast],
    ];
    for (const [what, saved, now] of checks) {
      if (saved !== now) {
        throw new RangeError(
          `BatchStream.fromState: state was saved with ${what} ${saved}, got ${now}`,
        );
      }
    }
    if (!Number.isInteger(state.position) || state.position < 0 || state.position > ds.n) {
      throw new RangeError(
        `BatchStream.fromState: expected position in 0..${ds.n}, got ${state.position}`,
      );
    }
    s.#shuffleRng = Rng.fromState(state.shuffleRng);
    s.#augRng = Rng.fromState(state.augmentRng);
    s.#startEpoch();
    s.#epoch = state.epoch;
    s.#position = state.position;
    return s;
  }

  /** The state to save in a checkpoint. */
  state(): BatchStreamState {
    return {
      epoch: this.#epoch,
      position: this.#position,
      shuffleRng: [...this.#epochStart],
      augmentRng: this.#augRng.state(),
      n: this.ds.n,
      batchSize: this.batchSize,
      shuffle: this.shuffle,
      dropLast: this.dropLast,
    };
  }

  /** Batches per epoch. */
  get stepsPerEpoch(): number {
    return this.dropLast ? Math.floor(this.ds.n / this.batchSize) : Math.ceil(this.ds.n / this.batchSize);
  }

  /** The current epoch (0-based). */
  get epoch(): number {
    return this.#epoch;
  }

  #startEpoch(): void {
    this.#epochStart = this.#shuffleRng.state();
    for (let i = 0; i < this.#order.length; i++) this.#order[i] = i;
    if (this.shuffle) this.#shuffleRng.shuffle(this.#order);
    this.#position = 0;
  }

  #remaining(): number {
    return this.ds.n - this.#position;
  }

  /** The next batch (starting a new epoch when this one is used up). */
  next(): Batch {
    const left = this.#remaining();
    if (left === 0 || (this.dropLast && left < this.batchSize)) {
      this.#epoch++;
      this.#startEpoch();
    }
    const B = Math.min(this.batchSize, this.#remaining());
    const { height: H, width: W, channels: C } = this.ds;
    const [OH, OW] = this.size;
    const inPix = H * W * C;
    const outPix = OH * OW * C;
    const images = new Float32Array(B * outPix); // [B, OH, OW, C]
    const labels = new Int32Array(B);
    const indices = this.#order.slice(this.#position, this.#position + B);
    const full = { top: 0, left: 0, height: H, width: W };
    for (let b = 0; b < B; b++) {
      const i = indices[b];
      const src = this.ds.images.subarray(i * inPix, (i + 1) * inPix); // [H, W, C]
      labels[b] = this.ds.labels[i];
      if (this.#augment) {
        randomResizedCrop(src, H, W, C, this.#augRng, {
          ...this.#augment,
          outHeight: OH,
          outWidth: OW,
          out: images,
          outOffset: b * outPix,
        });
      } else if (OH !== H || OW !== W) {
        resizeCrop(src, H, W, C, full, OH, OW, images, b * outPix);
      } else {
        images.set(src, b * outPix);
      }
    }
    normalize(images, C, this.mean, this.std, images);
    const epoch = this.#epoch;
    this.#position += B;
    const after = this.#remaining();
    return {
      images,
      labels,
      indices,
      shape: [B, OH, OW, C],
      epoch,
      lastInEpoch: after === 0 || (this.dropLast && after < this.batchSize),
    };
  }

  *[Symbol.iterator](): Iterator<Batch> {
    while (true) yield this.next();
  }
}

/**
 * An endless stream of normalised (optionally augmented) batches of `ds`: shorthand for
 * `new BatchStream(ds, opts)`, iterable with `for...of`.
 *
 * @example
 * ```ts
 * import { batches, loadFashionMnist, shippedFashionMnistDir } from "./data.ts";
 * const { test } = await loadFashionMnist({ dir: shippedFashionMnistDir() });
 * let seen = 0;
 * for (const b of batches(test, { batchSize: 300, shuffle: false, dropLast: false })) {
 *   seen += b.labels.length;
 *   if (b.lastInEpoch) break;
 * }
 * if (seen !== 2000) throw new Error(`one epoch should see 2000 images, saw ${seen}`);
 * ```
 */
export function batches(ds: ImageDataset, opts: BatchOptions): BatchStream {
  return new BatchStream(ds, opts);
}
