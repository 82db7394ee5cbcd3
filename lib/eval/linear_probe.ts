/**
 * The linear probe on frozen features: a multinomial logistic regression fitted full-batch by
 * L-BFGS, with one fixed recipe ({@link trainLinearProbe}):
 *
 * Features are standardised with the mean and std of the labelled images the probe trains on. A
 * multinomial logistic regression minimises `mean cross-entropy + ||W||^2 / (2 C n)` with C = 1 (the
 * bias is not penalised): the objective of scikit-learn's `LogisticRegression(C=1.0)`, the common
 * default for probes on frozen features, so the penalty is relatively stronger with fewer labels. It
 * is solved full-batch by L-BFGS (memory 30, backtracking Armijo line search) from zero weights until
 * every gradient entry is below 1e-4 (scikit-learn's `tol`), for at most 1000 iterations. Departure
 * from scikit-learn's `max_iter=100`: a random-init encoder's features are ill-conditioned and need
 * 500-900 iterations on all labels (measured, random-init `quick` encoder on the shipped subset:
 * 68.8% at 100 iterations, 74.1% converged), so a cap of 100 would handicap exactly the baseline
 * that must be fair. No randomness at all: the same features give the same probe. The two matrix
 * products per step run in tfjs on the active backend (BLAS on wasm/cpu); the optimizer state is
 * float64 in JS.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { trainLinearProbe } from "./linear_probe.ts";
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
import { argmax, checkFeatures, checkLabelled, featureStats, standardized } from "./feature_matrix.ts";

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
  /** Standardisation: per-feature mean of the training features. [dim] */
  readonly mean: Float64Array;
  /** 1/std of each training feature. [dim] */
  readonly scale: Float64Array;
  /** L-BFGS iterations run. */
  readonly iterations: number;
  /** Whether the gradient tolerance was met. */
  readonly converged: boolean;
  /** The final value of the objective. */
  readonly loss: number;
  // Standardisation folded into the weights, for prediction on raw features: [dim, K] and [K].
  #w: Float64Array;
  #b: Float64Array;

  /** A probe from its fields (as `trainLinearProbe` fits them). */
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
