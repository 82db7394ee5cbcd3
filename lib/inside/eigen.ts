/**
 * The symmetric eigen solver behind `pca` (lib/inside/pca.ts): the top eigenpairs of a symmetric
 * matrix by subspace iteration with a Rayleigh-Ritz step (cyclic Jacobi on the small projection),
 * and the Gram-Schmidt helpers it shares with `pca`. Plain float64 TypeScript, deterministic
 * (fixed seed).
 *
 * @module
 */
import { Rng } from "../engine/rng.ts";

/** Scale `v` to unit length in place; false, leaving it as is, when its length is zero (or NaN). */
export function toUnitLength(v: Float64Array): boolean {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j] * v[j];
  if (!(s > 0)) return false;
  const inv = 1 / Math.sqrt(s);
  for (let j = 0; j < v.length; j++) v[j] *= inv;
  return true;
}

/** Re-orthogonalise row c of `rows` [*, dim] against rows 0..c-1 (Gram-Schmidt, once more). */
export function orthogonalise(rows: Float64Array, c: number, dim: number): void {
  const v = rows.subarray(c * dim, (c + 1) * dim);
  for (let p = 0; p < c; p++) {
    const u = rows.subarray(p * dim, (p + 1) * dim);
    let d = 0;
    for (let j = 0; j < dim; j++) d += u[j] * v[j];
    for (let j = 0; j < dim; j++) v[j] -= d * u[j];
  }
  toUnitLength(v);
}

/** Fill row c with the first unit vector that is independent of rows 0..c-1, made orthonormal. */
export function completeBasis(rows: Float64Array, c: number, dim: number): void {
  const v = rows.subarray(c * dim, (c + 1) * dim);
  for (let e = 0; e < dim; e++) {
    v.fill(0);
    v[e] = 1;
    for (let p = 0; p < c; p++) {
      const u = rows.subarray(p * dim, (p + 1) * dim);
      const d = u[e];
      for (let j = 0; j < dim; j++) v[j] -= d * u[j];
    }
    if (toUnitLength(v)) {
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
export function topEigen(
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
      if (!toUnitLength(v)) completeBasis(A, r, m);
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
