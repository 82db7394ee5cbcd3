/**
 * ijepa-deno: I-JEPA (Assran et al., CVPR 2023) in TypeScript for Deno and Jupyter.
 *
 * The model (context encoder, EMA target encoder, predictor), the multi-block masker, the
 * optimizer, data, and plotting helpers. Nothing runs on import.
 *
 * @example
 * ```ts
 * import { createMasker, IJEPA, Rng, setBackend } from "./mod.ts";
 * import * as tf from "@tensorflow/tfjs";
 * await setBackend("cpu", { quiet: true });
 * const model = new IJEPA("tiny", { seed: 0 });
 * const masker = createMasker({ rows: 4, cols: 4, nTargets: 2, minKeep: 2 });
 * const masks = masker.sample(new Rng(0), 2);
 * const images = tf.zeros([2, 16, 16, 1]) as tf.Tensor4D;
 * const loss = model.loss(images, masks);
 * console.log("loss", loss.dataSync()[0]);
 * model.dispose();
 * ```
 * @module
 */

// Engine: backends, BLAS, ops, randomness
export * from "./lib/engine/mod.ts";
// Data: datasets, augmentation, batches
export * from "./lib/data/mod.ts";
// Masks: the multi-block masker and the other strategies
export * from "./lib/masks/mod.ts";
// The model: encoders, predictor, loss, presets (Figure 3)
export * from "./lib/model/mod.ts";
// Weights in and out: safetensors, official checkpoints, shipped weights
export * from "./lib/io/mod.ts";
// Training: EMA trainer, AdamW, schedules, recipes
export * from "./lib/train/mod.ts";
// Evaluation: features, probes, ablations
export * from "./lib/eval/mod.ts";
// Looking inside: PCA, patch colours, retrieval, predictions
export * from "./lib/inside/mod.ts";
// Plots and notebook displays
export * from "./lib/viz/mod.ts";
