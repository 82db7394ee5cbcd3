/**
 * AdamW (decoupled weight decay), as PyTorch's `torch.optim.AdamW` that the official code uses:
 *
 *     p <- p * (1 - lr * wd)                        (decay, skipped for biases and 1-D parameters)
 *     m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
 *     p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 *
 * The learning rate and weight decay are passed to every `step`, so schedules stay pure functions
 * of the step (lib/train/schedules.ts) and a resumed run needs no replay. The moments can be exported and
 * restored for checkpoints.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { AdamW } from "./adamw.ts";
 * await tf.setBackend("cpu");
 * const w = tf.variable(tf.tensor1d([1, -1]));
 * const opt = new AdamW([["w", w]]);
 * opt.step({ w: tf.tensor1d([1, -1]) }, { lr: 0.1, weightDecay: 0 });
 * const got = Array.from(w.dataSync()); // each moved by lr against its gradient's sign
 * if (Math.abs(got[0] - 0.9) > 1e-5 || Math.abs(got[1] + 0.9) > 1e-5) throw new Error(`${got}`);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fusedEnabled } from "../engine/fused_mode.ts";
import { adamwUpdateAll } from "../engine/fused_update_all.ts";
import type { NamedTensorMap, Tensor, Variable } from "../engine/tensor_types.ts";

/** Hyper-parameters that do not change during training. */
export interface AdamWOptions {
  /** Decay rate of the first-moment estimate (default 0.9). */
  beta1?: number;
  /** Decay rate of the second-moment estimate (default 0.999). */
  beta2?: number;
  /** Added to the denominator for numerical stability (default 1e-8). */
  eps?: number;
  /**
   * Which parameters get weight decay. Default: every parameter of rank 2 or more whose name does
   * not end in "bias", as the official `WD_exclude` groups (biases and 1-D parameters excluded).
   */
  decay?: (name: string, v: Variable) => boolean;
}

/** The per-step hyper-parameters. */
export interface StepParams {
  /** Learning rate of this step. */
  lr: number;
  /** Weight-decay coefficient of this step. */
  weightDecay: number;
}

/** Whether a parameter gets weight decay under the official rule. */
export function decays(name: string, v: Variable): boolean {
  return v.rank >= 2 && !name.endsWith("bias");
}

/** AdamW over a fixed list of named variables. */
export class AdamW {
  /** Decay rate of the first-moment estimate. */
  readonly beta1: number;
  /** Decay rate of the second-moment estimate. */
  readonly beta2: number;
  /** Added to the denominator for numerical stability. */
  readonly eps: number;
  /** Steps taken so far (t in the bias corrections). */
  t = 0;
  /** The optimised variables with their names. */
  readonly params: [string, Variable][];
  /** First-moment estimate per parameter name. */
  readonly m: Map<string, Variable> = new Map();
  /** Second-moment estimate per parameter name. */
  readonly v: Map<string, Variable> = new Map();
  /** Names of the parameters that get weight decay. */
  readonly withDecay: Set<string> = new Set();

  /** An optimizer over `params`; throws on an unknown option. */
  constructor(params: [string, Variable][], opts: AdamWOptions = {}) {
    for (const k of Object.keys(opts)) {
      if (!["beta1", "beta2", "eps", "decay"].includes(k)) {
        throw new Error(`AdamW: unknown option "${k}"; expected beta1, beta2, eps or decay`);
      }
    }
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.params = params;
    const rule = opts.decay ?? decays;
    for (const [name, p] of params) {
      if (this.m.has(name)) throw new Error(`AdamW: parameter "${name}" given twice`);
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
      if (rule(name, p)) this.withDecay.add(name);
    }
  }

  /**
   * Apply one update. `grads` maps the variable names tfjs uses (`variable.name`) or our names to
   * gradients; the gradients are disposed.
   */
  step(grads: NamedTensorMap, hp: StepParams): void {
    if (!(hp.lr >= 0) || !(hp.weightDecay >= 0)) {
      throw new RangeError(`AdamW.step: lr and weightDecay must be >= 0, got ${hp.lr} and ${hp.weightDecay}`);
    }
    this.t += 1;
    const { beta1: b1, beta2: b2, eps, t } = this;
    if (fusedEnabled()) {
      // every parameter in one kernel call, in place (lib/engine/fused_update_all.ts): the same update
      const ps: tf.Variable[] = [], ms: tf.Variable[] = [], vs: tf.Variable[] = [], gs: tf.Tensor[] = [];
      const flags: number[] = [];
      for (const [name, p] of this.params) {
        const g = grads[p.name] ?? grads[name];
        if (!g) continue; // not connected to the loss this step
        ps.push(p);
        ms.push(this.m.get(name)!);
        vs.push(this.v.get(name)!);
        gs.push(g);
        flags.push(this.withDecay.has(name) ? 1 : 0);
      }
      adamwUpdateAll(ps, ms, vs, gs, flags, {
        lr: hp.lr,
        weightDecay: hp.weightDecay,
        beta1: b1,
        beta2: b2,
        eps,
        step: t,
      });
      tf.dispose(Object.values(grads));
      return;
    }
    const c1 = 1 - Math.pow(b1, t);
    const c2 = 1 - Math.pow(b2, t);
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g = grads[p.name] ?? grads[name];
        if (!g) continue; // not connected to the loss this step
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const m1 = m.mul(b1).add(g.mul(1 - b1));
        const v1 = v.mul(b2).add(g.square().mul(1 - b2));
        m.assign(m1);
        v.assign(v1);
        const update = m1.div(c1).div(v1.div(c2).sqrt().add(eps)).mul(hp.lr);
        const decayed = this.withDecay.has(name) && hp.weightDecay > 0
          ? p.mul(1 - hp.lr * hp.weightDecay)
          : p;
        p.assign(decayed.sub(update));
      }
    });
    tf.dispose(Object.values(grads));
  }

  /** The optimizer state as named tensors (moments) plus the step count, for checkpoints. */
  stateTensors(): Record<string, Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [name] of this.params) {
      out[`adamw.m.${name}`] = this.m.get(name)!;
      out[`adamw.v.${name}`] = this.v.get(name)!;
    }
    return out;
  }

  /** Restore moments and step count; shapes are checked. */
  loadState(t: number, values: Record<string, Float32Array>): void {
    for (const [name, p] of this.params) {
      for (const [kind, store] of [["m", this.m], ["v", this.v]] as const) {
        const key = `adamw.${kind}.${name}`;
        const data = values[key];
        if (!data) throw new Error(`AdamW.loadState: missing "${key}"`);
        if (data.length !== p.size) {
          throw new Error(
            `AdamW.loadState: "${key}" has ${data.length} values, expected ${p.size} ([${p.shape}])`,
          );
        }
        store.get(name)!.assign(tf.tensor(data, p.shape));
      }
    }
    this.t = t;
  }

  /** Free the moments. */
  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}
