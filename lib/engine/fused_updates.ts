/**
 * One pass per parameter for the optimizer and the target encoder's EMA, instead of about 10 and 3
 * kernels: {@link adamwUpdate} and {@link emaUpdate}, on the kernels of
 * lib/engine/fused_update_kernels.ts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { runFused } from "./fused_kernels.ts";
import { need } from "./fused_mode.ts";

/** Hyper-parameters of one {@link adamwUpdate}. */
export interface AdamWUpdate {
  lr: number;
  /** Decoupled weight decay for this parameter (0 for biases and 1-D parameters). */
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** The step number t (>= 1) of the bias corrections. */
  step: number;
}

/**
 * One AdamW step of a parameter in one pass: assigns p, m and v (PyTorch's torch.optim.AdamW
 * formula, as lib/train/adamw.ts). Does not dispose `g`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { adamwUpdate } from "./fused_updates.ts";
 * await tf.setBackend("cpu");
 * const p = tf.variable(tf.tensor1d([1, -1])), m = tf.variable(tf.zeros([2])), v = tf.variable(tf.zeros([2]));
 * adamwUpdate(p, m, v, tf.tensor1d([1, -1]), { lr: 0.1, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 });
 * const got = p.dataSync();
 * if (Math.abs(got[0] - 0.9) > 1e-5 || Math.abs(got[1] + 0.9) > 1e-5) throw new Error(`${got}`);
 * ```
 */
export function adamwUpdate(
  p: tf.Variable,
  m: tf.Variable,
  v: tf.Variable,
  g: tf.Tensor,
  hp: AdamWUpdate,
): void {
  need("adamwUpdate");
  if (g.size !== p.size) {
    throw new Error(`adamwUpdate: gradient [${g.shape}] does not match parameter [${p.shape}]`);
  }
  const { lr, weightDecay, beta1, beta2, eps, step } = hp;
  const attrs = {
    lr,
    decay: weightDecay,
    beta1,
    beta2,
    eps,
    c1: 1 - Math.pow(beta1, step),
    c2: 1 - Math.pow(beta2, step),
  };
  // tidy: the reshapes are new tensor objects; assign keeps the data, tidy frees the objects
  tf.tidy(() => {
    const [p1, m1, v1] = runFused("IjAdamW", { p, m, v, g }, attrs) as tf.Tensor[];
    p.assign(p1.reshape(p.shape));
    m.assign(m1.reshape(p.shape));
    v.assign(v1.reshape(p.shape));
  });
}

/**
 * t <- momentum * t + (1 - momentum) * c in one pass (the target encoder's EMA).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { emaUpdate } from "./fused_updates.ts";
 * await tf.setBackend("cpu");
 * const t = tf.variable(tf.tensor1d([0, 1]));
 * emaUpdate(t, tf.tensor1d([1, 1]), 0.75);
 * if (t.dataSync().join() !== "0.25,1") throw new Error(`${t.dataSync()}`);
 * ```
 */
export function emaUpdate(t: tf.Variable, c: tf.Tensor, momentum: number): void {
  need("emaUpdate");
  if (c.size !== t.size) throw new Error(`emaUpdate: source [${c.shape}] does not match target [${t.shape}]`);
  tf.tidy(() => {
    const out = runFused("IjEma", { t, c }, { momentum }) as tf.Tensor;
    t.assign(out.reshape(t.shape));
  });
}
