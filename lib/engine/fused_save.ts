/**
 * Keeping a custom op's intermediates for its backward pass without one kernel call each:
 * {@link keepForBackward}.
 *
 * `tf.customGrad`'s save function clones every tensor it is given (an `Identity` kernel call: no
 * work on wasm or webgpu, where a clone is a reference count, but a call through the engine all the
 * same), 13 a transformer block. The intermediates a block saves are its own outputs that nothing
 * else holds, so they need no clone: this module marks them kept (the op's scope leaves them alone)
 * and hands them to the backward pass, which disposes them. Inputs still go through `save` (they
 * belong to the caller), and that call is also how a recording tape is detected: tfjs clones only
 * when it records.
 *
 * A tape whose backward pass never reaches the op (its output is off the path to the loss) would
 * leave the kept tensors behind; they are released when the next call finds a different tape (tfjs
 * starts a fresh `activeTape` array for every top-level gradient) or by {@link releaseUnusedSaves}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

interface Held {
  tensors: tf.Tensor[];
  tape: unknown;
}
const held = new Set<Held>();

/** Disposes kept intermediates whose tape has ended without running their backward pass. */
export function releaseUnusedSaves(): number {
  const tape = tf.engine().state.activeTape;
  let n = 0;
  for (const h of held) {
    if (h.tape !== tape) {
      held.delete(h);
      tf.dispose(h.tensors);
      n += h.tensors.length;
    }
  }
  return n;
}

/**
 * Inside a `tf.customGrad` forward function: saves `inputs` through tfjs's `save` (cloned, as
 * tfjs does) and keeps `intermediates` (tensors made in this forward pass and held by nothing else)
 * as they are. Returns the function the backward pass calls once to take the intermediates; it
 * owns them from then on and must dispose them. When no tape is recording, nothing is kept and
 * the returned function throws.
 */
export function keepForBackward(
  save: tf.GradSaveFunc,
  inputs: tf.Tensor[],
  intermediates: tf.Tensor[],
): () => tf.Tensor[] {
  if (inputs.length === 0) throw new Error("keepForBackward: expected at least one input to save");
  releaseUnusedSaves();
  const state = tf.engine().state;
  const before = state.numTensors;
  save(inputs);
  if (state.numTensors === before) {
    return () => {
      throw new Error("keepForBackward: no tape was recording when the forward pass ran");
    };
  }
  const h: Held = { tensors: intermediates.map((t) => tf.keep(t)), tape: state.activeTape };
  held.add(h);
  return () => {
    if (!held.delete(h)) throw new Error("keepForBackward: the intermediates were taken or released already");
    return h.tensors;
  };
}
