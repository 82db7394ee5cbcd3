/**
 * How the shipped Fashion-MNIST subset (`data/fashion-mnist/`) is drawn from the full set: 1000
 * images per class from the training set and 200 per class from the test set, with one seeded
 * `Rng`. For the train split and then the test split, for class 0..9 in order, the indices of that
 * class (ascending) are shuffled with `rng.shuffle` and the first `perClass` kept; the kept
 * indices are then sorted, so the subset keeps the original order. `deno task make-subset` writes
 * the files.
 *
 * @example
 * ```ts
 * import { balancedIndices } from "./subset_draw.ts";
 * import { Rng } from "../engine/rng.ts";
 * const labels = new Int32Array([0, 1, 0, 1, 0, 1, 2, 2]);
 * const idx = balancedIndices(labels, 3, 2, new Rng(0));
 * if (idx.length !== 6 || idx.some((v, k) => k > 0 && v <= idx[k - 1])) throw new Error("bad pick");
 * ```
 * @module
 */

import { Rng } from "../engine/rng.ts";
import { FASHION_MNIST_CLASSES, type ImageDataset } from "./dataset.ts";

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
