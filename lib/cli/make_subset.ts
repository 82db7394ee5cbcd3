/**
 * Make the class-balanced Fashion-MNIST subset shipped in `data/fashion-mnist/`: 1000 images per
 * class from the training set and 200 per class from the test set, chosen with a seeded `Rng`
 * from the full set, written as gzipped IDX files with the original names.
 *
 * Usage (reproduces the shipped files byte for byte in content; gzip bytes may differ by zlib):
 *
 * ```sh
 * deno run -A lib/cli/make_subset.ts --data /usr/share/datasets/fashion-mnist --out data/fashion-mnist
 * ```
 *
 * Selection: one `Rng(seed)`; for the train split and then the test split, for class 0..9 in
 * order, the indices of that class (ascending) are shuffled with `rng.shuffle` and the first
 * `perClass` kept; the kept indices are then sorted, so the subset keeps the original order.
 *
 * @example
 * ```ts
 * import { balancedIndices } from "./make_subset.ts";
 * import { Rng } from "../engine/rng.ts";
 * const labels = new Int32Array([0, 1, 0, 1, 0, 1, 2, 2]);
 * const idx = balancedIndices(labels, 3, 2, new Rng(0));
 * if (idx.length !== 6 || idx.some((v, k) => k > 0 && v <= idx[k - 1])) throw new Error("bad pick");
 * ```
 * @module
 */

import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { Rng } from "../engine/rng.ts";
import { parseFlags, runMain } from "./args.ts";
import {
  encodeIdx,
  FASHION_MNIST_CLASSES,
  type ImageDataset,
  loadFashionMnist,
  SYSTEM_FASHION_MNIST_DIR,
} from "../data/data.ts";

/** Train and test images kept per class in the shipped subset. */
export const SUBSET_PER_CLASS = { train: 1000, test: 200 } as const;

/** The seed the shipped subset was made with. */
export const SUBSET_SEED = 0;

/**
 * `perClass` indices of each of `numClasses` classes, drawn without replacement with `rng`,
 * returned sorted ascending. Errors if a class has fewer than `perClass` examples.
 */
export function balancedIndices(
  labels: Int32Array,
  numClasses: number,
  perClass: number,
  rng: Rng,
): number[] {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const picked: number[] = [];
  byClass.forEach((idx, c) => {
    if (idx.length < perClass) {
      throw new RangeError(
        `balancedIndices: class ${c} has ${idx.length} examples, expected at least ${perClass}`,
      );
    }
    rng.shuffle(idx);
    picked.push(...idx.slice(0, perClass));
  });
  return picked.sort((a, b) => a - b);
}

/**
 * The shipped subset's indices into the full train and test sets for `seed` (train drawn first,
 * then test, from one generator).
 */
export function subsetIndices(
  train: ImageDataset,
  test: ImageDataset,
  seed = SUBSET_SEED,
): { train: number[]; test: number[] } {
  const rng = new Rng(seed);
  const n = FASHION_MNIST_CLASSES.length;
  return {
    train: balancedIndices(train.labels, n, SUBSET_PER_CLASS.train, rng),
    test: balancedIndices(test.labels, n, SUBSET_PER_CLASS.test, rng),
  };
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, {
    name: "make_subset",
    summary: "Write the class-balanced Fashion-MNIST subset (1000/class train, 200/class test).",
    flags: {
      data: {
        type: "string",
        default: SYSTEM_FASHION_MNIST_DIR,
        help: "full Fashion-MNIST directory",
      },
      out: { type: "string", default: "data/fashion-mnist", help: "output directory" },
      seed: { type: "int", default: SUBSET_SEED, help: "selection seed" },
    },
  });
  const dir = f.data as string;
  const out = f.out as string;
  const full = await loadFashionMnist({ dir });
  const splits = { train: full.train, test: full.test };
  const picked = subsetIndices(splits.train, splits.test, f.seed as number);
  await Deno.mkdir(out, { recursive: true });
  for (const [split, prefix] of [["train", "train"], ["test", "t10k"]] as const) {
    const ds = splits[split];
    const idx = picked[split];
    const pix = ds.height * ds.width;
    const images = new Uint8Array(idx.length * pix); // [k, 28, 28]
    const labels = new Uint8Array(idx.length); // [k]
    idx.forEach((i, k) => {
      images.set(ds.images.subarray(i * pix, (i + 1) * pix), k * pix);
      labels[k] = ds.labels[i];
    });
    const files: [string, Uint8Array][] = [
      [`${prefix}-images-idx3-ubyte.gz`, encodeIdx(images, [idx.length, ds.height, ds.width])],
      [`${prefix}-labels-idx1-ubyte.gz`, encodeIdx(labels, [idx.length])],
    ];
    for (const [name, raw] of files) {
      const gz = gzipSync(raw, { level: 9 });
      await Deno.writeFile(join(out, name), gz);
      console.log(`${join(out, name)}: ${gz.length} bytes, content sha256 ${await sha256(raw)}`);
    }
  }
  console.log(
    `subset of ${full.source}: ${picked.train.length} train / ${picked.test.length} test, seed ${f.seed}`,
  );
}

if (import.meta.main) await runMain(main);
