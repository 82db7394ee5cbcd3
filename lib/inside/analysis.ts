/**
 * Looking inside the representations: principal components, patch features as colours, and
 * nearest-patch retrieval, for the notebooks that show what an I-JEPA encoder (and its predictor)
 * sees.
 *
 * - {@link pca}: principal components of a feature matrix, deterministic (covariance, or the Gram
 *   matrix when there are fewer rows than features, then subspace iteration with Rayleigh-Ritz;
 *   signs fixed so each component's largest |loading| is positive).
 * - {@link patchColours}: one image's patch features as RGB, the first 3 principal components
 *   scaled to 0-255 (the view DINO and DINOv2 made common), with {@link patchColourImage} to draw
 *   them over the image.
 * - {@link patchBank} and {@link nearestPatches}: the target encoder's features of every patch of
 *   many images, layer-normalised as I-JEPA's regression targets are, and the bank patches most
 *   cosine-similar to given features (the predictor's outputs, say). The official code's users keep
 *   asking for a picture of what the predictor predicts; there is no pixel decoder in I-JEPA, so we
 *   show the real patches whose representations lie nearest to the prediction.
 * - {@link predictBlocks}: the predictor's outputs for one image's target blocks, with the
 *   targets the loss compares them with ({@link denormalizePixels} draws a pixel-mode model's).
 * - {@link cutPatch}, {@link imageAt}, {@link pastePatches}, {@link highlightPatch}: pixels of one patch or image, ready for
 *   lib/viz/plot.ts `plotImages`; {@link adaptImages} resizes a dataset and matches its channels to a
 *   model (grey Fashion-MNIST for an RGB checkpoint).
 *
 * Everything but {@link patchBank} is plain TypeScript on Float32Arrays: no tensors, no backend.
 *
 * @example
 * ```ts
 * import { nearestPatches, pca } from "./analysis.ts";
 * // Four points on the line y = 2x in 2-D: one component carries all the variance.
 * const x = new Float32Array([0, 0, 1, 2, 2, 4, 3, 6]); // [4, 2]
 * const p = pca(x, 4, 2, 1);
 * if (Math.abs(p.explained[0] - 1) > 1e-9) throw new Error(`explained ${p.explained[0]}`);
 * // Four patches of one image; the two most cosine-similar to (0.9, 0.3) are rows 0 and 2.
 * const features = new Float32Array([1, 0, 0, 1, 0.7, 0.7, -1, 0]); // [4, 2]
 * const bank = { features, dim: 2, n: 4, image: new Int32Array(4), patch: Int32Array.from([0, 1, 2, 3]) };
 * const hit = nearestPatches(new Float32Array([0.9, 0.3]), bank, 2);
 * if (hit.index.join() !== "0,2") throw new Error(`got ${hit.index.join()}`);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { resizeCrop } from "../data/augment.ts";
import type { ImageDataset } from "../data/data.ts";
import { modelInput } from "../eval/features.ts";
import { type IJEPA, TARGET_EPS } from "../model/ijepa.ts";
import { layerNorm } from "../engine/ops.ts";
import type { PlotImage } from "../viz/plot.ts";
import type { CollatedMasks } from "../model/predictor.ts";
import { Rng } from "../engine/rng.ts";
import type { VisionTransformer } from "../model/vit.ts";

// ---------------------------------------------------------------------------------------------
// PCA

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
 * import { pca } from "./analysis.ts";
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
      if (!(values[c] > 1e-12 * Math.max(values[0], 1e-300)) || !normalise(v)) {
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
 * import { pca, pcaProject } from "./analysis.ts";
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

function normalise(v: Float64Array): boolean {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j] * v[j];
  if (!(s > 0)) return false;
  const inv = 1 / Math.sqrt(s);
  for (let j = 0; j < v.length; j++) v[j] *= inv;
  return true;
}

/** Re-orthogonalise row c of `rows` [*, dim] against rows 0..c-1 (Gram-Schmidt, once more). */
function orthogonalise(rows: Float64Array, c: number, dim: number): void {
  const v = rows.subarray(c * dim, (c + 1) * dim);
  for (let p = 0; p < c; p++) {
    const u = rows.subarray(p * dim, (p + 1) * dim);
    let d = 0;
    for (let j = 0; j < dim; j++) d += u[j] * v[j];
    for (let j = 0; j < dim; j++) v[j] -= d * u[j];
  }
  normalise(v);
}

/** Fill row c with the first unit vector that is independent of rows 0..c-1, made orthonormal. */
function completeBasis(rows: Float64Array, c: number, dim: number): void {
  const v = rows.subarray(c * dim, (c + 1) * dim);
  for (let e = 0; e < dim; e++) {
    v.fill(0);
    v[e] = 1;
    for (let p = 0; p < c; p++) {
      const u = rows.subarray(p * dim, (p + 1) * dim);
      const d = u[e];
      for (let j = 0; j < dim; j++) v[j] -= d * u[j];
    }
    if (normalise(v)) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += v[j] * v[j];
      if (Math.abs(s - 1) < 1e-9) return;
    }
  }
}

/**
 * The k largest eigenvalues and their eigenvectors [k, m] of a symmetric m x m matrix, by subspace
 * iteration on p = min(m, k + 8) vectors with a Rayleigh-Ritz step (Jacobi on the p x p projection).
 */
