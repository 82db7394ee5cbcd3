/**
 * Principal component analysis of a feature matrix ({@link pca}), deterministic, and projection of
 * new rows onto a fitted basis ({@link pcaProject}). Covariance, or the Gram matrix when there are
 * fewer rows than features, then the eigen solver of lib/inside/eigen.ts.
 *
 * @module
 */
import { completeBasis, orthogonalise, topEigen, toUnitLength } from "./eigen.ts";

/** Principal components of a [n, dim] matrix, largest variance first. */
export interface PCAResult {
  /** Feature mean the data was centred with. [dim] */
  mean: Float32Array;
  /** Orthonormal components, one per row, largest variance first. [k, dim] */
  components: Float32Array;
  /** The centred rows in component coordinates: `(x - mean) . components^T`. [n, k] */
  projected: Float32Array;
  /** Variance along each component (sample variance, n - 1 in the denominator). [k] */
  variance: number[];
  /** Fraction of the total variance along each component, in [0, 1]. [k] */
  explained: number[];
  /** Number of components. */
  k: number;
  /** Features per row. */
  dim: number;
}

/** Options of {@link pca}. */
export interface PCAOptions {
  /** Most subspace iterations (default 500). */
  maxIter?: number;
  /** Stop when every Ritz residual is below `tol` times the largest eigenvalue (default 1e-9). */
  tol?: number;
}

/**
 * Principal component analysis of `x` ([n, dim], row-major): the `k` directions of largest variance,
 * the data projected on them and the share of variance each explains. Deterministic: the same data
 * gives the same components, and each component's sign is fixed so its largest |loading| is
 * positive. Runs in float64 on the covariance matrix [dim, dim], or on the Gram matrix [n, n] when
 * there are fewer rows than features, by subspace iteration (k + 8 vectors, from a fixed seed) with
 * a Rayleigh-Ritz step each iteration.
 *
 * @example
 * ```ts
 * import { pca } from "./pca.ts";
 * // Points spread 3x more along x than along y: the first component is the x axis.
 * const x = new Float32Array([-3, -1, 3, 1, -3, 1, 3, -1]); // [4, 2]
 * const { components, explained } = pca(x, 4, 2, 2);
 * if (Math.abs(components[0] - 1) > 1e-9 || Math.abs(explained[0] - 0.9) > 1e-9) throw new Error("pca");
 * ```
 */
