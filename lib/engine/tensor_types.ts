/**
 * Names for the tfjs types that the public API takes and returns: tensors of each rank, the scalar
 * a loss is, the variables that hold weights, and the map of gradients by variable name.
 *
 * Each is an alias of the tfjs type of the same name (`Tensor3D` is `tf.Tensor3D`), so values pass
 * freely between this package and tfjs. They exist so the package's documentation names types it
 * exports: a signature spelled `tf.Tensor3D` points into tfjs's declarations, which `deno doc`
 * counts as a private type, and re-exporting tfjs's own declarations would pull all of them (most
 * without docs) into this package's docs.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import type { Scalar, Tensor2D } from "./tensor_types.ts";
 * await tf.setBackend("cpu");
 * const x: Tensor2D = tf.tensor2d([[1, 2], [3, 4]]);
 * const total: Scalar = x.sum();
 * if (total.dataSync()[0] !== 10) throw new Error(`got ${total.dataSync()}`);
 * ```
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** A tfjs tensor of any rank (`tf.Tensor`). */
export type Tensor = tf.Tensor;
/** A rank-0 tfjs tensor (`tf.Scalar`): one number, such as a loss. */
export type Scalar = tf.Scalar;
/** A rank-1 tfjs tensor (`tf.Tensor1D`), such as a bias or a LayerNorm gain [D]. */
export type Tensor1D = tf.Tensor1D;
/** A rank-2 tfjs tensor (`tf.Tensor2D`), such as a weight matrix [in, out] or position embeddings [N, D]. */
export type Tensor2D = tf.Tensor2D;
/** A rank-3 tfjs tensor (`tf.Tensor3D`), such as tokens [B, L, D] or patches [B, N, p*p*C]. */
export type Tensor3D = tf.Tensor3D;
/** A rank-4 tfjs tensor (`tf.Tensor4D`), such as a batch of images [B, H, W, C] (NHWC). */
export type Tensor4D = tf.Tensor4D;
/** A trainable (or frozen) tfjs variable (`tf.Variable`): the mutable tensor a weight lives in. */
export type Variable = tf.Variable;
/** Tensors by name (`tf.NamedTensorMap`), such as gradients keyed by variable name. */
export type NamedTensorMap = tf.NamedTensorMap;