function topEigen(
  S: Float64Array,
  m: number,
  k: number,
  maxIter: number,
  tol: number,
): { values: Float64Array; vectors: Float64Array } {
  const p = Math.min(m, k + 8);
  // Q [p, m]: rows are the basis vectors, drawn from a fixed seed (the result does not depend on it
  // beyond the arbitrary rotation inside a repeated eigenvalue's eigenspace).
  const rng = new Rng(0x9ca);
  let Q = new Float64Array(p * m);
  for (let i = 0; i < Q.length; i++) Q[i] = rng.normal();
  orthonormalRows(Q, p, m);
  const W = new Float64Array(p * m); // S Q, row-wise
  const values = new Float64Array(p);
  let vectors = new Float64Array(p * m);
  let scale = 0;
  for (let i = 0; i < m; i++) scale = Math.max(scale, Math.abs(S[i * m + i]));
  for (let iter = 0; iter < Math.max(1, maxIter); iter++) {
    multiplyRows(S, Q, W, p, m); // W = rows of S Q
    // T = Q^T S Q [p, p]
    const T = new Float64Array(p * p);
    for (let a = 0; a < p; a++) {
      for (let b = a; b < p; b++) {
        let s = 0;
        for (let j = 0; j < m; j++) s += Q[a * m + j] * W[b * m + j];
        T[a * p + b] = T[b * p + a] = s;
      }
    }
    const { values: theta, vectors: U } = jacobiEigen(T, p); // descending; U rows are eigenvectors
    // Ritz vectors V = U Q and S V = U W.
    vectors = new Float64Array(p * m);
    const SV = new Float64Array(p * m);
    for (let a = 0; a < p; a++) {
      for (let b = 0; b < p; b++) {
        const u = U[a * p + b];
        if (u === 0) continue;
        for (let j = 0; j < m; j++) {
          vectors[a * m + j] += u * Q[b * m + j];
          SV[a * m + j] += u * W[b * m + j];
        }
      }
    }
    values.set(theta);
    // Converged when the top k residuals |S v - theta v| are small against the largest eigenvalue.
    const ref = Math.max(Math.abs(theta[0]), scale * 1e-12, 1e-300);
    let worst = 0;
    for (let a = 0; a < k; a++) {
      let r = 0;
      for (let j = 0; j < m; j++) {
        const d = SV[a * m + j] - theta[a] * vectors[a * m + j];
        r += d * d;
      }
      worst = Math.max(worst, Math.sqrt(r) / ref);
    }
    if (worst < tol) break;
    // Next basis: the Ritz vectors pushed once more through S.
    Q = SV;
    orthonormalRows(Q, p, m);
  }
  return { values: values.subarray(0, k), vectors: vectors.subarray(0, k * m) };
}

/** out[r] = S q_r for the p rows q_r of Q [p, m]. */
function multiplyRows(S: Float64Array, Q: Float64Array, out: Float64Array, p: number, m: number): void {
  out.fill(0);
  for (let i = 0; i < m; i++) {
    const srow = i * m;
    for (let r = 0; r < p; r++) {
      let s = 0;
      const q = r * m;
      for (let j = 0; j < m; j++) s += S[srow + j] * Q[q + j];
      out[r * m + i] = s;
    }
  }
}

/** Modified Gram-Schmidt on the rows of A [p, m], twice for stability; dependent rows are redrawn. */
function orthonormalRows(A: Float64Array, p: number, m: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let r = 0; r < p; r++) {
      const v = A.subarray(r * m, (r + 1) * m);
      for (let q = 0; q < r; q++) {
        const u = A.subarray(q * m, (q + 1) * m);
        let d = 0;
        for (let j = 0; j < m; j++) d += u[j] * v[j];
        for (let j = 0; j < m; j++) v[j] -= d * u[j];
      }
      if (!normalise(v)) completeBasis(A, r, m);
    }
  }
}

/** All eigenpairs of a small symmetric matrix by cyclic Jacobi: values descending, vectors as rows. */
function jacobiEigen(T: Float64Array, p: number): { values: Float64Array; vectors: Float64Array } {
  const A = Float64Array.from(T);
  const V = new Float64Array(p * p);
  for (let i = 0; i < p; i++) V[i * p + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, norm = 0;
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < p; j++) {
        norm += A[i * p + j] ** 2;
        if (i !== j) off += A[i * p + j] ** 2;
      }
    }
    if (off <= 1e-30 * norm || off === 0) break;
    for (let a = 0; a < p - 1; a++) {
      for (let b = a + 1; b < p; b++) {
        const apq = A[a * p + b];
        if (Math.abs(apq) < 1e-300) continue;
        const tau = (A[b * p + b] - A[a * p + a]) / (2 * apq);
        const t = Math.sign(tau || 1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
        const c = 1 / Math.sqrt(1 + t * t), s = t * c;
        for (let i = 0; i < p; i++) {
          const aia = A[i * p + a], aib = A[i * p + b];
          A[i * p + a] = c * aia - s * aib;
          A[i * p + b] = s * aia + c * aib;
        }
        for (let i = 0; i < p; i++) {
          const aai = A[a * p + i], abi = A[b * p + i];
          A[a * p + i] = c * aai - s * abi;
          A[b * p + i] = s * aai + c * abi;
        }
        for (let i = 0; i < p; i++) {
          const via = V[i * p + a], vib = V[i * p + b];
          V[i * p + a] = c * via - s * vib;
          V[i * p + b] = s * via + c * vib;
        }
      }
    }
  }
  const order = Array.from({ length: p }, (_, i) => i).sort((i, j) => A[j * p + j] - A[i * p + i] || i - j);
  const values = new Float64Array(p);
  const vectors = new Float64Array(p * p);
  order.forEach((col, r) => {
    values[r] = A[col * p + col];
    for (let i = 0; i < p; i++) vectors[r * p + i] = V[i * p + col];
  });
  return { values, vectors };
}

// ---------------------------------------------------------------------------------------------
// Patch features as colours

