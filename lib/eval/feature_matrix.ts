/**
 * Helpers on `[n, dim]` feature matrices shared by the linear probe and kNN: shape and label
 * checks, row selection, per-feature standardisation, and the argmax of a row of scores.
 *
 * @module
 */

/** Check a [n, dim] feature matrix and its labels; errors name what was expected and what came. */
export function checkLabelled(
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

/** Check that `x` holds whole rows of `dim` features; returns the number of rows. */
export function checkFeatures(x: Float32Array, dim: number, where: string): number {
  if (x.length % dim !== 0) {
    throw new Error(
      `${where}: expected rows of ${dim} features, got ${x.length} values (not a multiple of ${dim})`,
    );
  }
  return x.length / dim;
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

/** `x` [n, dim] standardised with `s` (from {@link featureStats}): `(x - mean) * scale`. [n, dim] */
export function standardized(
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

/** The index of the largest of `z[o .. o + K)`, relative to `o`; ties go to the lower index. */
export function argmax(z: ArrayLike<number>, o: number, K: number): number {
  let best = 0;
  for (let k = 1; k < K; k++) if (z[o + k] > z[o + best]) best = k;
  return best;
}
