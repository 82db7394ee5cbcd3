/**
 * CIFAR-10 and CIFAR-100 binary batches: finding a split's files in a folder and loading them as
 * an NHWC dataset with their class names.
 *
 * @module
 */

import { basename, join } from "node:path";
import { checkLabels, CIFAR10_CLASSES, DataError, type ImageDataset } from "./dataset.ts";
import { isDir, listDir, maybeGunzip, readBytes, readNames } from "./files.ts";

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

/** The CIFAR binary files of one split in `dir` (or its extracted sub-folder), if any. */
export async function findCifarFiles(
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

/**
 * Load CIFAR-10 or CIFAR-100 binary batches: records of label byte(s) then 3072 bytes of a 32x32
 * RGB image stored channel-major (CHW), turned here into NHWC. Pass the files, or a directory
 * (the extracted `cifar-10-batches-bin` / `cifar-100-binary`, or its parent) with `split`.
 *
 * @example
 * ```ts
 * import { loadCifar } from "./cifar.ts";
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
