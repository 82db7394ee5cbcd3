// RankMe (lib/eval/rankme.ts): the eigenvalue routine against the invariants every symmetric matrix
// has (the power sums of its eigenvalues are the traces of its powers), on random matrices of many
// sizes; RankMe on feature sets whose effective rank is known; and its errors.
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../_assert.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { rankMe, RANKME_EPS, RANKME_MAX_SIZE, symmetricEigenvalues } from "../../lib/eval/rankme.ts";

function matMul(x: Float64Array, y: Float64Array, n: number): Float64Array<ArrayBuffer> {
  const z = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) z[i * n + j] += x[i * n + k] * y[k * n + j];
  }
  return z;
}
const trace = (m: Float64Array, n: number) =>
  Array.from({ length: n }, (_, i) => m[i * n + i]).reduce((a, b) => a + b);

Deno.test("symmetricEigenvalues: sum of lambda^p equals trace(A^p) for p = 1..4", () => {
  const rng = new Rng(17);
  for (const n of [1, 2, 3, 4, 7, 16, 33, 64]) {
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
    const lambda = symmetricEigenvalues(a.slice(), n);
    let power: Float64Array = a;
    for (let p = 1; p <= 4; p++) {
      const want = trace(power, n);
      const got = lambda.reduce((s, l) => s + l ** p, 0);
      const scale = lambda.reduce((s, l) => s + Math.abs(l) ** p, 0);
      assert(Math.abs(got - want) <= 1e-10 * scale, `n ${n}, p ${p}: ${got} vs trace ${want}`);
      power = matMul(power, a, n);
    }
  }
  // a diagonal matrix gives back its diagonal; a zero column (already tridiagonal) is handled
  const diag = Float64Array.from([3, 0, 0, 0, -1, 0, 0, 0, 2]);
  assertEquals([...symmetricEigenvalues(diag, 3)].sort((x, y) => x - y), [-1, 2, 3]);
  assertThrows(() => symmetricEigenvalues(new Float64Array(5), 2), Error, "expected 4 values, got 5");
});

Deno.test("rankMe: the effective rank of features whose spread is known", () => {
  const rng = new Rng(3);
  // points spread evenly over 2 of 6 axes: rank 2
  const two = new Float32Array(400 * 6);
  for (let r = 0; r < 400; r++) two[r * 6 + (r % 2)] = r % 4 < 2 ? 1 : -1;
  assertAlmostEquals(rankMe(two, 6), 2, 1e-4);
  // a shared offset: one more direction uncentered, none centered
  const shifted = two.map((v, i) => (i % 6 === 5 ? v + 3 : v));
  assertAlmostEquals(rankMe(shifted, 6), 2, 1e-4);
  assert(rankMe(shifted, 6, { center: false }) > 2.2, `uncentered: ${rankMe(shifted, 6, { center: false })}`);
  // a collapsed set (every row the same vector) has rank 1 (centered, nothing is left: rank 1 by
  // convention); so do all-zero features
  const one = Float32Array.from({ length: 50 * 8 }, (_, i) => [0.3, -1, 2, 0, 0.5, 1, -0.2, 0.1][i % 8]);
  assertAlmostEquals(rankMe(one, 8, { center: false }), 1, 1e-4);
  assertAlmostEquals(rankMe(one, 8), 1, 1e-4);
  assertAlmostEquals(rankMe(new Float32Array(40), 4), 1, 0);
  // isotropic Gaussian features: close to the full width (sampling noise spreads the spectrum a bit)
  const iso = Float32Array.from({ length: 4000 * 16 }, () => rng.normal());
  const r16 = rankMe(iso, 16);
  assert(r16 > 15.5 && r16 <= 16, `isotropic: ${r16}`);
  // one axis 10x the others: well below the width
  const skew = iso.map((v, i) => (i % 16 === 0 ? 10 * v : v));
  assert(rankMe(skew, 16) < r16 - 1, `one dominant axis: ${rankMe(skew, 16)}`);
  // fewer images than features, some features always 0 (as raw pixels of a small test set): the
  // Gram matrix has a cluster of near-zero eigenvalues, and the rank is at most the image count
  const few = Float32Array.from({ length: 20 * 64 }, (_, i) => (i % 64 < 8 ? 0 : rng.normal() ** 2));
  const rFew = rankMe(few, 64);
  assert(rFew >= 1 && rFew <= 20, `20 images, 64 features: ${rFew}`);
  // fewer rows than features takes the other Gram matrix: X and its transpose have the same
  // singular values, so uncentered they agree
  const wide = Float32Array.from({ length: 30 * 50 }, () => rng.normal());
  const tall = Float32Array.from({ length: 50 * 30 }, (_, i) => wide[(i % 30) * 50 + Math.floor(i / 30)]);
  assertAlmostEquals(rankMe(wide, 50, { center: false }), rankMe(tall, 30, { center: false }), 1e-9);
  assert(rankMe(wide, 50) <= 29 + 1e-3, `30 centered rows span at most 29 directions: ${rankMe(wide, 50)}`);
  // non-finite features, and eigenproblems over RANKME_MAX_SIZE, give NaN instead of an error
  const bad = wide.slice();
  bad[7] = NaN;
  assert(Number.isNaN(rankMe(bad, 50)));
  bad[7] = Infinity;
  assert(Number.isNaN(rankMe(bad, 50)));
  const n = RANKME_MAX_SIZE + 1;
  assert(Number.isNaN(rankMe(new Float32Array(n * n), n)));
  assert(RANKME_EPS > 0);
  assertThrows(
    () => rankMe(new Float32Array(7), 2),
    Error,
    "expected a non-empty [n, 2] feature matrix, got 7",
  );
});
