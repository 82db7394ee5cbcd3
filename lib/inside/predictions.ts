/**
 * What the predictor predicts: its outputs for one image's target blocks beside the targets the
 * loss compares them with ({@link predictBlocks}), and a pixel-mode prediction turned back into
 * pixels ({@link denormalizePixels}).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ImageDataset } from "../data/dataset.ts";
import { modelInput } from "../model/model_input.ts";
import type { IJEPA } from "../model/ijepa.ts";
import type { CollatedMasks } from "../masks/batch.ts";
import { type PlotImage, toBytes } from "./pixels.ts";

/** The predictor's outputs for one image's target blocks, beside the targets the loss compares them with. */
export interface BlockPredictions {
  /** Predictor outputs (features, or pixels for a `pixel`-mode model), block-major. [M, Lt, dim] */
  predicted: Float32Array;
  /** The regression targets: layer-normalised target-encoder features (or normalised pixels). [M, Lt, dim] */
  targets: Float32Array;
  /** The patch index of each row. [M, Lt] */
  patches: Int32Array;
  /** Target blocks (M). */
  blocks: number;
  /** Tokens per target block (Lt). */
  length: number;
  /** Width of a row: feature size, or pixels per patch in `pixel` mode. */
  dim: number;
}

/**
 * Run the model on image `image` of `ds` with masks for a batch of one (e.g.
 * `trainer.masker.sample(rng, 1)`): the predictor's outputs for every target block and the
 * targets it was trained to match, read back as arrays. The image is normalised (and resized) as
 * lib/eval/features.ts does; nothing is trained and no tensor outlives the call.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { predictBlocks } from "./predictions.ts";
 * import { IJEPA } from "../model/ijepa.ts";
 * import { createMasker } from "../masks/masker.ts";
 * import { Rng } from "../engine/rng.ts";
 * await tf.setBackend("cpu");
 * const ds = { images: new Uint8Array(256).fill(90), labels: new Int32Array(1), n: 1, height: 16, width: 16,
 *   channels: 1, classNames: ["a"], source: "demo" };
 * const model = new IJEPA("tiny", { seed: 0 });
 * const masks = createMasker({ rows: 4, cols: 4, nTargets: 2, minKeep: 2 }).sample(new Rng(0), 1);
 * const p = await predictBlocks(model, ds, 0, masks, { mean: [0.3], std: [0.3] });
 * if (p.predicted.length !== 2 * p.length * 32 || p.targets.length !== p.predicted.length) throw new Error("shape");
 * model.dispose();
 * ```
 *
 * Asynchronous: it reads the predictions with `await data()`, which every backend supports (webgpu
 * cannot read synchronously under Deno).
 */
export async function predictBlocks(
  model: IJEPA,
  ds: ImageDataset,
  image: number,
  masks: CollatedMasks,
  opts: { mean: readonly number[]; std: readonly number[] },
): Promise<BlockPredictions> {
  if (masks.batchSize !== 1) {
    throw new Error(`predictBlocks: expected masks for a batch of 1 image, got ${masks.batchSize}`);
  }
  if (!(Number.isInteger(image) && image >= 0 && image < ds.n)) {
    throw new Error(`predictBlocks: image index ${image} is out of range 0..${ds.n - 1}`);
  }
  const cfg = model.cfg;
  if (ds.channels !== cfg.channels) {
    throw new Error(
      `predictBlocks: the model expects ${cfg.channels}-channel images, the dataset has ${ds.channels}`,
    );
  }
  const S = cfg.imageSize;
  const input = modelInput(ds, image, 1, S, opts.mean, opts.std); // [1, S, S, C]
  const [pred, target] = tf.tidy(() => {
    const x = tf.tensor4d(input, [1, S, S, cfg.channels]);
    return [model.predict(x, masks), model.targets(x, masks)]; // [M, Lt, F] each
  });
  try {
    const { nTargets: M, targetLen: Lt } = masks;
    return {
      predicted: (await pred.data()) as Float32Array,
      targets: (await target.data()) as Float32Array,
      patches: Int32Array.from(masks.targetIdx),
      blocks: M,
      length: Lt,
      dim: pred.shape[2],
    };
  } finally {
    tf.dispose([pred, target]);
  }
}

/**
 * A pixel-mode prediction for one patch back to pixels: the model predicts each patch normalised
 * to mean 0 and variance 1 (MAE's `norm_pix_loss`), so, as MAE's figures do, we give it the true
 * patch's mean and standard deviation (per patch, over all its values) and clamp to 0..255.
 *
 * @example
 * ```ts
 * import { denormalizePixels } from "./predictions.ts";
 * const truth = { data: Uint8Array.from([10, 30, 10, 30]), height: 2, width: 2, channels: 1 }; // mean 20, std 10
 * const out = denormalizePixels(new Float32Array([1, -1, 0, 2]), truth);
 * if (out.data.join() !== "30,10,20,40") throw new Error(out.data.join());
 * ```
 */
export function denormalizePixels(
  predicted: Float32Array,
  truth: PlotImage,
): PlotImage & { data: Uint8Array } {
  const { height, width, channels } = truth;
  const n = height * width * channels;
  if (predicted.length !== n) {
    throw new Error(
      `denormalizePixels: expected ${height}x${width}x${channels} = ${n} predicted values, got ${predicted.length}`,
    );
  }
  const t = toBytes(truth);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += t[i];
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (t[i] - mean) ** 2;
  const sd = Math.sqrt(v / n + 1e-6);
  const data = Uint8Array.from(predicted, (p) => Math.round(Math.min(255, Math.max(0, p * sd + mean))));
  return { data, height, width, channels };
}
