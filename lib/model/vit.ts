/**
 * The Vision Transformer encoder of I-JEPA (the context encoder, and the target encoder, which has
 * the same shape): patch embedding, fixed 2-D sin-cos position embeddings, pre-norm blocks and a
 * final LayerNorm. No [CLS] token, as in the official code.
 *
 * It can encode the whole image or only a chosen subset of patches per example (the context). The
 * subset is picked from the patches before the embedding, so only the selected tokens are computed.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { modelConfig } from "./config.ts";
 * import { Rng } from "../engine/rng.ts";
 * import { VisionTransformer } from "./vit.ts";
 * await tf.setBackend("cpu");
 * const enc = new VisionTransformer(modelConfig("tiny"), new Rng(0));
 * const x = tf.zeros([2, 16, 16, 1]) as tf.Tensor4D; // NHWC
 * const all = enc.forward(x); // [2, 16, 32]: every patch
 * const ctx = enc.forward(x, { indices: new Int32Array([0, 5, 1, 2]), length: 2 }); // [2, 2, 32]
 * if (all.shape.join() !== "2,16,32" || ctx.shape.join() !== "2,2,32") throw new Error("shapes");
 * enc.dispose();
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ResolvedConfig } from "./config.ts";
import { gatherRows, layerNorm, linear, patchify, takeRows } from "../engine/ops.ts";
import { ParamStore } from "./params.ts";
import { sincosPosEmbed } from "./posembed.ts";
import { Rng } from "../engine/rng.ts";
import type { Tensor, Tensor2D, Tensor3D, Tensor4D } from "../engine/tensor_types.ts";
import { blockForward, type BlockShape, INIT_STD, initBlock, keyPaddingBias } from "./transformer.ts";

/** A per-example subset of patches: `indices` [B * length] row-major, patch index = row * cols + col. */
export interface TokenSelection {
  /** Patch indices, [B * length] row-major. */
  indices: Int32Array;
  /** Patches selected per example. */
  length: number;
  /** [B * length], 1 real / 0 padding; padded slots are masked out of attention. */
  valid?: Uint8Array | null;
}

/** Check an NHWC image batch against a config; the error names expected and actual shapes. */
export function checkImages(images: Tensor, cfg: ResolvedConfig, where: string): void {
  const s = images.shape;
  const want = `[B, ${cfg.imageSize}, ${cfg.imageSize}, ${cfg.channels}]`;
  if (s.length !== 4 || s[1] !== cfg.imageSize || s[2] !== cfg.imageSize || s[3] !== cfg.channels) {
    throw new Error(`${where}: expected images of shape ${want} (NHWC), got [${s.join(", ")}]`);
  }
}

/** Options for {@link VisionTransformer.encodePatches}. */
export interface EncodeOptions {
  /** Also return the outputs of the last `layers` blocks (before the final norm), oldest first. */
  layers?: number;
  /**
   * Only these rows of the [B*L] tokens out of the last block and the final norm (forward only, see
   * {@link VisionTransformer.encodeRows}); `out` is then [1, rows, D]. Not with `layers`.
   */
  rows?: Int32Array;
}

/** The ViT encoder. Parameter names follow the official state dict. */
export class VisionTransformer {
  /** The parameters, by official name. */
  readonly params: ParamStore;
  /** The config with its derived numbers. */
  readonly cfg: ResolvedConfig;
  /** Fixed sin-cos position embedding [N, D] (not trained, as in the official code). */
  readonly posEmbed: Tensor2D;

  /** `rng` draws the initial weights; `null` leaves them zero (for weights about to be loaded). */
  constructor(cfg: ResolvedConfig, rng: Rng | null) {
    this.cfg = cfg;
    this.params = new ParamStore({ init: rng !== null });
    rng ??= new Rng(0); // never drawn from: the store does not initialise
    const { width: D, patchDim: P, depth, mlpHidden } = cfg;
    // The official patch embedding is a stride-p convolution with kernel [D, C, p, p]; as a linear
    // layer on flattened (row, col, channel) patches it is the same map, kept as [p*p*C, D].
    this.params.normal("patch_embed.proj.weight", [P, D], INIT_STD, rng);
    this.params.fill("patch_embed.proj.bias", [D], 0);
    for (let i = 0; i < depth; i++) initBlock(this.params, `blocks.${i}`, D, mlpHidden, i + 1, rng);
    this.params.fill("norm.weight", [D], 1);
    this.params.fill("norm.bias", [D], 0);
    this.posEmbed = tf.tensor2d(sincosPosEmbed(cfg.gridSize, cfg.gridSize, D), [cfg.numPatches, D]);
  }