/** Options of {@link patchColours}. */
export interface PatchColourOptions {
  /**
   * A PCA fitted on the patches of many images (e.g. `pca(bank.features, ...)` with k >= 3): every
   * image is then coloured in the same basis and on the same scale (the basis's projected range), so
   * colours compare across images. Default: a PCA of this image's patches alone, min-max scaled.
   */
  basis?: PCAResult;
}

/**
 * One image's patch features [N, dim] as colours: the first 3 principal components become red,
 * green and blue, each scaled to 0..255 (min-max over this image's patches, or over the basis's
 * projected data). Returns [N, 3] bytes, patch-major. Patches with similar features get similar
 * colours; a trained encoder colours the parts of an object alike.
 *
 * @example
 * ```ts
 * import { patchColours } from "./analysis.ts";
 * // Four patches in 3-D: two pairs of equal features give two pairs of equal colours.
 * const f = new Float32Array([1, 0, 0, 1, 0, 0, 0, 1, 2, 0, 1, 2]); // [4, 3]
 * const rgb = patchColours(f, 3);
 * if (rgb.length !== 12 || rgb.slice(0, 3).join() !== rgb.slice(3, 6).join()) throw new Error("colours");
 * if (rgb.slice(0, 3).join() === rgb.slice(6, 9).join()) throw new Error("different features, same colour");
 * ```
 */
export function patchColours(tokens: Float32Array, dim: number, opts: PatchColourOptions = {}): Uint8Array {
  if (!(Number.isInteger(dim) && dim >= 1) || tokens.length % dim !== 0 || tokens.length === 0) {
    throw new Error(
      `patchColours: expected patch features [N, ${dim}] (a non-empty multiple of ${dim} values), got ${tokens.length} values`,
    );
  }
  const N = tokens.length / dim;
  let proj: Float32Array, k: number, lo: number[], hi: number[];
  if (opts.basis) {
    const b = opts.basis;
    if (b.dim !== dim) {
      throw new Error(`patchColours: the basis is for ${b.dim} features, the patches have ${dim}`);
    }
    k = Math.min(3, b.k);
    proj = pcaProject(b, tokens);
    [lo, hi] = ranges(b.projected, b.k, k);
    if (k < b.k) proj = keepColumns(proj, b.k, k);
  } else {
    k = Math.min(3, N, dim);
    proj = pca(tokens, N, dim, k).projected;
    [lo, hi] = ranges(proj, k, k);
  }
  const out = new Uint8Array(N * 3); // [N, 3]; components beyond those available stay 0
  for (let i = 0; i < N; i++) {
    for (let c = 0; c < k; c++) {
      const span = hi[c] - lo[c];
      const t = span > 0 ? (proj[i * k + c] - lo[c]) / span : 0.5;
      out[i * 3 + c] = Math.round(255 * Math.min(1, Math.max(0, t)));
    }
  }
  return out;
}

/** Per-column min and max of the first `k` of `cols` columns. */
function ranges(x: Float32Array, cols: number, k: number): [number[], number[]] {
  const lo = new Array(k).fill(Infinity), hi = new Array(k).fill(-Infinity);
  for (let i = 0; i < x.length / cols; i++) {
    for (let c = 0; c < k; c++) {
      lo[c] = Math.min(lo[c], x[i * cols + c]);
      hi[c] = Math.max(hi[c], x[i * cols + c]);
    }
  }
  return [lo, hi];
}

function keepColumns(x: Float32Array, cols: number, k: number): Float32Array {
  const n = x.length / cols;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) out[i * k + c] = x[i * cols + c];
  return out;
}

/**
 * Patch colours ({@link patchColours}) as an image for `plotImages`: each patch of a `rows` x `cols`
 * grid filled with its colour. With `over` (the image the patches came from, any channels) the
 * colours are blended over it: `alpha * colour + (1 - alpha) * image` (default alpha 0.6), at the
 * image's resolution; without it the result is `rows` x `cols` pixels, one per patch.
 *
 * @example
 * ```ts
 * import { patchColourImage } from "./analysis.ts";
 * const colours = new Uint8Array([255, 0, 0, 0, 0, 255]); // two patches: red, blue
 * const img = patchColourImage(colours, 1, 2);
 * if (img.width !== 2 || img.channels !== 3 || img.data[5] !== 255) throw new Error("colour image");
 * const grey = { data: new Uint8Array(8).fill(100), height: 2, width: 4, channels: 1 };
 * const over = patchColourImage(colours, 1, 2, { over: grey, alpha: 0.5 });
 * if (over.width !== 4 || over.data[0] !== 178) throw new Error(`blend: ${over.data[0]}`); // (255 + 100) / 2
 * ```
 */
export function patchColourImage(
  colours: Uint8Array,
  rows: number,
  cols: number,
  opts: { over?: PlotImage; alpha?: number } = {},
): PlotImage & { data: Uint8Array } {
  if (colours.length !== rows * cols * 3) {
    throw new Error(
      `patchColourImage: expected ${rows} x ${cols} patches x 3 = ${
        rows * cols * 3
      } colour values, got ${colours.length}`,
    );
  }
  const img = opts.over;
  if (!img) return { data: colours.slice(), height: rows, width: cols, channels: 3 };
  const alpha = opts.alpha ?? 0.6;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`patchColourImage: alpha must be in [0, 1], got ${alpha}`);
  const { height: H, width: W, channels: C } = img;
  if (H % rows !== 0 || W % cols !== 0) {
    throw new Error(`patchColourImage: a ${H}x${W} image does not split into a ${rows}x${cols} patch grid`);
  }
  const ph = H / rows, pw = W / cols;
  const grey = toBytes(img);
  const out = new Uint8Array(H * W * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = Math.floor(y / ph) * cols + Math.floor(x / pw);
      for (let c = 0; c < 3; c++) {
        const base = grey[(y * W + x) * C + (C === 1 ? 0 : Math.min(c, C - 1))];
        out[(y * W + x) * 3 + c] = Math.round(alpha * colours[p * 3 + c] + (1 - alpha) * base);
      }
    }
  }
  return { data: out, height: H, width: W, channels: 3 };
}

