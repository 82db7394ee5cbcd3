// Shared by the BLAS tests: the stock kernels saved before anything replaces them, whether a BLAS
// library is here at all (PROBE), a float64 matMul reference and small helpers.
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
// The wasm backend's stock kernels are saved below and compared against: register them first.
import "@tensorflow/tfjs-backend-wasm";
import { disableBlas, enableBlas } from "../../lib/engine/blas.ts";
import { Rng } from "../../lib/engine/rng.ts";

export type Be = "wasm" | "cpu";
export const BACKENDS: Be[] = ["wasm", "cpu"];

// The stock kernels, saved before anything replaces them.
export const STOCK = new Map<string, tf.KernelConfig>();
for (const be of BACKENDS) {
  for (const k of ["BatchMatMul", "_FusedMatMul"]) STOCK.set(`${be}/${k}`, tf.getKernel(k, be));
}
// Is a BLAS library here at all? Tests that need one are skipped (and say so) where it is not.
export const PROBE = enableBlas();
disableBlas();
export const NO_BLAS = !PROBE.enabled;
if (NO_BLAS) console.warn(`blas_test: BLAS tests skipped: ${PROBE.reason}`);

export function assertStock(be: Be) {
  for (const k of ["BatchMatMul", "_FusedMatMul"]) {
    assert.equal(tf.getKernel(k, be), STOCK.get(`${be}/${k}`), `${k} on ${be} should be stock`);
  }
}

export function assertBlas(be: Be) {
  for (const k of ["BatchMatMul", "_FusedMatMul"]) {
    assert.notEqual(
      tf.getKernel(k, be).kernelFunc,
      STOCK.get(`${be}/${k}`)!.kernelFunc,
      `${k} on ${be} should be the BLAS kernel`,
    );
  }
}

export function randn(rng: Rng, shape: number[]): Float32Array {
  const out = new Float32Array(shape.reduce((p, d) => p * d, 1));
  for (let i = 0; i < out.length; i++) out[i] = rng.normal();
  return out;
}

/** Float64 matMul with numpy batch broadcasting, written independently of tfjs. */
export function refMatMul(
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  ta: boolean,
  tb: boolean,
): { values: Float64Array; shape: number[] } {
  const ra = aShape.length, rb = bShape.length;
  const [ar, ac] = [aShape[ra - 2], aShape[ra - 1]];
  const [br, bc] = [bShape[rb - 2], bShape[rb - 1]];
  const m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
  const aB = aShape.slice(0, -2), bB = bShape.slice(0, -2);
  const rank = Math.max(aB.length, bB.length);
  const pad = (s: number[]) => [...Array(rank - s.length).fill(1), ...s];
  const pa = pad(aB), pb = pad(bB);
  const outB = pa.map((d, i) => Math.max(d, pb[i]));
  const batch = outB.reduce((p, d) => p * d, 1);
  const values = new Float64Array(batch * m * n);
  for (let bi = 0; bi < batch; bi++) {
    // unravel bi over outB, then ravel into a's and b's batch dims (size-1 dims stay 0)
    let rest = bi, ia = 0, ib = 0, sa = 1, sb = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rest % outB[d];
      rest = Math.floor(rest / outB[d]);
      ia += (pa[d] === 1 ? 0 : c) * sa;
      ib += (pb[d] === 1 ? 0 : c) * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    const ao = ia * ar * ac, bo = ib * br * bc;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) {
          const av = ta ? a[ao + q * ac + i] : a[ao + i * ac + q];
          const bv = tb ? b[bo + j * bc + q] : b[bo + q * bc + j];
          s += av * bv;
        }
        values[(bi * m + i) * n + j] = s;
      }
    }
  }
  return { values, shape: [...outB, m, n] };
}

export function maxDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length, "lengths differ");
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
  return d;
}

export interface Case {
  a: number[];
  b: number[];
  ta: boolean;
  tb: boolean;
}

/** The transposed-storage shape of a logical [..., r, c] operand. */
export function stored(shape: number[], t: boolean): number[] {
  if (!t) return shape;
  const s = shape.slice();
  [s[s.length - 2], s[s.length - 1]] = [s[s.length - 1], s[s.length - 2]];
  return s;
}

export function inputs(c: Case, seed: number) {
  const rng = new Rng(seed);
  return { a: randn(rng, c.a), b: randn(rng, c.b) };
}

export function forward(c: Case, d: { a: Float32Array; b: Float32Array }) {
  return tf.tidy(() => {
    const y = tf.matMul(tf.tensor(d.a, c.a), tf.tensor(d.b, c.b), c.ta, c.tb);
    return { values: y.dataSync().slice(), shape: y.shape };
  });
}
