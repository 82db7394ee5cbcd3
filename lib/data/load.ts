/**
 * Finding and loading a dataset: Fashion-MNIST by its resolution order, any dataset by spec (IDX,
 * CIFAR or an image folder, detected from the layout) converted to the model's channels, and a
 * stratified hold-out split for data without a test set.
 *
 * Fashion-MNIST is found in this order: an explicit directory, the `IJEPA_DATA` environment
 * variable, Debian's `/usr/share/datasets/fashion-mnist` (package `dataset-fashion-mnist`), and
 * last the class-balanced subset shipped in `data/fashion-mnist/` (10000 train / 2000 test).
 *
 * @module
 */

import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../engine/rng.ts";
import { findCifarFiles, loadCifar } from "./cifar.ts";
import { DataError, type DatasetSplits, FASHION_MNIST_CLASSES, type ImageDataset } from "./dataset.ts";
import { listDir, readNames } from "./files.ts";
import { findIdxPair, loadIdx } from "./idx.ts";
import { type ImageFolderOptions, readClassFolders } from "./image_folder.ts";
import { subset } from "./stats.ts";

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

/** Options of {@link loadFashionMnist}. */
export interface FashionMnistOptions {
  /** A directory with the four IDX files; wins over `IJEPA_DATA` and the installed set. */
  dir?: string;
}

/** `IJEPA_DATA`, where set and env access is already granted. */
export function envDataDir(): string | undefined {
  // Read IJEPA_DATA only when env access is already granted, so no permission prompt appears.
  const p = Deno.permissions.querySync({ name: "env", variable: "IJEPA_DATA" });
  if (p.state !== "granted") return undefined;
  const v = Deno.env.get("IJEPA_DATA");
  return v && v.trim() !== "" ? v : undefined;
}

/** Whether the Debian full set is there; looks only when read access is already granted. */
export async function systemSetPresent(): Promise<boolean> {
  const p = Deno.permissions.querySync({ name: "read", path: SYSTEM_FASHION_MNIST_DIR });
  if (p.state !== "granted") return false;
  return (await findIdxPair(SYSTEM_FASHION_MNIST_DIR, "train").catch(() => undefined)) !==
    undefined;
}

/**
 * Load Fashion-MNIST train and test sets from, in order: `opts.dir`, `IJEPA_DATA` (read only when
 * env access is granted), `/usr/share/datasets/fashion-mnist`, the shipped subset. `source` says
 * which, and `full` is false only for the shipped subset.
 *
 * @example
 * ```ts
 * import { loadFashionMnist, shippedFashionMnistDir } from "./load.ts";
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
  const pair = (split: "train" | "test") =>
    findIdxPair(dir, split).catch((e) => {
      // a folder named by IJEPA_DATA: say where it came from
      if (via && e instanceof Error) e.message += via;
      throw e;
    });
  const [trainFiles, testFiles] = [await pair("train"), await pair("test")];
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
 * import { loadFashionMnist, splitHoldout, shippedFashionMnistDir } from "./load.ts";
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
 * import { loadDataset } from "./load.ts";
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
    if (env === undefined) return fitStored(await loadFashionMnist(), opts);
    return await loadDataset(env, opts).catch((e) => {
      if (e instanceof DataError) e.message += " (IJEPA_DATA)"; // say where the folder came from
      throw e;
    });
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