/** Pixels of a PlotImage as bytes: Uint8 as is, floats in [0, 1] times 255, other floats min-max. */
function toBytes(img: PlotImage): Uint8Array {
  if (img.data instanceof Uint8Array) return img.data;
  let lo = Infinity, hi = -Infinity;
  for (const v of img.data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const [a, b] = lo >= 0 && hi <= 1 ? [0, 1] : [lo, hi > lo ? hi : lo + 1];
  return Uint8Array.from(img.data, (v) => Math.round(255 * (v - a) / (b - a)));
}

// ---------------------------------------------------------------------------------------------
// A bank of encoded patches and nearest-patch retrieval

/** Features of many patches with where each came from. */
export interface PatchBank {
  /** [n, dim] */
  features: Float32Array;
  dim: number;
  /** Number of patches. */
  n: number;
  /** Index of each patch's image in the dataset the bank was built from. [n] */
  image: Int32Array;
  /** Each patch's index on its image's grid (row * cols + col). [n] */
  patch: Int32Array;
  /** The patch grid and the patch side in the model's input pixels. */
  rows?: number;
  cols?: number;
  patchSize?: number;
}

/** Options of {@link patchBank}. */
export interface PatchBankOptions {
  /** Per-channel mean and std in 0..1 units, as the model was trained with. */
  mean: readonly number[];
  std: readonly number[];
  /** Which images of the dataset (default all). */
  indices?: ArrayLike<number>;
  /** Images per forward pass (default 64). */
  batchSize?: number;
  /**
   * `"target"` (default): layer-normalise every patch's features over the feature dimension (eps
   * 1e-5, no affine), exactly as I-JEPA's regression targets are, so the predictor's outputs and
   * the bank live in the same space. `"none"`: the encoder's output tokens as they are.
   */
  normalize?: "target" | "none";
}

/**
 * Encode every patch of the chosen images with `encoder` (pass the target encoder) and keep the
 * features with their image and patch indices: the bank {@link nearestPatches} searches. Images
 * are normalised and, when their size is not the model's, resized as lib/eval/features.ts
 * `extractFeatures` does; their channels must match the model's (see {@link adaptImages}).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { patchBank } from "./analysis.ts";
 * import { IJEPA } from "../model/ijepa.ts";
 * import type { ImageDataset } from "../data/data.ts";
 * await tf.setBackend("cpu");
 * const ds: ImageDataset = {
 *   images: new Uint8Array(3 * 16 * 16).map((_, i) => (i * 13) % 256), labels: new Int32Array(3),
 *   n: 3, height: 16, width: 16, channels: 1, classNames: ["a"], source: "demo",
 * };
 * const model = new IJEPA("tiny", { seed: 0, parts: ["target_encoder"] });
 * const bank = patchBank(model.targetEncoder, ds, { mean: [0.5], std: [0.25], indices: [2, 0] });
 * if (bank.n !== 2 * 16 || bank.dim !== 32 || bank.image[16] !== 0 || bank.patch[17] !== 1) throw new Error("bank");
 * model.dispose();
 * ```
 */
export function patchBank(encoder: VisionTransformer, ds: ImageDataset, opts: PatchBankOptions): PatchBank {
  for (const key of Object.keys(opts)) {
    if (!["mean", "std", "indices", "batchSize", "normalize"].includes(key)) {
      throw new Error(
        `patchBank: unknown option "${key}"; expected mean, std, indices, batchSize or normalize`,
      );
    }
  }
  const cfg = encoder.cfg;
  if (ds.channels !== cfg.channels) {
    throw new Error(
      `patchBank: the encoder expects ${cfg.channels}-channel images, the dataset has ${ds.channels} (${ds.source}); ` +
        `adaptImages(ds, { size, channels }) converts them`,
    );
  }
  if (opts.mean.length !== cfg.channels || opts.std.length !== cfg.channels) {
    throw new Error(
      `patchBank: expected ${cfg.channels} mean and std values, got ${opts.mean.length} and ${opts.std.length}`,
    );
  }
  const norm = opts.normalize ?? "target";
  if (norm !== "target" && norm !== "none") {
    throw new Error(`patchBank: normalize must be "target" or "none", got "${norm}"`);
  }
  const idx = Int32Array.from(opts.indices ?? Array.from({ length: ds.n }, (_, i) => i));
  for (const i of idx) {
    if (!(i >= 0 && i < ds.n)) throw new Error(`patchBank: image index ${i} is out of range 0..${ds.n - 1}`);
  }
  const batchSize = opts.batchSize ?? 64;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new Error(`patchBank: batchSize must be a positive integer, got ${batchSize}`);
  }
  const { imageSize: S, channels: C, numPatches: N, width: D } = cfg;
  const features = new Float32Array(idx.length * N * D); // [images * N, D]
  const pix = ds.height * ds.width * ds.channels;
  for (let start = 0; start < idx.length; start += batchSize) {
    const count = Math.min(batchSize, idx.length - start);
    // Gather this batch's images into a contiguous set for modelInput.
    const images = new Uint8Array(count * pix);
    for (let b = 0; b < count; b++) {
      const i = idx[start + b];
      images.set(ds.images.subarray(i * pix, (i + 1) * pix), b * pix);
    }
    const batch: ImageDataset = { ...ds, images, n: count, labels: new Int32Array(count) };
    const input = modelInput(batch, 0, count, S, opts.mean, opts.std); // [count, S, S, C]
    const out = tf.tidy(() => {
      const tokens = encoder.forward(tf.tensor4d(input, [count, S, S, C])); // [count, N, D]
      return norm === "target" ? layerNorm(tokens, TARGET_EPS) : tokens; // [count, N, D]
    });
    try {
      features.set(out.dataSync() as Float32Array, start * N * D);
    } finally {
      out.dispose();
    }
  }
  const image = new Int32Array(idx.length * N), patch = new Int32Array(idx.length * N);
  for (let a = 0; a < idx.length; a++) {
    for (let p = 0; p < N; p++) {
      image[a * N + p] = idx[a];
      patch[a * N + p] = p;
    }
  }
  return {
    features,
    dim: D,
    n: idx.length * N,
    image,
    patch,
    rows: cfg.gridSize,
    cols: cfg.gridSize,
    patchSize: cfg.patchSize,
  };
}

