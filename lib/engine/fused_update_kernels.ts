/**
 * The kernels that update parameters in one pass, each a {@link Spec}: an AdamW step (p, m and v)
 * and the target encoder's EMA.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Spec } from "./fused_spec.ts";

export const adamw: Spec = {
  outputs: (s) => [s.p, s.p, s.p],
  simd(k, x, [p1, m1, v1], s, a) {
    const lr = a.lr as number;
    k.f.ij_adamw(
      x.p,
      x.m,
      x.v,
      x.g,
      p1,
      m1,
      v1,
      tf.util.sizeFromShape(s.p),
      a.beta1 as number,
      a.beta2 as number,
      a.eps as number,
      lr / (a.c1 as number),
      1 / Math.sqrt(a.c2 as number),
      1 - lr * (a.decay as number),
    );
  },
  run({ p, m, v, g }, [p1, m1, v1], _s, a) {
    const b1 = a.beta1 as number, b2 = a.beta2 as number, eps = a.eps as number;
    const lr = a.lr as number, c1 = a.c1 as number, c2 = a.c2 as number;
    const keep = 1 - lr * (a.decay as number);
    const step = lr / c1, root = 1 / Math.sqrt(c2);
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const mi = b1 * m[i] + (1 - b1) * gi;
      const vi = b2 * v[i] + (1 - b2) * gi * gi;
      m1[i] = mi;
      v1[i] = vi;
      p1[i] = p[i] * keep - (step * mi) / (Math.sqrt(vi) * root + eps);
    }
  },
};

export const ema: Spec = {
  outputs: (s) => [s.t],
  simd(k, x, [out], s, a) {
    const m = a.momentum as number;
    k.f.ij_ema(x.t, x.c, out, tf.util.sizeFromShape(s.t), m, 1 - m);
  },
  run({ t, c }, [out], _s, a) {
    const m = a.momentum as number, k = 1 - m;
    for (let i = 0; i < t.length; i++) out[i] = m * t[i] + k * c[i];
  },
};
