/**
 * Evaluation of frozen features: the linear probe, low-shot label subsets, kNN, and the suite that
 * puts I-JEPA beside its baselines in one table (the paper's Tables 1 and 2, at our scale).
 *
 * The official code ships no evaluation; this is ours, with one fixed recipe:
 *
 * - **Protocol.** The training images are the label pool; the test set is the fixed held-out
 *   split. A setting labels `n` images per class (n-shot), 1% of each class of the pool (`1%`; 60
 *   per class on Fashion-MNIST's 60k), or the whole pool (`full`). Low-shot settings are drawn
 *   `seeds` times ({@link sampleLabelSubset}); draw `s` uses `new Rng(seed + s)` in every setting,
 *   so a draw's 1-shot images are among its 5-shot images, and so on. Every method (I-JEPA, the
 *   random-init encoder, raw pixels) is fitted on the same draws.
 * - **Probe recipe** ({@link trainLinearProbe}). Features are standardised with the mean and std
 *   of the labelled images the probe trains on. A multinomial logistic regression minimises
 *   `mean cross-entropy + ||W||^2 / (2 C n)` with C = 1 (the bias is not penalised): the objective
 *   of scikit-learn's `LogisticRegression(C=1.0)`, the common default for probes on frozen
 *   features, so the penalty is relatively stronger with fewer labels. It is solved full-batch by
 *   L-BFGS (memory 30, backtracking Armijo line search) from zero weights until every gradient
 *   entry is below 1e-4 (scikit-learn's `tol`), for at most 1000 iterations. Departure from
 *   scikit-learn's `max_iter=100`: a random-init encoder's features are ill-conditioned and need
 *   500-900 iterations on all labels (measured, random-init `quick` encoder on the shipped subset:
 *   68.8% at 100 iterations, 74.1% converged), so a cap of 100 would handicap exactly the baseline
 *   that must be fair. No randomness at all: the
 *   same features give the same probe. The two matrix products per step run in tfjs on the active
 *   backend (BLAS on wasm/cpu); the optimizer state is float64 in JS.
 * - **kNN** ({@link knnAccuracy}): cosine similarity on the same standardised features, the k = 20
 *   nearest labelled images vote with weight `exp(similarity / 0.07)`, as DINO's kNN evaluation.
 *
 * Accuracies are fractions in [0, 1]; {@link formatProbeTable} prints percentages. Spreads are
 * sample standard deviations over the draws (n - 1 in the denominator).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { trainLinearProbe } from "./probe.ts";
 * await tf.setBackend("cpu");
 * // Two classes on a line: x < 0 is class 0, x > 0 is class 1.
 * const x = new Float32Array([-3, -2, -1, 1, 2, 3]); // [6, 1]
 * const y = new Int32Array([0, 0, 0, 1, 1, 1]);
 * const probe = await trainLinearProbe(x, y, 1, 2);
 * if (probe.accuracy(new Float32Array([-5, 4]), new Int32Array([0, 1])) !== 1) throw new Error("wrong");
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { channelStats, type ImageDataset, subset } from "../data/data.ts";
import { extractFeatures, type FeatureSet, rawPixelFeatures, type Readout } from "./features.ts";
import { Rng } from "../engine/rng.ts";
import type { VisionTransformer } from "../model/vit.ts";

// ---------------------------------------------------------------------------------------------
// Checks

/** Check a [n, dim] feature matrix and its labels; errors name what was expected and what came. */
function checkLabelled(
  x: Float32Array,
  y: Int32Array,
  dim: number,
  classes: number,
  where: string,
): number {
  if (!(Number.isInteger(dim) && dim >= 1)) {
    throw new Error(`${where}: dim must be a positive integer, got ${dim}`);
  }
  if (!(Number.isInteger(classes) && classes >= 2)) {
    throw new Error(`${where}: expected at least 2 classes, got ${classes}`);
  }
  const n = y.length;
  if (n === 0) throw new Error(`${where}: expected at least one labelled example, got 0`);
  if (x.length !== n * dim) {
    throw new Error(
      `${where}: expected ${n} x ${dim} = ${
        n * dim
      } feature values for ${n} labels of dim ${dim}, got ${x.length}` +
        (x.length % dim === 0 ? ` (${x.length / dim} rows)` : ""),
    );
  }
  for (let i = 0; i < n; i++) {
    const c = y[i];
    if (!(Number.isInteger(c) && c >= 0 && c < classes)) {
      throw new Error(`${where}: label ${c} at index ${i} is out of range: expected 0..${classes - 1}`);
    }
  }
  return n;
}