/**
 * A bank of pixel patches: every `patchSize` x `patchSize` patch of the chosen images, normalised to
 * mean 0 and variance 1 over its values (eps 1e-6), which is what a `pixel`-mode model predicts
 * (MAE's `norm_pix_loss`); so {@link nearestPatches} can search a pixel prediction's neighbours as it
 * searches a representation's. The images must be at the model's input size.
 *
 * @example
 * ```ts
 * import { pixelPatchBank } from "./analysis.ts";
 * const set = { images: Uint8Array.from({ length: 16 }, (_, i) => i), n: 1, height: 4, width: 4, channels: 1 };
 * const bank = pixelPatchBank(set, [0], 2); // patch 0 holds 0, 1, 4, 5: mean 2.5, std 2.06
 * if (bank.n !== 4 || bank.dim !== 4 || Math.abs(bank.features[0] + 1.213) > 0.001) throw new Error("bank");
 * ```
 */
export function pixelPatchBank(set: ImageSet, indices: ArrayLike<number>, patchSize: number): PatchBank {
  const { height: H, width: W, channels: C } = set;
  if (!(Number.isInteger(patchSize) && patchSize >= 1) || H % patchSize !== 0 || W % patchSize !== 0) {
    throw new Error(`pixelPatchBank: patch size ${patchSize} does not divide the ${H}x${W} images`);
  }
  const rows = H / patchSize, cols = W / patchSize, N = rows * cols, dim = patchSize * patchSize * C;
  const features = new Float32Array(indices.length * N * dim); // [images * N, dim]
  const image = new Int32Array(indices.length * N), patch = new Int32Array(indices.length * N);
  for (let a = 0; a < indices.length; a++) {
    for (let p = 0; p < N; p++) {
      const px = cutPatch(set, indices[a], p, patchSize).data;
      let mean = 0, v = 0;
      for (const x of px) mean += x / dim;
      for (const x of px) v += (x - mean) ** 2 / dim;
      const inv = 1 / Math.sqrt(v + 1e-6);
      const row = a * N + p;
      for (let j = 0; j < dim; j++) features[row * dim + j] = (px[j] - mean) * inv;
      image[row] = indices[a];
      patch[row] = p;
    }
  }
  return { features, dim, n: indices.length * N, image, patch, rows, cols, patchSize };
}

/**
 * The mean feature of a bank's patches [dim]: the component every patch shares, which
 * `nearestPatches(..., { centre })` can remove.
 *
 * @example
 * ```ts
 * import { meanFeature } from "./analysis.ts";
 * const bank = { features: new Float32Array([1, 2, 3, 6]), dim: 2, n: 2, image: new Int32Array(2), patch: new Int32Array(2) };
 * if (meanFeature(bank).join() !== "2,4") throw new Error("mean");
 * ```
 */
export function meanFeature(bank: PatchBank): Float32Array {
  const { features, dim, n } = bank;
  if (features.length !== n * dim || n === 0) {
    throw new Error(
      `meanFeature: expected a non-empty bank of ${n} x ${dim} features, got ${features.length} values`,
    );
  }
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += features[i * dim + j];
  return Float32Array.from(mean, (v) => v / n);
}

/** What {@link nearestPatches} returns: for query q, entries `q * k .. q * k + k - 1`, best first. */
export interface Neighbours {
  /** Bank rows. [queries, k] */
  index: Int32Array;
  /** Cosine similarity of each. [queries, k] */
  similarity: Float32Array;
  /** Neighbours per query. */
  k: number;
}

/**
 * The `k` bank patches most cosine-similar to each query row ([queries, dim], e.g. the predictor's
 * outputs for one target block), best first; equal similarities go to the lower bank row.
 * `excludeImages` skips bank patches of those images (e.g. the query's own image). `centre`
 * subtracts a vector from queries and bank rows first (`true`: the bank's mean feature): when every
 * feature shares one large component, as in a collapsing encoder, raw cosines are all near 1 and
 * the ranking hinges on that component's noise; centring ranks by what tells patches apart. Plain
 * TypeScript, deterministic.
 *
 * @example
 * ```ts
 * import { nearestPatches } from "./analysis.ts";
 * const bank = {
 *   features: new Float32Array([1, 0, 0, 1, -1, 0]), dim: 2, n: 3,
 *   image: Int32Array.from([0, 0, 1]), patch: Int32Array.from([0, 1, 0]),
 * };
 * const r = nearestPatches(new Float32Array([0.9, 0.1, -1, 0.2]), bank, 1);
 * if (r.index.join() !== "0,2") throw new Error(`got ${r.index.join()}`);
 * ```
 */