  /** Encode NHWC images [B, H, W, C]: all patches, or the selected ones. Returns [B, L, D]. */
  forward(images: Tensor4D, sel?: TokenSelection): Tensor3D {
    checkImages(images, this.cfg, "VisionTransformer.forward");
    return tf.tidy(() => this.encodePatches(patchify(images, this.cfg.patchSize), sel).out);
  }

  /**
   * The final tokens of the rows `rows` of [B*N] (example b's token t is row b*N + t) from patches
   * [B, N, p*p*C]: [rows, D], each equal to that row of {@link encodePatches}' output. Every token
   * still attends to all the others; the last block's projection and MLP and the final norm run for
   * these rows only. For forward passes (no gradient): the targets read only the target blocks' rows.
   */
  encodeRows(patches: Tensor3D, rows: Int32Array): Tensor2D {
    return tf.tidy(() => {
      const { out } = this.encodePatches(patches, undefined, { rows });
      return out.reshape([rows.length, this.cfg.width]) as Tensor2D;
    });
  }

  /**
   * Encode patches [B, N, p*p*C] (from `patchify`), all or a selection. Returns the final tokens
   * [B, L, D] and, if asked, the last blocks' outputs.
   */
  encodePatches(
    patches: Tensor3D,
    sel?: TokenSelection,
    opts: EncodeOptions = {},
  ): { out: Tensor3D; layers: Tensor3D[] } {
    const { numPatches: N, patchDim: P, width: D } = this.cfg;
    const [B] = patches.shape;
    if (patches.shape[1] !== N || patches.shape[2] !== P) {
      throw new Error(`encodePatches: expected patches [B, ${N}, ${P}], got [${patches.shape}]`);
    }
    const L = sel ? sel.length : N;
    if (sel && sel.indices.length !== B * L) {
      throw new Error(
        `encodePatches: selection has ${sel.indices.length} indices, expected batch ${B} x length ${L}`,
      );
    }
    const want = opts.layers ?? 0;
    if (want < 0 || want > this.cfg.depth) {
      throw new Error(`encodePatches: layers must be in [0, ${this.cfg.depth}], got ${want}`);
    }
    const rows = opts.rows;
    if (rows && want > 0) throw new Error("encodePatches: rows and layers do not go together");
    const keyBias = sel?.valid ? keyPaddingBias(sel.valid, B, L) : undefined;
    const result = tf.tidy(() => {
      const picked = sel ? gatherRows(patches, sel.indices, L) : patches; // [B, L, P]
      const pos = sel ? takeRows(this.posEmbed, sel.indices) : tf.tile(this.posEmbed, [B, 1]); // [B*L, D]
      const w = (n: string) => this.params.get(n);
      let x: tf.Tensor = linear(
        picked.reshape([B * L, P]),
        w("patch_embed.proj.weight") as tf.Tensor2D,
        w("patch_embed.proj.bias") as tf.Tensor1D,
      ).add(pos); // [B*L, D]
      const shape: BlockShape = {
        batch: B,
        tokens: L,
        heads: this.cfg.heads,
        eps: this.cfg.layerNormEps,
        keyBias,
      };
      const layers: tf.Tensor3D[] = [];
      for (let i = 0; i < this.cfg.depth; i++) {
        const last = rows && i === this.cfg.depth - 1 ? { ...shape, keepRows: rows } : shape;
        x = blockForward(this.params, `blocks.${i}`, x, last);
        if (i >= this.cfg.depth - want) layers.push(x.reshape([B, L, D]) as tf.Tensor3D);
      }
      const out = layerNorm(
        x,
        this.cfg.layerNormEps,
        w("norm.weight") as tf.Tensor1D,
        w("norm.bias") as tf.Tensor1D,
      )
        .reshape(rows ? [1, rows.length, D] : [B, L, D]) as tf.Tensor3D;
      return { out, layers };
    });
    keyBias?.dispose();
    return result;
  }

  /** Free the parameters and constants. */
  dispose(): void {
    this.params.dispose();
    this.posEmbed.dispose();
  }
}
