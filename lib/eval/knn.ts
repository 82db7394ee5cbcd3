/**
 * kNN on frozen features, the probe suite's second classifier ({@link knnAccuracy}): cosine
 * similarity on the same standardised features as the linear probe, the k = 20 nearest labelled
 * images vote with weight `exp(similarity / 0.07)`, as DINO's kNN evaluation.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { FeatureSet } from "./features.ts";
import { argmax, checkLabelled, featureStats, standardized } from "./feature_matrix.ts";

/** Features with a label per row. */
export interface LabelledFeatures extends FeatureSet {
  /** [n] */
  labels: Int32Array;
}

/** Options of {@link knnPredict} and {@link knnAccuracy}. */
export interface KnnOptions {
  /** Vote weight exp(similarity / temperature) (default 0.07, as DINO). */
  temperature?: number;
  /** Number of classes (default: from the labels). */
  classes?: number;
}

/**
 * Weighted kNN predictions for `test` from the labelled `train` features: both standardised with
 * the train features' mean and std, then L2-normalised; the `k` most cosine-similar train rows
 * (all of them when fewer) vote with weight `exp(sim / temperature)`; ties go to the lower class.
 * Similarities are computed in tfjs in chunks of test rows. Returns [test.n].
 */
export async function knnPredict(
  train: LabelledFeatures,
  test: FeatureSet,
  k = 20,
  opts: KnnOptions = {},
): Promise<Int32Array> {
  const dim = train.dim;
  let K = opts.classes ?? 0;
  if (opts.classes === undefined) { for (const c of train.labels) K = Math.max(K, c + 1); }
  checkLabelled(train.features, train.labels, dim, Math.max(K, 2), "knn: train");
  if (test.dim !== dim || test.features.length !== test.n * dim) {
    throw new Error(
      `knn: expected test features [${test.n}, ${dim}] like the train features, got dim ${test.dim} and ${test.features.length} values`,
    );
  }
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`knn: k must be a positive integer, got ${k}`);
  const T = opts.temperature ?? 0.07;
  const n = train.labels.length;
  const kk = Math.min(k, n);
  const stats = featureStats(train.features, dim);
  const unit = (x: Float32Array) => {
    const z = standardized(x, dim, stats); // [rows, dim]
    for (let o = 0; o < z.length; o += dim) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += z[o + j] * z[o + j];
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      for (let j = 0; j < dim; j++) z[o + j] *= inv;
    }
    return z;
  };
  const trainT = tf.tidy(() => tf.tensor2d(unit(train.features), [n, dim]).transpose()); // [dim, n]
  const q = unit(test.features); // [m, dim]
  const out = new Int32Array(test.n);
  const chunk = Math.max(1, Math.min(1024, Math.floor(2 ** 24 / n)));
  const votes = new Float64Array(K);
  try {
    for (let start = 0; start < test.n; start += chunk) {
      const c = Math.min(chunk, test.n - start);
      const top = tf.tidy(() => {
        const sims = tf.matMul(tf.tensor2d(q.subarray(start * dim, (start + c) * dim), [c, dim]), trainT); // [c, n]
        const { values, indices } = tf.topk(sims, kk); // [c, kk] each
        return [values, indices];
      });
      let vals: Float32Array, idx: Int32Array;
      try {
        vals = (await top[0].data()) as Float32Array;
        idx = (await top[1].data()) as Int32Array;
      } finally {
        tf.dispose(top);
      }
      for (let r = 0; r < c; r++) {
        votes.fill(0);
        for (let j = 0; j < kk; j++) votes[train.labels[idx[r * kk + j]]] += Math.exp(vals[r * kk + j] / T);
        out[start + r] = argmax(votes, 0, K);
      }
    }
  } finally {
    trainT.dispose();
  }
  return out;
}

/**
 * kNN accuracy (cosine, k = 20 by default) of `test` against the labelled `train` features; see
 * {@link knnPredict}.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { knnAccuracy } from "./knn.ts";
 * await tf.setBackend("cpu");
 * const train = {
 *   features: new Float32Array([1, 0, 0.9, 0.1, 0, 1, 0.1, 0.9]), dim: 2, n: 4,
 *   labels: new Int32Array([0, 0, 1, 1]),
 * };
 * const test = { features: new Float32Array([1, 0.2, 0.2, 1]), dim: 2, n: 2, labels: new Int32Array([0, 1]) };
 * if ((await knnAccuracy(train, test, 3)) !== 1) throw new Error("kNN should be right");
 * ```
 */
export async function knnAccuracy(
  train: LabelledFeatures,
  test: LabelledFeatures,
  k = 20,
  opts: KnnOptions = {},
): Promise<number> {
  if (test.labels.length !== test.n) {
    throw new Error(`knnAccuracy: expected ${test.n} test labels, got ${test.labels.length}`);
  }
  const p = await knnPredict(train, test, k, opts);
  let right = 0;
  for (let i = 0; i < p.length; i++) if (p[i] === test.labels[i]) right++;
  return right / p.length;
}