function checkFeatures(x: Float32Array, dim: number, where: string): number {
  if (x.length % dim !== 0) {
    throw new Error(
      `${where}: expected rows of ${dim} features, got ${x.length} values (not a multiple of ${dim})`,
    );
  }
  return x.length / dim;
}

// ---------------------------------------------------------------------------------------------
// Label subsets

/**
 * A class-balanced subset of a label pool: `perClass` indices of every class (a number, or one
 * count per class), drawn without replacement. Each class's indices are shuffled with `rng` in class
 * order and the first `perClass` kept, so the same seed gives the same subset, and a larger
 * `perClass` with the same seed gives a superset. Returns the indices in ascending order.
 *
 * @example
 * ```ts
 * import { sampleLabelSubset } from "./probe.ts";
 * import { Rng } from "../engine/rng.ts";
 * const labels = new Int32Array([0, 1, 0, 1, 0, 1, 2, 2]);
 * const idx = sampleLabelSubset(labels, 2, new Rng(0)); // two of each class
 * if (idx.length !== 6) throw new Error(`expected 6 indices, got ${idx.length}`);
 * ```
 */
export function sampleLabelSubset(
  labels: Int32Array,
  perClass: number | readonly number[],
  rng: Rng,
  classes?: number,
): Int32Array {
  let K = classes ?? 0;
  if (classes === undefined) { for (let i = 0; i < labels.length; i++) K = Math.max(K, labels[i] + 1); }
  if (Array.isArray(perClass) && classes === undefined) K = Math.max(K, perClass.length);
  const want = typeof perClass === "number" ? new Array<number>(K).fill(perClass) : [...perClass];
  if (want.length !== K) {
    throw new Error(`sampleLabelSubset: expected ${K} per-class counts (one per class), got ${want.length}`);
  }
  for (const w of want) {
    if (!(Number.isInteger(w) && w >= 0)) {
      throw new Error(
        `sampleLabelSubset: per-class counts must be non-negative integers, got ${JSON.stringify(want)}`,
      );
    }
  }
  const byClass: number[][] = Array.from({ length: K }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!(c >= 0 && c < K)) {
      throw new Error(`sampleLabelSubset: label ${c} at index ${i} is out of range: expected 0..${K - 1}`);
    }
    byClass[c].push(i);
  }
  const out: number[] = [];
  for (let c = 0; c < K; c++) {
    if (byClass[c].length < want[c]) {
      throw new Error(
        `sampleLabelSubset: ${want[c]} labelled images of class ${c} requested, the pool has ${
          byClass[c].length
        }`,
      );
    }
    rng.shuffle(byClass[c]);
    for (let j = 0; j < want[c]; j++) out.push(byClass[c][j]);
  }
  return Int32Array.from(out).sort();
}

/** Rows `idx` of a [n, dim] matrix, in that order. [idx.length, dim] */
export function takeFeatureRows(x: Float32Array, dim: number, idx: ArrayLike<number>): Float32Array {
  const n = checkFeatures(x, dim, "takeFeatureRows");
  const out = new Float32Array(idx.length * dim);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k];
    if (!(Number.isInteger(i) && i >= 0 && i < n)) {
      throw new Error(`takeFeatureRows: index ${i} at position ${k} is out of range 0..${n - 1}`);
    }
    out.set(x.subarray(i * dim, (i + 1) * dim), k * dim);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Standardisation

/** Per-feature mean and 1/std of a [n, dim] matrix; constant features get scale 1 (as StandardScaler). */
export function featureStats(x: Float32Array, dim: number): { mean: Float64Array; scale: Float64Array } {
  const n = checkFeatures(x, dim, "featureStats");
  const mean = new Float64Array(dim), sq = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let j = 0; j < dim; j++) mean[j] += x[o + j];
  }
  for (let j = 0; j < dim; j++) mean[j] /= n;
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let j = 0; j < dim; j++) {
      const d = x[o + j] - mean[j];
      sq[j] += d * d;
    }
  }
  const scale = new Float64Array(dim);
  for (let j = 0; j < dim; j++) {
    const sd = Math.sqrt(sq[j] / n);
    scale[j] = sd > 1e-7 * Math.max(1, Math.abs(mean[j])) ? 1 / sd : 1;
  }
  return { mean, scale };
}

