/**
 * The dataset types every loader returns ({@link ImageDataset}, {@link DatasetSplits}), the error
 * they throw ({@link DataError}), the class names of Fashion-MNIST and CIFAR-10, and the label check.
 *
 * Images are kept as bytes in NHWC order (`Uint8Array` `[N, H, W, C]`), labels as `Int32Array`.
 * Nothing here makes a tensor: the batch stream yields plain `Float32Array` batches and the
 * trainer turns each into a tensor, so memory stays at one copy of the bytes plus one batch.
 *
 * @module
 */

/** A labelled image set held in memory as bytes. */
export interface ImageDataset {
  /** Pixels 0..255, NHWC. [n, height, width, channels] */
  images: Uint8Array;
  /** Class index per image, `0 <= label < classNames.length`. [n] */
  labels: Int32Array;
  /** Number of images. */
  n: number;
  /** Image height in pixels. */
  height: number;
  /** Image width in pixels. */
  width: number;
  /** Channels per pixel. */
  channels: number;
  /** Name of each class index. */
  classNames: string[];
  /** Where the images came from, in words (printed by the tasks). */
  source: string;
}

/** A train/test pair with a one-line description of where it came from. */
export interface DatasetSplits {
  /** The training images. */
  train: ImageDataset;
  /** The held-out test images. */
  test: ImageDataset;
  /** e.g. "Fashion-MNIST, full set (60000 train / 10000 test) from /usr/share/datasets/fashion-mnist". */
  source: string;
  /** False only for the subset shipped in `data/fashion-mnist/`. */
  full: boolean;
}

/** A dataset file or folder that is missing, corrupt or of an unexpected layout. */
export class DataError extends Error {
  /** An error with `message`, named "DataError". */
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

/** Throw a {@link DataError} naming `file` when a label is outside `0..numClasses - 1`. */
export function checkLabels(
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