export function nearestPatches(
  queries: Float32Array,
  bank: PatchBank,
  k = 5,
  opts: { excludeImages?: ArrayLike<number>; centre?: boolean | Float32Array } = {},
): Neighbours {
  const { dim, n } = bank;
  if (bank.features.length !== n * dim || bank.image.length !== n || bank.patch.length !== n) {
    throw new Error(
      `nearestPatches: expected a bank of ${n} x ${dim} features with ${n} image and patch indices, got ` +
        `${bank.features.length} features, ${bank.image.length} image and ${bank.patch.length} patch indices`,
    );
  }
  if (queries.length % dim !== 0) {
    throw new Error(
      `nearestPatches: expected queries [K, ${dim}] (the bank's width), got ${queries.length} values`,
    );
  }
  if (!(Number.isInteger(k) && k >= 1)) {
    throw new Error(`nearestPatches: k must be a positive integer, got ${k}`);
  }
  const skip = new Set(Array.from(opts.excludeImages ?? []));
  const allowed: number[] = [];
  for (let i = 0; i < n; i++) if (!skip.has(bank.image[i])) allowed.push(i);
  if (allowed.length < k) {
    throw new Error(
      `nearestPatches: asked for ${k} neighbours, the bank has ${allowed.length} patches to offer`,
    );
  }
  // Centring: cos(q - c, b - c), expanded so no centred copy of the bank is made:
  // (q - c).(b - c) = q.b - q.c - b.c + c.c and |b - c|^2 = |b|^2 - 2 b.c + c.c.
  const c = new Float64Array(dim); // [dim], zero without centring
  if (opts.centre instanceof Float32Array) {
    if (opts.centre.length !== dim) {
      throw new Error(`nearestPatches: expected a centre of ${dim} values, got ${opts.centre.length}`);
    }
    c.set(opts.centre);
  } else if (opts.centre) {
    for (const i of allowed) {
      for (let j = 0; j < dim; j++) c[j] += bank.features[i * dim + j] / allowed.length;
    }
  }
  let cc = 0;
  for (let j = 0; j < dim; j++) cc += c[j] * c[j];
  const inv = new Float64Array(n), bc = new Float64Array(n); // 1 / |b - c| and b.c per bank row
  for (const i of allowed) {
    let s = 0, d = 0;
    for (let j = 0; j < dim; j++) {
      const b = bank.features[i * dim + j];
      s += b * b;
      d += b * c[j];
    }
    const norm2 = s - 2 * d + cc;
    bc[i] = d;
    inv[i] = norm2 > 1e-12 * Math.max(s, 1e-300) ? 1 / Math.sqrt(norm2) : 0;
  }
  const K = queries.length / dim;
  const index = new Int32Array(K * k), similarity = new Float32Array(K * k);
  const topS = new Float64Array(k), topI = new Int32Array(k);
  for (let q = 0; q < K; q++) {
    let qn = 0, qc = 0;
    for (let j = 0; j < dim; j++) {
      qn += queries[q * dim + j] ** 2;
      qc += queries[q * dim + j] * c[j];
    }
    const qn2 = qn - 2 * qc + cc;
    const qinv = qn2 > 1e-12 * Math.max(qn, 1e-300) ? 1 / Math.sqrt(qn2) : 0;
    topS.fill(-Infinity);
    topI.fill(-1);
    for (const i of allowed) {
      let s = 0;
      const o = i * dim, qo = q * dim;
      for (let j = 0; j < dim; j++) s += queries[qo + j] * bank.features[o + j];
      s = (s - qc - bc[i] + cc) * qinv * inv[i];
      if (s <= topS[k - 1]) continue; // strictly better only: ties keep the lower row
      let pos = k - 1;
      while (pos > 0 && s > topS[pos - 1]) {
        topS[pos] = topS[pos - 1];
        topI[pos] = topI[pos - 1];
        pos--;
      }
      topS[pos] = s;
      topI[pos] = i;
    }
    index.set(topI, q * k);
    similarity.set(topS, q * k);
  }
  return { index, similarity, k };
}

// ---------------------------------------------------------------------------------------------
// What the predictor predicts

