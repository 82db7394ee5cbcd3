/**
 * IDX files, the MNIST family's format: parsing and encoding unsigned-byte arrays, finding the
 * train or test pair in a folder, and loading an image file with its label file as a dataset.
 *
 * @module
 */

import { join } from "node:path";
import { checkLabels, DataError, type ImageDataset } from "./dataset.ts";
import { listDir, maybeGunzip, readBytes } from "./files.ts";

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
 * import { encodeIdx, parseIdx } from "./idx.ts";
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
 * import { encodeIdx } from "./idx.ts";
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
 * import { FASHION_MNIST_CLASSES } from "./dataset.ts";
 * import { loadIdx } from "./idx.ts";
 * import { shippedFashionMnistDir } from "./load.ts";
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

/** The train or test IDX pair in `dir` (gz or raw), e.g. train-images-idx3-ubyte.gz. */
export async function findIdxPair(
  dir: string,
  split: "train" | "test",
): Promise<{ images: string; labels: string } | undefined> {
  const names = (await listDir(dir)).filter((e) => e.isFile).map((e) => e.name);
  const prefix = split === "train" ? /^train/i : /^(t10k|test)/i;
  const images = names.find((n) => prefix.test(n) && /images/i.test(n) && /idx3/i.test(n));
  const labels = names.find((n) => prefix.test(n) && /labels/i.test(n) && /idx1/i.test(n));
  return images && labels ? { images: join(dir, images), labels: join(dir, labels) } : undefined;
}
