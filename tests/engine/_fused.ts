// Helpers shared by the fused tests: seeded normal values, a relative error, a float64 erf.
import { assertEquals } from "../_assert.ts";
import { Rng } from "../../lib/engine/rng.ts";

/** n seeded normal values times `scale`. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

/** max |a - b| / max(max |b|, floor): a relative error that ignores tiny entries' own noise. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  assertEquals(a.length, b.length, "lengths differ");
  let d = 0, m = floor;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

/** erf to 1e-15 by its Taylor series (|x| <= 3) or continued fraction, as a float64 reference. */
export function erfRef(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 3) {
    let term = a, sum = a;
    for (let n = 1; n < 100; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = 0;
    for (let n = 60; n >= 1; n--) f = (n / 2) / (a + f);
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
  }
  return x < 0 ? -r : r;
}