function standardized(
  x: Float32Array,
  dim: number,
  s: { mean: Float64Array; scale: Float64Array },
): Float32Array {
  const out = new Float32Array(x.length); // [n, dim]
  for (let o = 0; o < x.length; o += dim) {
    for (let j = 0; j < dim; j++) out[o + j] = (x[o + j] - s.mean[j]) * s.scale[j];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The linear probe

/** The fixed probe recipe; every field has the default documented at the top of this file. */
export interface ProbeOptions {
  /** Inverse L2 strength, scikit-learn's C (default 1). */
  C?: number;
  /** Most L-BFGS iterations (default 1000). */
  maxIter?: number;
  /** Stop when every gradient entry is below this (default 1e-4). */
  tol?: number;
  /** L-BFGS memory (default 30). */
  memory?: number;
}

/** The recipe's defaults, in one place. */
export const PROBE_DEFAULTS: Required<ProbeOptions> = { C: 1, maxIter: 1000, tol: 1e-4, memory: 30 };

/** A trained linear probe: standardisation, then `logits = z W + b`. */
export class LinearProbe {
  /** Features per example. */
  readonly dim: number;
  /** Number of classes. */
  readonly classes: number;
  /** Weights on standardised features. [dim, classes] */
  readonly weights: Float32Array;
  /** [classes] */
  readonly bias: Float32Array;
  /** Standardisation: per-feature mean and 1/std of the training features. [dim] each */
  readonly mean: Float64Array;
  readonly scale: Float64Array;
  /** L-BFGS iterations run, whether the gradient tolerance was met, and the final objective. */
  readonly iterations: number;
  readonly converged: boolean;
  readonly loss: number;
  // Standardisation folded into the weights, for prediction on raw features: [dim, K] and [K].
  #w: Float64Array;
  #b: Float64Array;

  constructor(fields: {
    dim: number;
    classes: number;
    weights: Float32Array;
    bias: Float32Array;
    mean: Float64Array;
    scale: Float64Array;
    iterations: number;
    converged: boolean;
    loss: number;
  }) {
    const { dim, classes: K } = fields;
    if (fields.weights.length !== dim * K || fields.bias.length !== K) {
      throw new Error(
        `LinearProbe: expected weights [${dim}, ${K}] and bias [${K}], got ${fields.weights.length} and ${fields.bias.length} values`,
      );
    }
    this.dim = dim;
    this.classes = K;
    this.weights = fields.weights;
    this.bias = fields.bias;
    this.mean = fields.mean;
    this.scale = fields.scale;
    this.iterations = fields.iterations;
    this.converged = fields.converged;
    this.loss = fields.loss;
    this.#w = new Float64Array(dim * K);
    this.#b = Float64Array.from(fields.bias);
    for (let j = 0; j < dim; j++) {
      for (let k = 0; k < K; k++) {
        const w = fields.weights[j * K + k] * fields.scale[j];
        this.#w[j * K + k] = w;
        this.#b[k] -= fields.mean[j] * w;
      }
    }
  }

  /** Class scores of raw (unstandardised) features [n, dim]. Returns [n, classes]. */
  logits(x: Float32Array): Float64Array {
    const n = checkFeatures(x, this.dim, "LinearProbe.logits");
    const { dim, classes: K } = this;
    const w = this.#w;
    const z = new Float64Array(n * K); // [n, K]
    for (let i = 0; i < n; i++) {
      const zo = i * K, xo = i * dim;
      for (let k = 0; k < K; k++) z[zo + k] = this.#b[k];
      for (let j = 0; j < dim; j++) {
        const v = x[xo + j];
        if (v === 0) continue;
        const wo = j * K;
        for (let k = 0; k < K; k++) z[zo + k] += v * w[wo + k];
      }
    }
    return z;
  }

  /** The predicted class of each row of `x` [n, dim]. Returns [n]. */
  predict(x: Float32Array): Int32Array {
    const z = this.logits(x);
    const K = this.classes;
    const out = new Int32Array(z.length / K);
    for (let i = 0; i < out.length; i++) out[i] = argmax(z, i * K, K);
    return out;
  }

  /** The fraction of rows of `x` whose predicted class is `y`'s. */
  accuracy(x: Float32Array, y: Int32Array): number {
    checkLabelled(x, y, this.dim, this.classes, "LinearProbe.accuracy");
    const p = this.predict(x);
    let right = 0;
    for (let i = 0; i < p.length; i++) if (p[i] === y[i]) right++;
    return right / p.length;
  }

  /** Counts `m[true][predicted]` over the rows of `x`. [classes][classes] */
  confusionMatrix(x: Float32Array, y: Int32Array): number[][] {
    checkLabelled(x, y, this.dim, this.classes, "LinearProbe.confusionMatrix");
    return confusionMatrix(y, this.predict(x), this.classes);
  }
}

function argmax(z: ArrayLike<number>, o: number, K: number): number {
  let best = 0;
  for (let k = 1; k < K; k++) if (z[o + k] > z[o + best]) best = k;
  return best;
}

/** Counts `m[truth][predicted]` for predictions against labels. [classes][classes] */
export function confusionMatrix(truth: Int32Array, predicted: Int32Array, classes: number): number[][] {
  if (truth.length !== predicted.length) {
    throw new Error(`confusionMatrix: ${truth.length} labels but ${predicted.length} predictions`);
  }
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < truth.length; i++) m[truth[i]][predicted[i]]++;
  return m;
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/**
 * Fit the linear probe (the recipe at the top of this file) on `xTrain` [n, dim] with labels
 * `yTrain` [n] in `0..classes-1`. Deterministic: the same inputs on the same backend give the same
 * probe. The heavy products run in tfjs on the active backend; all tensors are disposed on return.
 */
export async function trainLinearProbe(
  xTrain: Float32Array,
  yTrain: Int32Array,
  dim: number,
  classes: number,
  opts: ProbeOptions = {},
): Promise<LinearProbe> {
  for (const k of Object.keys(opts)) {
    if (!(k in PROBE_DEFAULTS)) {
      throw new Error(
        `trainLinearProbe: unknown option "${k}"; expected ${Object.keys(PROBE_DEFAULTS).join(", ")}`,
      );
    }
  }
  const { C, maxIter, tol, memory } = { ...PROBE_DEFAULTS, ...opts };
  if (!(C > 0)) throw new Error(`trainLinearProbe: C must be > 0, got ${C}`);
  if (!(Number.isInteger(maxIter) && maxIter >= 0 && Number.isInteger(memory) && memory >= 1 && tol >= 0)) {
    throw new Error(
      `trainLinearProbe: expected integers maxIter >= 0 and memory >= 1 and tol >= 0, got ${maxIter}, ${memory}, ${tol}`,
    );
  }
  const n = checkLabelled(xTrain, yTrain, dim, classes, "trainLinearProbe");
  const K = classes;
  const stats = featureStats(xTrain, dim);
  const lambda = 1 / (C * n); // penalty on the mean loss: ||W||^2 / (2 C n), as scikit-learn
  const P = (dim + 1) * K; // parameters: W [dim, K] then b [K]

  const X = tf.tensor2d(standardized(xTrain, dim, stats), [n, dim]); // [n, dim]
  const XT = tf.transpose(X) as tf.Tensor2D; // [dim, n], so no product needs a transpose flag
  const Y = tf.tidy(() => tf.oneHot(tf.tensor1d(yTrain, "int32"), K).toFloat()) as tf.Tensor2D; // [n, K]

  /** Objective and gradient at theta; the data term comes from tfjs, summed in float64 here. */
  const evaluate = async (theta: Float64Array): Promise<{ f: number; g: Float64Array }> => {
    const packed = tf.tidy(() => {
      const W = tf.tensor2d(Float32Array.from(theta.subarray(0, dim * K)), [dim, K]); // [dim, K]
      const b = tf.tensor1d(Float32Array.from(theta.subarray(dim * K))); // [K]
      const logits = tf.matMul(X, W).add(b); // [n, K]
      const lse = tf.logSumExp(logits, 1, true); // [n, 1]
      const ce = lse.reshape([n]).sub(logits.mul(Y).sum(1)); // [n]
      const D = tf.exp(logits.sub(lse)).sub(Y); // [n, K]: softmax - onehot
      const gW = tf.matMul(XT, D); // [dim, K]
      const gb = D.sum(0); // [K]
      return tf.concat([gW.reshape([-1]), gb, ce]); // [dim*K + K + n]
    });
    let v: Float32Array;
    try {
      v = (await packed.data()) as Float32Array;
    } finally {
      packed.dispose();
    }
    let f = 0;
    for (let i = P; i < P + n; i++) f += v[i];
    f /= n;
    const g = new Float64Array(P);
    let reg = 0;
    for (let i = 0; i < dim * K; i++) {
      g[i] = v[i] / n + lambda * theta[i];
      reg += theta[i] * theta[i];
    }
    for (let i = dim * K; i < P; i++) g[i] = v[i] / n;
    return { f: f + 0.5 * lambda * reg, g };
  };

  try {
    let theta = new Float64Array(P);
    let { f, g } = await evaluate(theta);
    const S: Float64Array[] = [], Yh: Float64Array[] = [], rho: number[] = [];
    let iterations = 0, converged = false;
    for (; iterations < maxIter; iterations++) {
      let gmax = 0;
      for (let i = 0; i < P; i++) gmax = Math.max(gmax, Math.abs(g[i]));
      if (gmax <= tol) {
        converged = true;
        break;
      }
      // L-BFGS two-loop recursion: d = -H g.
      const q = Float64Array.from(g);
      const alpha = new Array<number>(S.length);
      for (let i = S.length - 1; i >= 0; i--) {
        alpha[i] = rho[i] * dot(S[i], q);
        for (let j = 0; j < P; j++) q[j] -= alpha[i] * Yh[i][j];
      }
      if (S.length > 0) {
        const last = S.length - 1;
        const gamma = dot(S[last], Yh[last]) / dot(Yh[last], Yh[last]);
        for (let j = 0; j < P; j++) q[j] *= gamma;
      } else {
        const gn = Math.sqrt(dot(g, g));
        for (let j = 0; j < P; j++) q[j] /= Math.max(gn, 1); // first step: length at most 1
      }
      for (let i = 0; i < S.length; i++) {
        const beta = rho[i] * dot(Yh[i], q);
        for (let j = 0; j < P; j++) q[j] += S[i][j] * (alpha[i] - beta);
      }
      const d = q.map((v) => -v);
      let slope = dot(g, d);
      if (!(slope < 0)) {
        // Not a descent direction (float32 noise in the curvature pairs): restart from -g.
        S.length = Yh.length = rho.length = 0;
        for (let j = 0; j < P; j++) d[j] = -g[j];
        slope = -dot(g, g);
      }
      // Backtracking line search with the Armijo condition.
      let t = 1, accepted = false;
      let next = theta, fNext = f, gNext = g;
      for (let tries = 0; tries < 30; tries++) {
        next = theta.map((v, j) => v + t * d[j]);
        ({ f: fNext, g: gNext } = await evaluate(next));
        if (fNext <= f + 1e-4 * t * slope) {
          accepted = true;
          break;
        }
        t *= 0.5;
      }
      if (!accepted) break; // no decrease within float32 precision: as converged as it gets
      const s = next.map((v, j) => v - theta[j]);
      const yv = gNext.map((v, j) => v - g[j]);
      const sy = dot(s, yv);
      if (sy > 1e-12) {
        S.push(s);
        Yh.push(yv);
        rho.push(1 / sy);
        if (S.length > memory) {
          S.shift();
          Yh.shift();
          rho.shift();
        }
      }
      theta = next;
      f = fNext;
      g = gNext;
    }
    return new LinearProbe({
      dim,
      classes: K,
      weights: Float32Array.from(theta.subarray(0, dim * K)),
      bias: Float32Array.from(theta.subarray(dim * K)),
      mean: stats.mean,
      scale: stats.scale,
      iterations,
      converged,
      loss: f,
    });
  } finally {
    X.dispose();
    XT.dispose();
    Y.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// kNN

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
 * import { knnAccuracy } from "./probe.ts";
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

// ---------------------------------------------------------------------------------------------
// The suite

/** One column of the table: a way of choosing the labelled images. */
export interface ProbeSetting {
  /** "1-shot", "5-shot", ..., "1%", "full". */
  name: string;
  /** Labelled images per class. [classes] */
  perClass: number[];
  /** Labelled images in all. */
  labelled: number;
  /** Label subsets drawn (1 for "full"). */
  draws: number;
}

/** Mean and spread of one method in one setting. */
export interface ProbeCell {
  /** Mean accuracy over the draws, in [0, 1]. */
  mean: number;
  /** Sample standard deviation over the draws (0 for a single draw). */
  std: number;
  /** Accuracy of each draw. */
  runs: number[];
}

/** One row of the table: a feature source read by the probe and by kNN. */
export interface ProbeRow {
  /** e.g. "I-JEPA", "random init", "raw pixels"; with the readout when it is not avgpool. */
  method: string;
  /** The encoder's name, or "raw pixels". */
  source: string;
  /** The readout, or "pixels". */
  readout: Readout | "pixels";
  /** Features per image. */
  dim: number;
  /** Linear-probe accuracy per setting (same order as `ProbeTable.settings`). */
  probe: ProbeCell[];
  /** kNN accuracy per setting, or null when kNN is off. */
  knn: ProbeCell[] | null;
  /** Confusion matrix of the probe of the last setting's first draw on the test set ("full" by default). */
  confusion: number[][];
  /** Probe iterations of every fit, flattened setting-major (for the curious). */
  iterations: number[];
  /** Seconds spent computing this row's features (pool and test). */
  featureSeconds: number;
}

/** What {@link runProbeSuite} returns. */
export interface ProbeTable {
  settings: ProbeSetting[];
  rows: ProbeRow[];
  classNames: string[];
  /** Images in the label pool and in the test set. */
  pool: number;
  test: number;
  /** Draws per low-shot setting and the base seed. */
  seeds: number;
  seed: number;
  /** kNN neighbours (0 when off). */
  k: number;
  /** The probe recipe, in words. */
  recipe: string;
  /** Wall-clock seconds: features (all rows), probe fits, kNN. */
  seconds: { features: number; probe: number; knn: number };
}

/** Options of {@link runProbeSuite}. */
export interface ProbeSuiteOptions {
  /** Encoders to read (pass target encoders), each with the name shown in the table. */
  encoders: { name: string; encoder: VisionTransformer }[];
  /** Add the raw-pixel baseline (default true). */
  pixels?: boolean;
  /** The label pool. */
  train: ImageDataset;
  /** The held-out test set. */
  test: ImageDataset;
  /** n-shot settings, labelled images per class (default [1, 5, 10, 50]). */
  shots?: number[];
  /** Add the 1%-of-the-pool setting (default true). */
  onePercent?: boolean;
  /** Add the all-labels setting (default true). */
  full?: boolean;
  /** Label subsets drawn per low-shot setting (default 3). */
  seeds?: number;
  /** Base seed: draw s uses new Rng(seed + s) (default 0). */
  seed?: number;
  /** Readouts of every encoder (default ["avgpool"]). */
  readouts?: Readout[];
  /** Input normalisation (default channelStats(train)). */
  mean?: readonly number[];
  std?: readonly number[];
  /** Images per forward pass of feature extraction (default 256). */
  batchSize?: number;
  /** kNN neighbours (default 20; 0 turns kNN off). */
  k?: number;
  /** Probe recipe overrides (default PROBE_DEFAULTS: keep them for comparable numbers). */
  probe?: ProbeOptions;
  /** Progress lines (e.g. console.error). */
  log?: (line: string) => void;
}

/** The recipe in words, for tables and JSON. */
export function recipeText(opts: ProbeOptions = {}, k = 20): string {
  const o = { ...PROBE_DEFAULTS, ...opts };
  return `logistic regression on standardised features, L2 C=${o.C}, full-batch L-BFGS (max ${o.maxIter} ` +
    `iterations, tol ${o.tol})${k > 0 ? `; kNN cosine k=${k}, T=0.07` : ""}`;
}

function summarise(runs: number[]): ProbeCell {
  const mean = runs.reduce((a, b) => a + b, 0) / runs.length;
  const v = runs.length > 1 ? runs.reduce((a, r) => a + (r - mean) ** 2, 0) / (runs.length - 1) : 0;
  return { mean, std: Math.sqrt(v), runs };
}

/** The settings of a suite for a pool with `counts[c]` images of class c. */
export function probeSettings(
  counts: readonly number[],
  opts: { shots?: number[]; onePercent?: boolean; full?: boolean; seeds?: number } = {},
): ProbeSetting[] {
  const seeds = opts.seeds ?? 3;
  if (!(Number.isInteger(seeds) && seeds >= 1)) {
    throw new Error(`probe: seeds must be a positive integer, got ${seeds}`);
  }
  const K = counts.length;
  const total = counts.reduce((a, b) => a + b, 0);
  const out: ProbeSetting[] = [];
  const smallest = Math.min(...counts);
  for (const s of opts.shots ?? [1, 5, 10, 50]) {
    if (!(Number.isInteger(s) && s >= 1)) throw new Error(`probe: shots must be positive integers, got ${s}`);
    if (s > smallest) {
      throw new Error(
        `probe: ${s}-shot needs ${s} labelled images of every class; the pool's smallest class has ${smallest}`,
      );
    }
    out.push({ name: `${s}-shot`, perClass: new Array(K).fill(s), labelled: s * K, draws: seeds });
  }
  if (opts.onePercent ?? true) {
    const per = counts.map((c) => Math.max(1, Math.round(0.01 * c)));
    out.push({ name: "1%", perClass: per, labelled: per.reduce((a, b) => a + b, 0), draws: seeds });
  }
  if (opts.full ?? true) out.push({ name: "full", perClass: [...counts], labelled: total, draws: 1 });
  if (out.length === 0) throw new Error("probe: no settings: give shots, or keep 1% or full");
  return out;
}

/**
 * Run the whole evaluation: for every encoder and readout, and raw pixels, extract pool and test
 * features once, then for every setting and draw fit the probe and run kNN on the same label
 * subsets, and collect test accuracies with their spread. See the module doc for the protocol.
 * Without the "full" setting, only the pool images some draw labels are encoded.
 */
export async function runProbeSuite(opts: ProbeSuiteOptions): Promise<ProbeTable> {
  const { train, test } = opts;
  const K = train.classNames.length;
  if (test.classNames.length !== K) {
    throw new Error(`probe: the pool has ${K} classes and the test set ${test.classNames.length}`);
  }
  if (train.channels !== test.channels) {
    throw new Error(`probe: the pool has ${train.channels}-channel images and the test set ${test.channels}`);
  }
  const seeds = opts.seeds ?? 3, seed = opts.seed ?? 0, k = opts.k ?? 20;
  const log = opts.log ?? (() => {});
  const counts = new Array<number>(K).fill(0);
  for (const c of train.labels) counts[c]++;
  const settings = probeSettings(counts, { ...opts, seeds });
  // The label subsets, shared by every method: draw s of every setting uses new Rng(seed + s).
  const subsets: Int32Array[][] = settings.map((st) =>
    st.name === "full"
      ? [Int32Array.from({ length: train.n }, (_, i) => i)]
      : Array.from({ length: st.draws }, (_, s) =>
        sampleLabelSubset(train.labels, st.perClass, new Rng(seed + s), K))
  );
  // Only the pool images some setting labels need features (all of them when "full" is on).
  const used = new Uint8Array(train.n);
  for (const draws of subsets) for (const idx of draws) for (const i of idx) used[i] = 1;
  const usedIdx = Int32Array.from({ length: train.n }, (_, i) => i).filter((i) => used[i] === 1);
  const poolDs = usedIdx.length === train.n ? train : subset(train, usedIdx);
  const row = new Int32Array(train.n).fill(-1); // pool index -> row of the pool features
  usedIdx.forEach((i, r) => (row[i] = r));
  const stats = opts.mean && opts.std ? { mean: opts.mean, std: opts.std } : channelStats(train);
  const readouts = opts.readouts ?? ["avgpool"];
  type Source = {
    method: string;
    source: string;
    readout: Readout | "pixels";
    get: () => Promise<[FeatureSet, FeatureSet]>;
  };
  const sources: Source[] = [];
  for (const readout of readouts) {
    for (const { name, encoder } of opts.encoders) {
      const method = readouts.length === 1 && readout === "avgpool" ? name : `${name} (${readout})`;
      const ex = (ds: ImageDataset, what: string) =>
        extractFeatures(encoder, ds, {
          batchSize: opts.batchSize,
          mean: stats.mean,
          std: stats.std,
          readout,
          onProgress: (done, total) => {
            if (done === total || done % (20 * (opts.batchSize ?? 256)) === 0) {
              log(`  ${method}: ${what} features ${done}/${total}`);
            }
          },
        });
      sources.push({
        method,
        source: name,
        readout,
        get: async () => [await ex(poolDs, "pool"), await ex(test, "test")],
      });
    }
  }
  if (opts.pixels ?? true) {
    const size = opts.encoders[0]?.encoder.cfg.imageSize;
    sources.push({
      method: "raw pixels",
      source: "raw pixels",
      readout: "pixels",
      get: () => Promise.resolve([rawPixelFeatures(poolDs, { size }), rawPixelFeatures(test, { size })]),
    });
  }
  if (sources.length === 0) throw new Error("probe: nothing to evaluate: give encoders or keep pixels");

  const seconds = { features: 0, probe: 0, knn: 0 };
  const rows: ProbeRow[] = [];
  for (const src of sources) {
    let t0 = performance.now();
    const [pool, held] = await src.get();
    const featureSeconds = (performance.now() - t0) / 1000;
    seconds.features += featureSeconds;
    log(
      `${src.method}: ${pool.dim} features of ${pool.n} pool and ${held.n} test images in ${
        featureSeconds.toFixed(1)
      } s`,
    );
    const testSet: LabelledFeatures = { ...held, labels: test.labels };
    const probeCells: ProbeCell[] = [], knnCells: ProbeCell[] = [], iterations: number[] = [];
    let confusion: number[][] = [];
    for (let si = 0; si < settings.length; si++) {
      const accs: number[] = [], knns: number[] = [];
      for (let d = 0; d < subsets[si].length; d++) {
        const idx = subsets[si][d];
        const full = idx.length === train.n;
        const x = full
          ? pool.features
          : takeFeatureRows(pool.features, pool.dim, Int32Array.from(idx, (i) => row[i]));
        const y = full ? train.labels : Int32Array.from(idx, (i) => train.labels[i]);
        t0 = performance.now();
        const probe = await trainLinearProbe(x, y, pool.dim, K, opts.probe);
        const pred = probe.predict(held.features);
        seconds.probe += (performance.now() - t0) / 1000;
        iterations.push(probe.iterations);
        let right = 0;
        for (let i = 0; i < pred.length; i++) if (pred[i] === test.labels[i]) right++;
        accs.push(right / pred.length);
        if (si === settings.length - 1 && d === 0) confusion = confusionMatrix(test.labels, pred, K);
        if (k > 0) {
          t0 = performance.now();
          knns.push(
            await knnAccuracy({ features: x, dim: pool.dim, n: idx.length, labels: y }, testSet, k, {
              classes: K,
            }),
          );
          seconds.knn += (performance.now() - t0) / 1000;
        }
      }
      probeCells.push(summarise(accs));
      if (k > 0) knnCells.push(summarise(knns));
      const last = probeCells[probeCells.length - 1];
      log(
        `  ${settings[si].name}: probe ${(100 * last.mean).toFixed(1)}%` +
          (k > 0 ? `, kNN ${(100 * knnCells[knnCells.length - 1].mean).toFixed(1)}%` : ""),
      );
    }
    rows.push({
      method: src.method,
      source: src.source,
      readout: src.readout,
      dim: pool.dim,
      probe: probeCells,
      knn: k > 0 ? knnCells : null,
      confusion,
      iterations,
      featureSeconds,
    });
  }
  return {
    settings,
    rows,
    classNames: [...train.classNames],
    pool: train.n,
    test: test.n,
    seeds,
    seed,
    k,
    recipe: recipeText(opts.probe, k),
    seconds,
  };
}

// ---------------------------------------------------------------------------------------------
// Output

function settingHeader(s: ProbeSetting): string {
  if (s.name === "full") return `full (${s.labelled})`;
  if (s.name === "1%") {
    const same = s.perClass.every((p) => p === s.perClass[0]);
    return `1% (${same ? `${s.perClass[0]}/class` : s.labelled})`;
  }
  return s.name;
}

/**
 * The table as text: one block for the linear probe and one for kNN, a row per method, a column
 * per setting, `mean ± std` in percent over the draws.
 *
 * @example
 * ```ts
 * import { formatProbeTable, type ProbeTable } from "./probe.ts";
 * const cell = (m: number) => ({ mean: m, std: 0.01, runs: [m - 0.01, m + 0.01] });
 * const table: ProbeTable = {
 *   settings: [{ name: "1-shot", perClass: [1, 1], labelled: 2, draws: 2 }],
 *   rows: [{ method: "raw pixels", source: "raw pixels", readout: "pixels", dim: 4, probe: [cell(0.6)],
 *     knn: null, confusion: [], iterations: [], featureSeconds: 0 }],
 *   classNames: ["a", "b"], pool: 10, test: 4, seeds: 2, seed: 0, k: 0, recipe: "demo",
 *   seconds: { features: 0, probe: 0, knn: 0 },
 * };
 * if (!formatProbeTable(table).includes("60.0 ± 1.0")) throw new Error(formatProbeTable(table));
 * ```
 */
export function formatProbeTable(table: ProbeTable): string {
  const heads = table.settings.map(settingHeader);
  const colW = Math.max(12, ...heads.map((h) => h.length + 1));
  const nameW = Math.max(22, ...table.rows.map((r) => r.method.length + 2));
  const cellText = (c: ProbeCell, draws: number) =>
    draws > 1 ? `${(100 * c.mean).toFixed(1)} ± ${(100 * c.std).toFixed(1)}` : (100 * c.mean).toFixed(1);
  const block = (title: string, pick: (r: ProbeRow) => ProbeCell[] | null) => {
    const lines = [
      title,
      "method".padEnd(nameW) + "dim".padStart(6) + heads.map((h) => h.padStart(colW)).join(""),
    ];
    for (const r of table.rows) {
      const cells = pick(r);
      if (!cells) continue;
      lines.push(
        r.method.padEnd(nameW) + String(r.dim).padStart(6) +
          cells.map((c, i) => cellText(c, table.settings[i].draws).padStart(colW)).join(""),
      );
    }
    return lines.join("\n");
  };
  const out = [
    block(
      `Linear probe: test accuracy %, mean ± std over ${table.seeds} label draw${
        table.seeds > 1 ? "s" : ""
      } ` +
        `(pool ${table.pool}, test ${table.test})`,
      (r) => r.probe,
    ),
  ];
  if (table.k > 0) out.push("", block(`kNN (cosine, k=${table.k}): test accuracy %`, (r) => r.knn));
  out.push("", `recipe: ${table.recipe}`);
  return out.join("\n");
}

/**
 * The probe accuracies as rows for lib/viz/plot.ts `plotBars` (percent; one group per setting, one bar
 * per method, error bars = std over draws).
 */
export function probeBars(table: ProbeTable, which: "probe" | "knn" = "probe"): {
  group: string;
  label: string;
  mean: number;
  std: number;
}[] {
  return table.rows.flatMap((r) =>
    (which === "probe" ? r.probe : r.knn ?? []).map((c, i) => ({
      group: settingHeader(table.settings[i]),
      label: r.method,
      mean: 100 * c.mean,
      std: 100 * c.std,
    }))
  );
}