export function pca(x: Float32Array, n: number, dim: number, k: number, opts: PCAOptions = {}): PCAResult {
  for (const key of Object.keys(opts)) {
    if (key !== "maxIter" && key !== "tol") {
      throw new Error(`pca: unknown option "${key}"; expected maxIter or tol`);
    }
  }
  if (!(Number.isInteger(n) && n >= 1 && Number.isInteger(dim) && dim >= 1)) {
    throw new Error(`pca: expected positive integers n and dim, got n ${n} and dim ${dim}`);
  }
  if (x.length !== n * dim) {
    throw new Error(`pca: expected ${n} x ${dim} = ${n * dim} values, got ${x.length}`);
  }
  if (!(Number.isInteger(k) && k >= 1 && k <= Math.min(n, dim))) {
    throw new Error(
      `pca: k must be an integer from 1 to min(n, dim) = ${Math.min(n, dim)} (n ${n}, dim ${dim}), got ${k}`,
    );
  }
  const maxIter = opts.maxIter ?? 500, tol = opts.tol ?? 1e-9;
  // Centre in float64. [n, dim]
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += x[i * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= n;
  const xc = new Float64Array(n * dim);
  let total = 0; // sum of squares = (n - 1) * total variance
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) {
      const v = x[i * dim + j] - mean[j];
      if (!Number.isFinite(v)) {
        throw new Error(`pca: value ${x[i * dim + j]} at row ${i}, column ${j} is not finite`);
      }
      xc[i * dim + j] = v;
      total += v * v;
    }
  }
  const denom = Math.max(1, n - 1);
  const dual = n < dim; // the Gram matrix is the smaller one
  const m = dual ? n : dim;
  const S = dual ? gram(xc, n, dim) : scatter(xc, n, dim); // [m, m], symmetric
  const { values, vectors } = topEigen(S, m, k, maxIter, tol); // vectors [k, m]
  const components = new Float64Array(k * dim); // [k, dim]
  if (!dual) {
    components.set(vectors);
  } else {
    // v = Xc^T u / |Xc^T u|: the feature-space direction of each Gram eigenvector.
    for (let c = 0; c < k; c++) {
      const v = components.subarray(c * dim, (c + 1) * dim);
      for (let i = 0; i < n; i++) {
        const u = vectors[c * m + i];
        if (u === 0) continue;
        for (let j = 0; j < dim; j++) v[j] += u * xc[i * dim + j];
      }
      // Zero-variance directions have no image: complete them orthonormally from the unit vectors.
      if (!(values[c] > 1e-12 * Math.max(values[0], 1e-300)) || !toUnitLength(v)) {
        completeBasis(components, c, dim);
      } else orthogonalise(components, c, dim);
    }
  }
  const projected = new Float64Array(n * k);
  for (let c = 0; c < k; c++) {
    const v = components.subarray(c * dim, (c + 1) * dim);
    // Sign: the largest |loading| is positive (ties: the first such loading).
    let best = 0;
    for (let j = 1; j < dim; j++) if (Math.abs(v[j]) > Math.abs(v[best]) + 1e-12) best = j;
    if (v[best] < 0) { for (let j = 0; j < dim; j++) v[j] = -v[j]; }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += xc[i * dim + j] * v[j];
      projected[i * k + c] = s;
    }
  }
  const variance = Array.from(values.subarray(0, k), (l) => Math.max(0, l) / denom);
  const totalVar = total / denom;
  return {
    mean: Float32Array.from(mean),
    components: Float32Array.from(components),
    projected: Float32Array.from(projected),
    variance,
    explained: variance.map((v) => (totalVar > 0 ? v / totalVar : 0)),
    k,
    dim,
  };
}

/**
 * Project rows [n, dim] onto a fitted PCA's components: [n, k] (new data in an old basis, e.g. one
 * image's patches in a basis fitted on many images).
 *
 * @example
 * ```ts
 * import { pca, pcaProject } from "./pca.ts";
 * const basis = pca(new Float32Array([0, 0, 2, 0, 4, 0]), 3, 2, 1); // points on the x axis, mean (2, 0)
 * const p = pcaProject(basis, new Float32Array([5, 7]));
 * if (Math.abs(p[0] - 3) > 1e-6) throw new Error(`expected 3, got ${p[0]}`);
 * ```
 */
export function pcaProject(basis: PCAResult, x: Float32Array): Float32Array {
  const { dim, k, mean, components } = basis;
  if (x.length % dim !== 0) {
    throw new Error(`pcaProject: expected rows of ${dim} features, got ${x.length} values`);
  }
  const n = x.length / dim;
  const out = new Float32Array(n * k); // [n, k]
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += (x[i * dim + j] - mean[j]) * components[c * dim + j];
      out[i * k + c] = s;
    }
  }
  return out;
}

/** Xc^T Xc, the scatter matrix [dim, dim] (full, symmetric). */
function scatter(xc: Float64Array, n: number, dim: number): Float64Array {
  const S = new Float64Array(dim * dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let a = 0; a < dim; a++) {
      const xa = xc[o + a];
      if (xa === 0) continue;
      const r = a * dim;
      for (let b = a; b < dim; b++) S[r + b] += xa * xc[o + b];
    }
  }
  for (let a = 0; a < dim; a++) for (let b = 0; b < a; b++) S[a * dim + b] = S[b * dim + a];
  return S;
}

/** Xc Xc^T, the Gram matrix [n, n]. */
function gram(xc: Float64Array, n: number, dim: number): Float64Array {
  const G = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    for (let b = a; b < n; b++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += xc[a * dim + j] * xc[b * dim + j];
      G[a * n + b] = G[b * n + a] = s;
    }
  }
  return G;
}
