/**
 * The batch stream: an endless, resumable stream of normalised (optionally augmented) batches of
 * a dataset, epoch after epoch, as plain `Float32Array`s the trainer turns into tensors.
 *
 * @example
 * ```ts
 * import { BatchStream } from "./batches.ts";
 * import { loadFashionMnist, shippedFashionMnistDir } from "./load.ts";
 * import { channelStats } from "./stats.ts";
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

import { Rng } from "../engine/rng.ts";
import { normalize, randomResizedCrop, type RandomResizedCropOptions, resizeCrop } from "./augment.ts";
import { DataError, type ImageDataset } from "./dataset.ts";
import { channelStats } from "./stats.ts";

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
  /** Epoch counter, from 0. */
  epoch: number;
  /** Next position in the epoch's order. */
  position: number;
  /** Shuffle generator state at the start of this epoch (the order is redrawn from it). */
  shuffleRng: number[];
  /** Augmentation generator state now. */
  augmentRng: number[];
  /** Dataset size. This and the options below are checked on resume. */
  n: number;
  /** Images per batch. */
  batchSize: number;
  /** Whether each epoch is reshuffled. */
  shuffle: boolean;
  /** Whether the last incomplete batch of an epoch is dropped. */
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
 * import { BatchStream } from "./batches.ts";
 * import { loadFashionMnist, shippedFashionMnistDir } from "./load.ts";
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
  /** The dataset the batches are drawn from. */
  readonly ds: ImageDataset;
  /** Images per batch. */
  readonly batchSize: number;
  /** Whether each epoch is reshuffled. */
  readonly shuffle: boolean;
  /** Whether the last incomplete batch of each epoch is dropped. */
  readonly dropLast: boolean;
  /** Output height and width of every batch image. */
  readonly size: [number, number];
  /** Per-channel mean subtracted from pixels (0..1 units). */
  readonly mean: readonly number[];
  /** Per-channel std that pixels are divided by (0..1 units). */
  readonly std: readonly number[];
  #augment: Pick<RandomResizedCropOptions, "scale" | "ratio"> | undefined;
  #shuffleRng: Rng;
  #augRng: Rng;
  #epochStart: number[] = [];
  #order: Int32Array;
  #epoch = 0;
  #position = 0;

  /** A stream over `ds`; throws on a bad batch size, an empty dataset or stats of the wrong length. */
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

  /** Batches without end: each epoch follows the last. */
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
 * import { batches } from "./batches.ts";
 * import { loadFashionMnist, shippedFashionMnistDir } from "./load.ts";
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
