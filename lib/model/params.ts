/**
 * Named parameters: every weight of a network is a `tf.Variable` stored under its name in the
 * official I-JEPA state dict (`blocks.0.attn.qkv.weight`, ...), so reading the code, a checkpoint
 * and our weights files all use one vocabulary.
 *
 * In memory a linear weight is kept as [in, out] (x @ W, tfjs's fast layout) where PyTorch stores
 * [out, in]; lib/io/weights.ts converts once at save and load.
 *
 * @example
 * ```ts
 * import { ParamStore } from "./params.ts";
 * import { Rng } from "../engine/rng.ts";
 * const p = new ParamStore();
 * p.normal("w", [2, 3], 0.02, new Rng(0));
 * if (p.count() !== 6) throw new Error("expected 6 parameters");
 * p.dispose();
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../engine/rng.ts";
import type { Variable } from "../engine/tensor_types.ts";

/** A map from official parameter names to tfjs variables. */
export class ParamStore {
  /** The variables by official parameter name. */
  readonly vars: Map<string, Variable> = new Map();
  /** When false, `normal` fills zeros and draws nothing (for weights about to be loaded). */
  readonly init: boolean;

  /** An empty store; `init: false` makes `normal` fill zeros (default true). */
  constructor(opts: { init?: boolean } = {}) {
    this.init = opts.init ?? true;
  }

  /** Add a variable with the given values. */
  set(name: string, values: Float32Array, shape: number[], trainable = true): Variable {
    if (this.vars.has(name)) throw new Error(`ParamStore: parameter "${name}" already exists`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (values.length !== n) {
      throw new Error(`ParamStore: "${name}" has shape [${shape}] (${n} values) but got ${values.length}`);
    }
    // tidy frees the temporary tensor; variables survive tidy.
    const v = tf.tidy(() => tf.variable(tf.tensor(values, shape, "float32"), trainable));
    this.vars.set(name, v);
    return v;
  }

  /**
   * A normal(0, std) initialisation truncated at +-2 (the official `trunc_normal_(std=0.02)`
   * truncates at +-2 absolute, which at std 0.02 never bites), drawn from `rng` so every backend
   * gets the same numbers.
   */
  normal(name: string, shape: number[], std: number, rng: Rng, trainable = true): Variable {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (!this.init) return this.set(name, v, shape, trainable);
    for (let i = 0; i < n; i++) {
      let z = rng.normal() * std;
      while (z < -2 || z > 2) z = rng.normal() * std;
      v[i] = z;
    }
    return this.set(name, v, shape, trainable);
  }

  /** A constant-filled parameter (zeros for biases, ones for LayerNorm scales). */
  fill(name: string, shape: number[], value: number, trainable = true): Variable {
    const v = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value);
    return this.set(name, v, shape, trainable);
  }

  /** The variable named `name`; an error naming the close names if absent. */
  get(name: string): Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`ParamStore: no parameter "${name}"`);
    return v;
  }

  /** Parameter names in creation order. */
  names(): string[] {
    return [...this.vars.keys()];
  }

  /** Trainable variables in creation order. */
  trainable(): Variable[] {
    return [...this.vars.values()].filter((v) => v.trainable);
  }

  /** Total number of scalar parameters. */
  count(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  /** Free every variable. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
