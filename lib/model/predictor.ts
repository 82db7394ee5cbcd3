/**
 * The I-JEPA predictor: a narrow ViT that, given the context tokens, predicts the target encoder's
 * representation of each patch of each target block.
 *
 *   1. project context tokens [B, Lc, D] to the predictor width Dp and add their position embedding;
 *   2. for each target block, append one learned mask token per target patch, plus that patch's
 *      position embedding (this is how the predictor knows *where* to predict);
 *   3. run the blocks, normalise, keep the mask-token outputs and project them back to D.
 *
 * As in the official code, each target block is predicted in its own sequence: the context is
 * repeated once per block, so blocks cannot see each other's mask tokens. All M blocks of a batch run
 * in one call, stacked block-major along the batch axis ([M*B, ...], row m*B + b is block m of
 * example b), which keeps the GEMMs large.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { modelConfig } from "./config.ts";
 * import { Predictor } from "./predictor.ts";
 * import { Rng } from "../engine/rng.ts";
 * await tf.setBackend("cpu");
 * const cfg = modelConfig("tiny");
 * const pred = new Predictor(cfg, new Rng(1));
 * const ctx = tf.zeros([1, 3, cfg.width]) as tf.Tensor3D; // one example, 3 context tokens
 * const out = pred.forward(ctx, {
 *   batchSize: 1, contextIdx: new Int32Array([0, 1, 2]), contextLen: 3, contextValid: null,
 *   nTargets: 2, targetLen: 2, targetIdx: new Int32Array([5, 6, 9, 10]),
 * });
 * if (out.shape.join() !== `2,2,${cfg.width}`) throw new Error(`shape ${out.shape}`);
 * pred.dispose();
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ResolvedConfig } from "./config.ts";
import { layerNorm, linear, takeRows } from "../engine/ops.ts";
import { ParamStore } from "./params.ts";
import { sincosPosEmbed } from "./posembed.ts";
import { Rng } from "../engine/rng.ts";
import type { Tensor2D, Tensor3D } from "../engine/tensor_types.ts";
import { blockForward, type BlockShape, INIT_STD, initBlock, keyPaddingBias } from "./transformer.ts";
import { checkMasks, type CollatedMasks } from "../masks/batch.ts";

/** The predictor network. Parameter names follow the official state dict. */
export class Predictor {
  /** The parameters, by official name. */
  readonly params: ParamStore;
  /** The config with its derived numbers. */
  readonly cfg: ResolvedConfig;
  /** Fixed sin-cos position embedding at the predictor width [N, Dp]. */
  readonly posEmbed: Tensor2D;

  /** `rng` draws the initial weights; `null` leaves them zero (for weights about to be loaded). */
  constructor(cfg: ResolvedConfig, rng: Rng | null) {
    this.cfg = cfg;
    this.params = new ParamStore({ init: rng !== null });
    rng ??= new Rng(0); // never drawn from: the store does not initialise
    const { width: D, predictorWidth: Dp, predictorDepth } = cfg;
    const hidden = 4 * Dp; // the official predictor always uses MLP ratio 4 (even for ViT-g)
    this.params.normal("predictor_embed.weight", [D, Dp], INIT_STD, rng);
    this.params.fill("predictor_embed.bias", [Dp], 0);
    this.params.normal("mask_token", [Dp], INIT_STD, rng);
    for (let i = 0; i < predictorDepth; i++) {
      initBlock(this.params, `predictor_blocks.${i}`, Dp, hidden, i + 1, rng);
    }
    this.params.fill("predictor_norm.weight", [Dp], 1);
    this.params.fill("predictor_norm.bias", [Dp], 0);
    this.params.normal("predictor_proj.weight", [Dp, D], INIT_STD, rng);
    this.params.fill("predictor_proj.bias", [D], 0);
    this.posEmbed = tf.tensor2d(sincosPosEmbed(cfg.gridSize, cfg.gridSize, Dp), [cfg.numPatches, Dp]);
  }

  /** Predict every target patch: context [B, Lc, D] -> predictions [M*B, Lt, D]. */
  forward(context: Tensor3D, m: CollatedMasks): Tensor3D {
    const [B, Lc, D] = context.shape;
    if (D !== this.cfg.width || Lc !== m.contextLen) {
      throw new Error(
        `Predictor.forward: expected context [${m.batchSize}, ${m.contextLen}, ${this.cfg.width}], got [${context.shape}]`,
      );
    }
    checkMasks(m, B, this.cfg.numPatches, "Predictor.forward");
    const { nTargets: M, targetLen: Lt } = m;
    const Dp = this.cfg.predictorWidth;
    const T = Lc + Lt;
    // Key padding: padded context slots are hidden from every query; mask tokens are always real.
    let keyBias: tf.Tensor3D | undefined;
    if (m.contextValid) {
      const valid = new Uint8Array(M * B * T);
      for (let r = 0; r < M * B; r++) {
        const b = r % B;
        valid.set(m.contextValid.subarray(b * Lc, (b + 1) * Lc), r * T);
        valid.fill(1, r * T + Lc, (r + 1) * T);
      }
      keyBias = keyPaddingBias(valid, M * B, T);
    }
    const out = tf.tidy(() => {
      const w = (n: string) => this.params.get(n);
      const ctx = linear(
        context,
        w("predictor_embed.weight") as tf.Tensor2D,
        w("predictor_embed.bias") as tf.Tensor1D,
      )
        .add(takeRows(this.posEmbed, m.contextIdx).reshape([B, Lc, Dp])); // [B, Lc, Dp]
      const ctxRep = M === 1 ? ctx : tf.tile(ctx, [M, 1, 1]); // [M*B, Lc, Dp], block-major
      const queries = takeRows(this.posEmbed, m.targetIdx).reshape([M * B, Lt, Dp]).add(w("mask_token")); // [M*B, Lt, Dp]
      let x: tf.Tensor = tf.concat([ctxRep, queries], 1).reshape([M * B * T, Dp]);
      const shape: BlockShape = {
        batch: M * B,
        tokens: T,
        heads: this.cfg.predictorHeads,
        eps: this.cfg.layerNormEps,
        keyBias,
      };
      const depth = this.cfg.predictorDepth;
      for (let i = 0; i < depth; i++) {
        // The loss reads the mask tokens' outputs only: the last block computes those rows alone
        // after its attention (keepLast). The official code runs every row and then selects; the
        // outputs and gradients are the same, with about half the last block's products.
        const last = i === depth - 1 ? { ...shape, keepLast: Lt } : shape;
        x = blockForward(this.params, `predictor_blocks.${i}`, x, last);
      }
      x = layerNorm(
        x,
        this.cfg.layerNormEps,
        w("predictor_norm.weight") as tf.Tensor1D,
        w("predictor_norm.bias") as tf.Tensor1D,
      );
      const preds = x.reshape([M * B, Lt, Dp]); // the mask-token outputs
      return linear(
        preds,
        w("predictor_proj.weight") as tf.Tensor2D,
        w("predictor_proj.bias") as tf.Tensor1D,
      ) as tf.Tensor3D; // [M*B, Lt, D]
    });
    keyBias?.dispose();
    return out;
  }

  /** Free the parameters and constants. */
  dispose(): void {
    this.params.dispose();
    this.posEmbed.dispose();
  }
}