/** The predictor's outputs for one image's target blocks, beside the targets the loss compares them with. */
export interface BlockPredictions {
  /** Predictor outputs (features, or pixels for a `pixel`-mode model), block-major. [M, Lt, dim] */
  predicted: Float32Array;
  /** The regression targets: layer-normalised target-encoder features (or normalised pixels). [M, Lt, dim] */
  targets: Float32Array;
  /** The patch index of each row. [M, Lt] */
  patches: Int32Array;
  /** M, Lt and the width of a row. */
  blocks: number;
  length: number;
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
 * import { predictBlocks } from "./analysis.ts";
 * import { IJEPA } from "../model/ijepa.ts";
 * import { createMasker } from "../masks/masks.ts";
 * import { Rng } from "../engine/rng.ts";
 * await tf.setBackend("cpu");
 * const ds = { images: new Uint8Array(256).fill(90), labels: new Int32Array(1), n: 1, height: 16, width: 16,
 *   channels: 1, classNames: ["a"], source: "demo" };
 * const model = new IJEPA("tiny", { seed: 0 });
 * const masks = createMasker({ rows: 4, cols: 4, nTargets: 2, minKeep: 2 }).sample(new Rng(0), 1);
 * const p = predictBlocks(model, ds, 0, masks, { mean: [0.3], std: [0.3] });
 * if (p.predicted.length !== 2 * p.length * 32 || p.targets.length !== p.predicted.length) throw new Error("shape");
 * model.dispose();
 * ```
 */
export function predictBlocks(
  model: IJEPA,
  ds: ImageDataset,
  image: number,
  masks: CollatedMasks,
  opts: { mean: readonly number[]; std: readonly number[] },
): BlockPredictions {
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
      predicted: pred.dataSync() as Float32Array,
      targets: target.dataSync() as Float32Array,
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
 * import { denormalizePixels } from "./analysis.ts";
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

// ---------------------------------------------------------------------------------------------
// Pixels for drawing

/** Images in NHWC bytes: an {@link ImageDataset}, or any object with these fields. */
export type ImageSet = Pick<ImageDataset, "images" | "n" | "height" | "width" | "channels">;

/**
 * Image `i` of a set, as a `PlotImage` (a view, not a copy).
 *
 * @example
 * ```ts
 * import { imageAt } from "./analysis.ts";
 * const set = { images: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), n: 2, height: 2, width: 2, channels: 1 };
 * if (imageAt(set, 1).data.join() !== "5,6,7,8") throw new Error("image 1");
 * ```
 */
export function imageAt(set: ImageSet, i: number): PlotImage & { data: Uint8Array } {
  if (!(Number.isInteger(i) && i >= 0 && i < set.n)) {
    throw new Error(`imageAt: image index ${i} is out of range 0..${set.n - 1}`);
  }
  const pix = set.height * set.width * set.channels;
  return {
    data: set.images.subarray(i * pix, (i + 1) * pix),
    height: set.height,
    width: set.width,
    channels: set.channels,
  };
}

/**
 * The pixels of patch `patch` (index `row * cols + col` on a grid of `patchSize` x `patchSize`
 * patches) of image `image`, as a `PlotImage` of `patchSize` x `patchSize` (a copy). The set's
 * images must be at the model's input size (see {@link adaptImages}).
 *
 * @example
 * ```ts
 * import { cutPatch } from "./analysis.ts";
 * // One 4x4 grey image, values 0..15 row-major; patch 3 of its 2x2 grid is the bottom-right 2x2.
 * const set = { images: Uint8Array.from({ length: 16 }, (_, i) => i), n: 1, height: 4, width: 4, channels: 1 };
 * const p = cutPatch(set, 0, 3, 2);
 * if (p.data.join() !== "10,11,14,15") throw new Error(`got ${p.data.join()}`);
 * ```
 */
export function cutPatch(
  set: ImageSet,
  image: number,
  patch: number,
  patchSize: number,
): PlotImage & { data: Uint8Array } {
  const { height: H, width: W, channels: C } = set;
  if (!(Number.isInteger(patchSize) && patchSize >= 1) || H % patchSize !== 0 || W % patchSize !== 0) {
    throw new Error(`cutPatch: patch size ${patchSize} does not divide the ${H}x${W} images`);
  }
  const cols = W / patchSize, rows = H / patchSize;
  if (!(Number.isInteger(patch) && patch >= 0 && patch < rows * cols)) {
    throw new Error(
      `cutPatch: patch index ${patch} is outside the ${rows}x${cols} grid (0..${rows * cols - 1})`,
    );
  }
  const src = imageAt(set, image).data;
  const r0 = Math.floor(patch / cols) * patchSize, c0 = (patch % cols) * patchSize;
  const out = new Uint8Array(patchSize * patchSize * C);
  for (let y = 0; y < patchSize; y++) {
    const from = ((r0 + y) * W + c0) * C;
    out.set(src.subarray(from, from + patchSize * C), y * patchSize * C);
  }
  return { data: out, height: patchSize, width: patchSize, channels: C };
}

/** One patch to paint by {@link pastePatches}: its grid index and either pixels or a flat grey level. */
export interface PatchPaint {
  patch: number;
  /** Pixels of one patch (patchSize x patchSize, the image's channels), e.g. from {@link cutPatch}. */
  pixels?: PlotImage;
  /** A flat value 0..255 for every channel (used when no pixels are given; default 128). */
  fill?: number;
}

/**
 * A copy of `image` (bytes) with some patches painted over: with other patches' pixels (to show
 * retrieved neighbours in place of a target block) or with a flat grey (to hide them).
 *
 * @example
 * ```ts
 * import { pastePatches } from "./analysis.ts";
 * const img = { data: new Uint8Array(16), height: 4, width: 4, channels: 1 };
 * const out = pastePatches(img, 2, [{ patch: 1, fill: 200 }]);
 * if (out.data[2] !== 200 || out.data[0] !== 0 || img.data[2] !== 0) throw new Error("paste");
 * ```
 */
export function pastePatches(
  image: PlotImage,
  patchSize: number,
  paints: PatchPaint[],
): PlotImage & { data: Uint8Array } {
  const { height: H, width: W, channels: C } = image;
  if (!(Number.isInteger(patchSize) && patchSize >= 1) || H % patchSize !== 0 || W % patchSize !== 0) {
    throw new Error(`pastePatches: patch size ${patchSize} does not divide the ${H}x${W} image`);
  }
  const cols = W / patchSize, rows = H / patchSize;
  const out = toBytes(image).slice();
  for (const { patch, pixels, fill } of paints) {
    if (!(Number.isInteger(patch) && patch >= 0 && patch < rows * cols)) {
      throw new Error(`pastePatches: patch index ${patch} is outside the ${rows}x${cols} grid`);
    }
    let src: Uint8Array | undefined;
    if (pixels) {
      if (pixels.height !== patchSize || pixels.width !== patchSize || pixels.channels !== C) {
        throw new Error(
          `pastePatches: expected ${patchSize}x${patchSize}x${C} patch pixels, got ${pixels.height}x${pixels.width}x${pixels.channels}`,
        );
      }
      src = toBytes(pixels);
    }
    const r0 = Math.floor(patch / cols) * patchSize, c0 = (patch % cols) * patchSize;
    const grey = Math.round(Math.min(255, Math.max(0, fill ?? 128)));
    for (let y = 0; y < patchSize; y++) {
      for (let x = 0; x < patchSize; x++) {
        for (let c = 0; c < C; c++) {
          out[((r0 + y) * W + c0 + x) * C + c] = src ? src[(y * patchSize + x) * C + c] : grey;
        }
      }
    }
  }
  return { data: out, height: H, width: W, channels: C };
}

/**
 * A copy of `image` as RGB with a frame drawn just outside patch `patch` (clipped to the image), so
 * the patch itself stays visible, even on a dark background. The frame is `thickness` pixels wide
 * (default: 1 pixel per 56 of the image's side, at least 1, so it still shows when a 224 px image
 * is drawn small).
 *
 * @example
 * ```ts
 * import { highlightPatch } from "./analysis.ts";
 * const img = { data: new Uint8Array(36), height: 6, width: 6, channels: 1 }; // a 3x3 grid of 2x2 patches
 * const out = highlightPatch(img, 2, 4); // the centre patch: pixels (2..3, 2..3), frame (1..4, 1..4)
 * const at = (y: number, x: number) => out.data[(y * 6 + x) * 3];
 * if (out.channels !== 3 || at(1, 1) !== 255 || at(2, 2) !== 0 || at(0, 0) !== 0) throw new Error("frame");
 * ```
 */
export function highlightPatch(
  image: PlotImage,
  patchSize: number,
  patch: number,
  colour: readonly [number, number, number] = [255, 40, 40],
  thickness?: number,
): PlotImage & { data: Uint8Array } {
  const { height: H, width: W, channels: C } = image;
  const t = thickness ?? Math.max(1, Math.round(Math.max(H, W) / 56));
  if (!(Number.isInteger(t) && t >= 1)) {
    throw new Error(`highlightPatch: thickness must be a positive integer, got ${t}`);
  }
  if (!(Number.isInteger(patchSize) && patchSize >= 1) || H % patchSize !== 0 || W % patchSize !== 0) {
    throw new Error(`highlightPatch: patch size ${patchSize} does not divide the ${H}x${W} image`);
  }
  const cols = W / patchSize, rows = H / patchSize;
  if (!(Number.isInteger(patch) && patch >= 0 && patch < rows * cols)) {
    throw new Error(`highlightPatch: patch index ${patch} is outside the ${rows}x${cols} grid`);
  }
  const src = toBytes(image);
  const out = new Uint8Array(H * W * 3);
  for (let p = 0; p < H * W; p++) {
    for (let c = 0; c < 3; c++) out[p * 3 + c] = src[p * C + (C === 1 ? 0 : Math.min(c, C - 1))];
  }
  // The patch covers [py, py + patchSize) x [px, px + patchSize); the frame is the t pixels around it.
  const py = Math.floor(patch / cols) * patchSize, px = (patch % cols) * patchSize;
  for (let y = py - t; y < py + patchSize + t; y++) {
    for (let x = px - t; x < px + patchSize + t; x++) {
      const inside = y >= py && y < py + patchSize && x >= px && x < px + patchSize;
      if (inside || y < 0 || x < 0 || y >= H || x >= W) continue;
      out.set(colour, (y * W + x) * 3);
    }
  }
  return { data: out, height: H, width: W, channels: 3 };
}

/**
 * A dataset resized to `size` x `size` (bilinear over the whole image, as lib/eval/features.ts resizes)
 * and converted to `channels`: grey repeated into RGB, or RGB averaged into grey. Use it to feed
 * data to a checkpoint trained on other images (the shipped grey 28 px Fashion-MNIST to an RGB
 * model), and to cut patches at the model's resolution. Returns a new dataset; labels are shared.
 *
 * @example
 * ```ts
 * import { adaptImages } from "./analysis.ts";
 * import type { ImageDataset } from "../data/data.ts";
 * const ds: ImageDataset = {
 *   images: Uint8Array.from([0, 100, 200, 255]), labels: new Int32Array([0]), n: 1,
 *   height: 2, width: 2, channels: 1, classNames: ["a"], source: "demo",
 * };
 * const rgb = adaptImages(ds, { size: 2, channels: 3 });
 * if (rgb.channels !== 3 || rgb.images.slice(3, 6).join() !== "100,100,100") throw new Error("rgb");
 * ```
 */
export function adaptImages(ds: ImageDataset, opts: { size: number; channels: number }): ImageDataset {
  const { size, channels } = opts;
  if (!(Number.isInteger(size) && size >= 1)) {
    throw new Error(`adaptImages: size must be a positive integer, got ${size}`);
  }
  const C = ds.channels;
  if (!(channels === C || (C === 1 && channels === 3) || (C === 3 && channels === 1))) {
    throw new Error(`adaptImages: can convert 1 <-> 3 channels, got ${C} -> ${channels}`);
  }
  const resize = ds.height !== size || ds.width !== size;
  const pix = ds.height * ds.width * C;
  const images = new Uint8Array(ds.n * size * size * channels); // [n, size, size, channels]
  const buf = new Float32Array(size * size * C);
  const box = { top: 0, left: 0, height: ds.height, width: ds.width };
  for (let i = 0; i < ds.n; i++) {
    const src = ds.images.subarray(i * pix, (i + 1) * pix);
    const img = resize ? resizeCrop(src, ds.height, ds.width, C, box, size, size, buf) : src;
    const o = i * size * size * channels;
    for (let p = 0; p < size * size; p++) {
      if (channels === C) {
        for (let c = 0; c < C; c++) images[o + p * C + c] = Math.round(img[p * C + c]);
      } else if (C === 1) {
        const v = Math.round(img[p]);
        images[o + p * 3] = images[o + p * 3 + 1] = images[o + p * 3 + 2] = v;
      } else {
        images[o + p] = Math.round((img[p * 3] + img[p * 3 + 1] + img[p * 3 + 2]) / 3);
      }
    }
  }
  return {
    ...ds,
    images,
    height: size,
    width: size,
    channels,
    source: `${ds.source}, as ${size}x${size}x${channels}`,
  };
}
