/**
 * RankMe (Garrido et al., ICML 2023): the effective rank of a set of embeddings, a collapse watch that
 * needs no labels (here on centered features by default: see {@link rankMe}). With s_k the singular
 * values of the [n, d] feature matrix and p_k = s_k / sum(s) + eps, RankMe = exp(-sum_k p_k log p_k):
 * d for features spread evenly over all directions, 1 for features on a line, in between for the
 * usual case. An encoder whose features fold onto few directions shows a falling RankMe while its
 * loss can still fall.
 *
 * The singular values come from the eigenvalues of the smaller Gram matrix, X^T X or X X^T
 * (s_k = sqrt(lambda_k)), computed in float64: Householder reduction to a tridiagonal matrix, then
 * the implicit-shift QL iteration (eigenvalues only), O(size^3) in all.
 *
 * @example
 * ```ts
 * import { rankMe } from "./rankme.ts";
 * // four points spread evenly over two axes: effective rank 2
 * const x = Float32Array.from([1, 0, -1, 0, 0, 1, 0, -1]);
 * const r = rankMe(x, 2);
 * if (Math.abs(r - 2) > 1e-6) throw new Error(`RankMe ${r}`);
 * ```
 * @module
 */

/** RankMe's epsilon (the paper's 1e-7), which keeps log p finite for zero singular values. */
export const RANKME_EPS = 1e-7;

/** The largest min(rows, features) {@link rankMe} takes on (its eigenproblem is that size, O(size^3)). */
export const RANKME_MAX_SIZE = 2048;

/**
 * The effective rank of features x [n, dim] (row-major): about 1 (all rows on one line) up to
 * min(n, dim) (min(n - 1, dim) centered; the epsilon can lift an even spread a hair above it). NaN
 * when a feature is NaN or infinite, or when min(n, dim) is over {@link RANKME_MAX_SIZE} (the
 * eigenproblem would take minutes: raw pixels of 224 px images, pool2x2 readouts of large encoders).
 *
 * With `center` (the default here; the paper does not center) each feature's mean over the rows is
 * removed first. Why we depart: average-pooled ViT features share a large mean vector that takes the
 * top singular value, so uncentered RankMe mostly measures the mean against the spread (our random-init
 * encoder reads 1.7 of 192 uncentered on the shipped test set, while a linear probe on it reaches 40%
 * at 1%). What centering gives up: it watches dimensional collapse (features on few directions), not
 * complete collapse (every image on one vector), whose tiny leftover spread can still read as high
 * rank; the trainer's target-feature std (`targetStd`) watches that one.
 */
export function rankMe(x: ArrayLike<number>, dim: number, opts: { center?: boolean } = {}): number {
  if (!(Number.isInteger(dim) && dim > 0) || x.length % dim !== 0 || x.length === 0) {
    throw new Error(`rankMe: expected a non-empty [n, ${dim}] feature matrix, got ${x.length} values`);
  }
  const n = x.length / dim;
  const size = Math.min(n, dim);
  if (size > RANKME_MAX_SIZE) return NaN;
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return NaN;
  const mean = new Float64Array(dim);
  if (opts.center ?? true) {
    for (let r = 0; r < n; r++) for (let i = 0; i < dim; i++) mean[i] += x[r * dim + i];
    for (let i = 0; i < dim; i++) mean[i] /= n;
  }
  // the nonzero eigenvalues of X^T X [dim, dim] and X X^T [n, n] are the same: take the smaller
  const gram = dim <= n ? featureGram(x, n, dim, mean) : rowGram(x, n, dim, mean);
  const s = symmetricEigenvalues(gram, size).map((l) => Math.sqrt(Math.max(0, l)));
  const total = s.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return 1; // all-zero features: one point, rank 1 by convention
  let h = 0;
  for (const v of s) {
    const p = v / total + RANKME_EPS;
    h -= p * Math.log(p);
  }
  return Math.exp(h);
}

