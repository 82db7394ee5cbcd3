/**
 * Folders of PNG/JPEG images: one sub-folder per class (as torchvision's `ImageFolder`) or every
 * image under a folder, each read at the model's size and channels.
 *
 * @module
 */

import { join } from "node:path";
import { DataError, type ImageDataset } from "./dataset.ts";
import { listDir, readBytes } from "./files.ts";
import { convertInto, decodeImage, describeImages, noteImage, type SeenImages } from "./image_decode.ts";

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

const IMAGE_EXT = /\.(png|jpe?g)$/i;

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
export async function readClassFolders(
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
 * import { loadImageFolder } from "./image_folder.ts";
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
