/**
 * SIGReg, the collapse term of LeJEPA (Balestriero and LeCun, 2025): push the distribution of the
 * encoder's output tokens toward an isotropic standard Gaussian, one random direction at a time.
 *
 * For each of K random unit directions a, the tokens' projections z = x a are compared with N(0, 1)
 * by the Epps-Pulley statistic: N times the integral over t of |phi_z(t) - exp(-t^2 / 2)|^2 w(t), where
 * phi_z(t) = mean_n exp(i t z_n) is the empirical characteristic function and w(t) = exp(-t^2 / 2).
 * For N(0, 1) projections its mean is about 1.06 whatever N is; a mismatch makes it grow with N.
 * The integrand is even in t, so we integrate over [0, 3] with the trapezoid rule on 17 knots and
 * double it (LeJEPA's quadrature). The term is the mean of the statistic over the K directions.
 *
 * Where we use it and how it differs from LeJEPA: LeJEPA regularises one embedding per view of an
 * image, after a projector. We have no projector, and the model setting `sigregOn` picks the samples:
 * `images` (the default), one embedding per image, the mean of the context encoder's output tokens
 * (the probes read the same kind of average); or `tokens`, every context token, as our VICReg terms
 * (tokens of one image are not independent draws; the term asks only their marginal distribution to
 * be Gaussian). Padded context slots, when masks are padded, count in either. Per token costs: the
 * [tokens, slices, knots] tensor for the 1088 context tokens of the quick preset's batch doubled the
 * CPU step time (about 470 to 840-940 ms), where 64 image embeddings add about 30 ms. The directions
 * come from our seeded {@link Rng} (the trainer passes one per step), so a run and its resumed copy
 * draw the same ones on every backend.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Rng } from "../engine/rng.ts";
 * import { sigReg, sigRegDirections } from "./sigreg.ts";
 * await tf.setBackend("cpu");
 * const rng = new Rng(0);
 * const D = 8, N = 2000;
 * const gauss = tf.tensor2d(Float32Array.from({ length: N * D }, () => rng.normal()), [N, D]);
 * const dirs = tf.tensor2d(sigRegDirections(rng, D, 32), [D, 32]);
 * const low = sigReg(gauss, dirs).dataSync()[0];
 * const high = sigReg(gauss.mul(0.1) as tf.Tensor2D, dirs).dataSync()[0];
 * if (!(low < 3 && high > 10 * low)) throw new Error(`Gaussian ${low}, shrunk ${high}`);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../engine/rng.ts";
import { matMul } from "../engine/matmul.ts";
import type { Scalar, Tensor2D } from "../engine/tensor_types.ts";

/** Random directions per step (LeJEPA's default). */
export const SIGREG_SLICES = 256;
/** Quadrature knots on [0, {@link SIGREG_T_MAX}]. */
export const SIGREG_KNOTS = 17;
/** Upper end of the integral over t. */
export const SIGREG_T_MAX = 3;

/** The knots t_j and their weights (trapezoid on [0, tMax], doubled for [-tMax, tMax], times w(t)). */
export function sigRegQuadrature(
  knots = SIGREG_KNOTS,
  tMax = SIGREG_T_MAX,
): { t: number[]; weight: number[] } {
  if (!(Number.isInteger(knots) && knots >= 2 && tMax > 0)) {
    throw new RangeError(`sigRegQuadrature: expected knots >= 2 and tMax > 0, got ${knots} and ${tMax}`);
  }
  const dt = tMax / (knots - 1);
  const t = Array.from({ length: knots }, (_, j) => j * dt);
  const weight = t.map((tj, j) => (j === 0 || j === knots - 1 ? dt : 2 * dt) * Math.exp(-tj * tj / 2));
  return { t, weight };
}

/**
 * The generator of a training step's SIGReg directions: a function of the run's seed and the step
 * only, so that a resumed run draws what the uninterrupted one drew, and steps and seeds differ.
 */
export function sigRegRng(seed: number, step: number): Rng {
  return new Rng(Math.imul(seed + 1, 0x9e3779b1) ^ step);
}

/** `slices` random unit vectors in R^dim, as the columns of a [dim, slices] row-major matrix. */
export function sigRegDirections(rng: Rng, dim: number, slices = SIGREG_SLICES): Float32Array {
  if (!(Number.isInteger(dim) && dim > 0 && Number.isInteger(slices) && slices > 0)) {
    throw new RangeError(
      `sigRegDirections: expected positive integer sizes, got dim ${dim}, slices ${slices}`,
    );
  }
  const a = new Float64Array(dim * slices);
  for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  const out = new Float32Array(dim * slices);
  for (let k = 0; k < slices; k++) {
    let n = 0;
    for (let d = 0; d < dim; d++) n += a[d * slices + k] ** 2;
    const s = 1 / Math.sqrt(n);
    for (let d = 0; d < dim; d++) out[d * slices + k] = a[d * slices + k] * s;
  }
  return out;
}

/**
 * The SIGReg term of tokens x [N, D] along the columns of `directions` [D, K]: the Epps-Pulley
 * statistic against N(0, 1), averaged over the K directions. About 1.06 for Gaussian tokens of unit
 * variance in every direction, whatever N is; it grows with N when they are not.
 */
export function sigReg(x: Tensor2D, directions: Tensor2D): Scalar {
  const [N, D] = x.shape;
  if (directions.shape[0] !== D) {
    throw new Error(`sigReg: directions [${directions.shape}] must have ${D} rows, the tokens' width`);
  }
  const { t, weight } = sigRegQuadrature();
  return tf.tidy(() => {
    const tz = matMul(x, directions).expandDims(2).mul(tf.tensor1d(t)); // [N, K, J]
    const target = tf.tensor1d(t.map((tj) => Math.exp(-tj * tj / 2))); // N(0, 1)'s characteristic function
    const re = tz.cos().mean(0).sub(target); // [K, J]
    const im = tz.sin().mean(0);
    const perDirection = re.square().add(im.square()).mul(tf.tensor1d(weight)).sum(1); // [K]
    return perDirection.mean().mul(N) as Scalar;
  });
}