/** (X - mean)^T (X - mean), [dim, dim], in float64. */
function featureGram(x: ArrayLike<number>, n: number, dim: number, mean: Float64Array): Float64Array {
  const gram = new Float64Array(dim * dim);
  const row = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < dim; i++) row[i] = x[r * dim + i] - mean[i];
    for (let i = 0; i < dim; i++) {
      const xi = row[i];
      if (xi === 0) continue;
      const gi = i * dim;
      for (let j = i; j < dim; j++) gram[gi + j] += xi * row[j];
    }
  }
  for (let i = 0; i < dim; i++) for (let j = 0; j < i; j++) gram[i * dim + j] = gram[j * dim + i];
  return gram;
}

/** (X - mean) (X - mean)^T, [n, n], in float64. */
function rowGram(x: ArrayLike<number>, n: number, dim: number, mean: Float64Array): Float64Array {
  const rows = new Float64Array(n * dim);
  for (let r = 0; r < n; r++) for (let i = 0; i < dim; i++) rows[r * dim + i] = x[r * dim + i] - mean[i];
  const gram = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    for (let b = 0; b <= a; b++) {
      let t = 0;
      for (let i = 0; i < dim; i++) t += rows[a * dim + i] * rows[b * dim + i];
      gram[a * n + b] = t;
      gram[b * n + a] = t;
    }
  }
  return gram;
}

/**
 * The eigenvalues of the symmetric n x n matrix a (row-major; overwritten), in no particular order:
 * Householder tridiagonalisation, then QL with implicit Wilkinson shifts.
 */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  if (a.length !== n * n) throw new Error(`symmetricEigenvalues: expected ${n * n} values, got ${a.length}`);
  const d = new Float64Array(n), e = new Float64Array(n);
  // Householder: for each column k, a reflection H = I - beta v v^T maps a[k+1.., k] onto its first
  // entry (alpha, which becomes the off-diagonal e[k]) and is applied to the whole trailing block
  // B = a[k+1.., k+1..] (both triangles) as H B H = B - v q^T - q v^T, with p = beta B v and
  // q = p - (beta v.p / 2) v. Column k itself is not rewritten: only e[k] is read from it.
  const v = new Float64Array(n), q = new Float64Array(n);
  for (let k = 0; k + 2 < n; k++) {
    let norm = 0;
    for (let i = k + 1; i < n; i++) norm += a[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    const x0 = a[(k + 1) * n + k];
    const alpha = x0 > 0 ? -norm : norm;
    e[k] = alpha;
    if (norm === 0) continue;
    for (let i = k + 1; i < n; i++) v[i] = a[i * n + k];
    v[k + 1] -= alpha;
    let vv = 0;
    for (let i = k + 1; i < n; i++) vv += v[i] * v[i];
    if (vv === 0) continue;
    const beta = 2 / vv;
    let vp = 0;
    for (let i = k + 1; i < n; i++) {
      let t = 0;
      for (let j = k + 1; j < n; j++) t += a[i * n + j] * v[j];
      q[i] = beta * t;
      vp += v[i] * q[i];
    }
    const half = (beta * vp) / 2;
    for (let i = k + 1; i < n; i++) q[i] -= half * v[i];
    for (let i = k + 1; i < n; i++) {
      for (let j = k + 1; j < n; j++) a[i * n + j] -= v[i] * q[j] + q[i] * v[j];
    }
  }
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  if (n >= 2) e[n - 2] = a[(n - 1) * n + n - 2];
  // QL with implicit shifts on the tridiagonal: diagonal d, e[i] between rows i and i + 1. An
  // off-diagonal counts as zero below EPS x the matrix's size (not only EPS x its two neighbours,
  // which never deflates a cluster of near-zero eigenvalues: the rank-deficient Gram matrices of
  // fewer images than features have them); eigenvalue errors are of that size anyway.
  if (n > 0) e[n - 1] = 0;
  let size = 0;
  for (let i = 0; i < n; i++) size = Math.max(size, Math.abs(d[i]) + Math.abs(e[i]));
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= Number.EPSILON * (dd + size)) break;
      }
      if (m === l) break;
      if (++iter > 60) throw new Error("symmetricEigenvalues: the QL iteration did not converge");
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1, c = 1, p = 0;
      let i = m - 1;
      for (; i >= l; i--) {
        let f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] -= p;
          e[m] = 0;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        f = 0;
      }
      if (r === 0 && i >= l) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return d;
}
