/**
 * I-JEPA (the paper's Figure 3): a context encoder sees the context block; a predictor, told where
 * the target blocks are, predicts the target encoder's representations of those blocks; the target
 * encoder sees the whole image and is an exponential moving average (EMA) of the context encoder,
 * never trained by gradients.
 *
 *     loss = mean over target blocks of distance(predictor(contextEncoder(x_ctx), targets' positions),
 *                                                 layerNorm(targetEncoder(x))[target patches])
 *
 * Targets are normalised over the feature dimension (eps 1e-5, no affine, as the official
 * `F.layer_norm`), computed on the full image and then gathered per block. The loss is the mean over
 * all elements (every block has the same length within a batch, so this is also the mean over blocks).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { IJEPA } from "./ijepa.ts";
 * await tf.setBackend("cpu");
 * const model = new IJEPA("tiny", { seed: 0 });
 * const images = tf.randomNormal([2, 16, 16, 1], 0, 1, "float32", 1) as tf.Tensor4D;
 * const masks = {
 *   batchSize: 2, contextLen: 3, contextIdx: new Int32Array([0, 1, 2, 4, 5, 6]), contextValid: null,
 *   nTargets: 1, targetLen: 2, targetIdx: new Int32Array([10, 11, 14, 15]),
 * };
 * const loss = model.loss(images, masks);
 * if (!(loss.dataSync()[0] > 0)) throw new Error("loss should be positive");
 * model.dispose();
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type ModelConfig, modelConfig, type ResolvedConfig } from "./config.ts";
import { fusedEnabled } from "../engine/fused_mode.ts";
import { emaUpdateAll } from "../engine/fused_update_all.ts";
import { matMul } from "../engine/matmul.ts";
import { layerNorm, linear, patchify, smoothL1, takeRows, uniqueRows } from "../engine/ops.ts";
import { ParamStore } from "./params.ts";
import { Predictor } from "./predictor.ts";
import { checkMasks, type CollatedMasks } from "../masks/batch.ts";
import { Rng } from "../engine/rng.ts";
import { sigReg, SIGREG_SLICES, sigRegDirections } from "./sigreg.ts";
import type {
  NamedTensorMap,
  Scalar,
  Tensor,
  Tensor2D,
  Tensor3D,
  Tensor4D,
  Variable,
} from "../engine/tensor_types.ts";
import { INIT_STD } from "./transformer.ts";
import { checkImages, VisionTransformer } from "./vit.ts";

/** LayerNorm eps of the targets: `F.layer_norm`'s default in the official code. */
export const TARGET_EPS = 1e-5;

/** The slope inside the "dyntanh" target normalisation, tanh(alpha x) (see ModelConfig.targetNorm). */
export const DYNTANH_ALPHA = 0.5;

/** The parts of the model. */
export type ModelPart = "encoder" | "target_encoder" | "predictor";

/** Options for the {@link IJEPA} constructor. */
export interface IJEPAOptions {
  /** Seed for the initial weights (default 0). */
  seed?: number;
  /** Or a generator to draw them from. */
  rng?: Rng;
  /** Overrides on top of the preset. */
  overrides?: Partial<ModelConfig>;
  /**
   * Build only these parts (default all). Probing and embedding need only the target encoder,
   * which matters for the released ViT-H models: one encoder is 2.5 GB of float32.
   */
  parts?: readonly ModelPart[];
  /** Draw initial weights (default true); false leaves zeros for weights about to be loaded. */
  init?: boolean;
}

/** The whole model: context encoder, EMA target encoder, predictor (and the pixel head in pixel mode). */
export class IJEPA {
  /** The config with its derived numbers. */
  readonly cfg: ResolvedConfig;
  /** The parts this instance holds. */
  readonly parts: readonly ModelPart[];
  /** Linear map from predicted features to pixels, only in `pixel` target mode. */
  readonly pixelHead?: ParamStore;
  #encoder?: VisionTransformer;
  #target?: VisionTransformer;
  #predictor?: Predictor;

  /** A model from a preset name or a config; `opts` seeds it, overrides fields, picks parts. */
  constructor(config: string | ModelConfig, opts: IJEPAOptions = {}) {
    for (const k of Object.keys(opts)) {
      if (!["seed", "rng", "overrides", "parts", "init"].includes(k)) {
        throw new Error(`IJEPA: unknown option "${k}"; expected seed, rng, overrides, parts or init`);
      }
    }
    this.cfg = modelConfig(config, opts.overrides);
    const parts = opts.parts ?? ["encoder", "target_encoder", "predictor"];
    for (const p of parts) {
      if (!["encoder", "target_encoder", "predictor"].includes(p)) {
        throw new Error(`IJEPA: unknown part "${p}"; expected encoder, target_encoder or predictor`);
      }
    }
    this.parts = [...parts];
    const init = opts.init ?? true;
    const rng = init ? opts.rng ?? new Rng(opts.seed ?? 0) : null;
    if (parts.includes("encoder")) this.#encoder = new VisionTransformer(this.cfg, rng);
    if (parts.includes("target_encoder")) {
      // The target encoder starts as an exact copy and then only follows the EMA.
      this.#target = new VisionTransformer(this.cfg, null);
      if (this.#encoder) {
        for (const [name, v] of this.#encoder.params.vars) this.#target.params.get(name).assign(v);
      } else if (rng) {
        // built alone: draw it as the encoder would have been drawn
        this.#target.dispose();
        this.#target = new VisionTransformer(this.cfg, rng);
      }
      for (const v of this.#target.params.vars.values()) {
        // Not trainable: optimizers and tf.variableGrads skip it; updateTarget assigns it.
        (v as { trainable: boolean }).trainable = false;
      }
    }
    if (parts.includes("predictor")) this.#predictor = new Predictor(this.cfg, rng);
    if (this.cfg.targetMode === "pixel" && parts.includes("predictor")) {
      this.pixelHead = new ParamStore({ init });
      const shape = [this.cfg.width, this.cfg.patchDim];
      this.pixelHead.normal("pixel_head.weight", shape, INIT_STD, rng ?? new Rng(0));
      this.pixelHead.fill("pixel_head.bias", [this.cfg.patchDim], 0);
    }
  }

  #missing(part: ModelPart): never {
    throw new Error(`IJEPA: this model was built without its ${part} (parts: ${this.parts.join(", ")})`);
  }

  /** The context encoder (trained by gradients). */
  get encoder(): VisionTransformer {
    return this.#encoder ?? this.#missing("encoder");
  }

  /** The target encoder (an EMA of the context encoder). */
  get targetEncoder(): VisionTransformer {
    return this.#target ?? this.#missing("target_encoder");
  }

  /** The predictor. */
  get predictor(): Predictor {
    return this.#predictor ?? this.#missing("predictor");
  }

  /** The variables trained by gradient descent: context encoder, predictor (and pixel head). */
  trainableVariables(): Variable[] {
    return [
      ...this.encoder.params.trainable(),
      ...this.predictor.params.trainable(),
      ...(this.pixelHead?.trainable() ?? []),
    ];
  }

  /** Named trainable variables with their part prefix ("encoder.", "predictor.", "pixel_head."). */
  namedTrainable(): [string, Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [n, v] of this.encoder.params.vars) out.push([`encoder.${n}`, v]);
    for (const [n, v] of this.predictor.params.vars) out.push([`predictor.${n}`, v]);
    if (this.pixelHead) { for (const [n, v] of this.pixelHead.vars) out.push([n, v]); }
    return out;
  }

  /**
   * The regression targets for the masks: [M*B, Lt, D] normalised target-encoder features (or
   * [M*B, Lt, p*p*C] normalised pixels in pixel mode), block-major like the predictor's output.
   * No gradient flows into them.
   */
  targets(images: Tensor4D, masks: CollatedMasks): Tensor3D {
    checkImages(images, this.cfg, "IJEPA.targets");
    return tf.tidy(() => this.targetsFromPatches(patchify(images, this.cfg.patchSize), masks));
  }

  /** Targets from patchified images: the target encoder's features (or pixels) at the target blocks. */
  private targetsFromPatches(
    patches: tf.Tensor3D,
    masks: CollatedMasks,
    onFeatures?: (h: tf.Tensor) => void,
  ): tf.Tensor3D {
    const { numPatches: N } = this.cfg;
    const B = patches.shape[0];
    checkMasks(masks, B, N, "IJEPA.targets");
    const { nTargets: M, targetLen: Lt } = masks;
    // Flat row indices into [B*N, .]: block m of example b reads example b's rows.
    const flat = new Int32Array(M * B * Lt);
    for (let r = 0; r < M * B; r++) {
      const b = r % B;
      for (let j = 0; j < Lt; j++) flat[r * Lt + j] = b * N + masks.targetIdx[r * Lt + j];
    }
    // Without onFeatures, only the target blocks' rows leave the target encoder's last block (about
    // half of each example's tokens); the official code runs every row through it. The same targets.
    const u = this.cfg.targetMode === "pixel" || onFeatures || !flat.length ? undefined : uniqueRows(flat);
    return tf.tidy(() => {
      let full: tf.Tensor; // [rows, F]
      if (this.cfg.targetMode === "pixel") {
        // MAE-style per-patch normalisation of the pixels (eps 1e-6, as MAE's norm_pix_loss).
        const P = this.cfg.patchDim;
        full = layerNorm(patches.reshape([B * N, P]), 1e-6);
      } else {
        const h = u
          ? this.targetEncoder.encodeRows(patches, u.rows)
          : this.targetEncoder.encodePatches(patches).out;
        onFeatures?.(h); // [B, N, D]
        // "dyntanh" (off by default): a fixed tanh(alpha x), alpha = DyT's initial 0.5 (Zhu et al. 2025), no
        // affine; our reading of arXiv 2508.02829's abstract (keeps each token's norm), not its code
        const flatH = h.reshape([-1, this.cfg.width]);
        full = this.cfg.targetNorm === "dyntanh"
          ? flatH.mul(DYNTANH_ALPHA).tanh()
          : layerNorm(flatH, TARGET_EPS);
      }
      const F = full.shape[1] as number;
      // No gradient reaches the targets: they depend only on the images and the target encoder,
      // whose variables are not trainable.
      return takeRows(full as tf.Tensor2D, u?.at ?? flat).reshape([M * B, Lt, F]) as tf.Tensor3D;
    });
  }

  /** The predictions for the masks' target blocks: [M*B, Lt, D] (or pixels in pixel mode). */
  predict(images: Tensor4D, masks: CollatedMasks): Tensor3D {
    checkImages(images, this.cfg, "IJEPA.predict");
    return tf.tidy(() => this.predictFromPatches(patchify(images, this.cfg.patchSize), masks));
  }

  /** Predictor outputs from patchified images. */
  private predictFromPatches(patches: tf.Tensor3D, masks: CollatedMasks): tf.Tensor3D {
    return this.predictWithContext(patches, masks).pred;
  }

  /** Predictions and the context tokens they came from ([B, Lc, D], for the collapse terms). */
  private predictWithContext(
    patches: tf.Tensor3D,
    masks: CollatedMasks,
  ): { pred: tf.Tensor3D; ctx: tf.Tensor3D } {
    return tf.tidy(() => {
      const sel = { indices: masks.contextIdx, length: masks.contextLen, valid: masks.contextValid };
      const ctx = this.encoder.encodePatches(patches, sel).out; // [B, Lc, D]
      let pred = this.predictor.forward(ctx, masks); // [M*B, Lt, D]
      if (this.pixelHead) {
        pred = linear(
          pred,
          this.pixelHead.get("pixel_head.weight") as tf.Tensor2D,
          this.pixelHead.get("pixel_head.bias") as tf.Tensor1D,
        ) as tf.Tensor3D;
      }
      return { pred, ctx };
    });
  }

  /**
   * The training objective: the prediction distance plus the optional collapse terms. `draw` gives
   * SIGReg's random directions (a fixed draw when absent).
   */
  private objective(patches: tf.Tensor3D, masks: CollatedMasks, target: tf.Tensor3D, draw?: Rng): tf.Scalar {
    return tf.tidy(() => {
      const { pred, ctx } = this.predictWithContext(patches, masks);
      let loss = distance(pred, target, this.cfg.loss);
      const { varianceWeight: vw, covarianceWeight: cw, sigregWeight: sw, width } = this.cfg;
      const tokens = ctx.reshape([-1, width]) as tf.Tensor2D;
      if (vw > 0 || cw > 0) loss = loss.add(vicReg(tokens, vw, cw));
      if (sw > 0) {
        // one embedding per image (the mean of its context tokens) or every token: lib/model/sigreg.ts
        const dirs = tf.tensor2d(sigRegDirections(draw ?? new Rng(0), width), [width, SIGREG_SLICES]);
        const samples = this.cfg.sigregOn === "tokens" ? tokens : ctx.mean(1) as tf.Tensor2D;
        loss = loss.add(sigReg(samples, dirs).mul(sw));
      }
      return loss as tf.Scalar;
    });
  }

  /** The I-JEPA loss of one batch (a scalar), differentiable in the context encoder and predictor. */
  loss(images: Tensor4D, masks: CollatedMasks): Scalar {
    checkImages(images, this.cfg, "IJEPA.loss");
    return tf.tidy(() => {
      const patches = patchify(images, this.cfg.patchSize);
      const target = this.targetsFromPatches(patches, masks);
      return this.objective(patches, masks, target);
    });
  }

  /**
   * The loss and its gradients for the trainable variables. The targets are computed first,
   * outside the gradient tape, so the target encoder's activations are freed before the backward
   * pass instead of being recorded with it. With `measureStd`, `targetStd` is the targets'
   * {@link featureStd} as a tensor the caller reads (asynchronously) and disposes. `draw` gives the
   * SIGReg term's random directions when `sigregWeight` > 0 (the trainer passes one per step).
   */
  lossAndGrads(
    images: Tensor4D,
    masks: CollatedMasks,
    opts: { measureStd?: boolean; draw?: Rng } = {},
  ): { loss: Scalar; grads: NamedTensorMap; targetStd?: Scalar } {
    checkImages(images, this.cfg, "IJEPA.lossAndGrads");
    const patches = patchify(images, this.cfg.patchSize);
    let targetStd: tf.Scalar | undefined;
    const measure = opts.measureStd ? (h: tf.Tensor) => (targetStd = tf.keep(featureStd(h))) : undefined;
    const target = tf.tidy(() => this.targetsFromPatches(patches, masks, measure));
    try {
      const { value, grads } = tf.variableGrads(
        () => this.objective(patches, masks, target, opts.draw),
        this.trainableVariables(),
      );
      return { loss: value, grads, targetStd };
    } finally {
      patches.dispose();
      target.dispose();
    }
  }

  /**
   * The EMA step of the target encoder: t = m * t + (1 - m) * c for every parameter, with
   * momentum m in [0, 1].
   */
  updateTarget(momentum: number): void {
    if (!(momentum >= 0 && momentum <= 1)) {
      throw new RangeError(`updateTarget: momentum must be in [0, 1], got ${momentum}`);
    }
    if (fusedEnabled()) {
      // every parameter in one kernel call, in place (lib/engine/fused_update_all.ts), the same formula
      const pairs = [...this.encoder.params.vars];
      emaUpdateAll(pairs.map(([n]) => this.targetEncoder.params.get(n)), pairs.map(([, c]) => c), momentum);
      return;
    }
    tf.tidy(() => {
      for (const [name, c] of this.encoder.params.vars) {
        const t = this.targetEncoder.params.get(name);
        t.assign(t.mul(momentum).add(c.mul(1 - momentum)));
      }
    });
  }

  /** Free every variable and constant. */
  dispose(): void {
    this.#encoder?.dispose();
    this.#target?.dispose();
    this.#predictor?.dispose();
    this.pixelHead?.dispose();
  }
}

/** Mean elementwise distance: smooth-L1 (official code) or squared error (the paper's L2). */
export function distance(pred: Tensor, target: Tensor, kind: "smooth_l1" | "l2"): Scalar {
  if (pred.shape.join() !== target.shape.join()) {
    throw new Error(`distance: predictions [${pred.shape}] and targets [${target.shape}] differ in shape`);
  }
  return tf.tidy(() => {
    const d = pred.sub(target);
    return (kind === "l2" ? d.square() : smoothL1(d)).mean() as tf.Scalar;
  });
}

/**
 * VICReg's variance and covariance terms on tokens x [R, D] (Bardes et al. 2022; C-JEPA adds them to
 * I-JEPA): `vw * mean_d relu(1 - sqrt(var_d + 1e-4)) + cw * sum_{i != j} cov_ij^2 / D`. Padded
 * context slots, when the masks are padded, are included: a small bias we accept for simplicity.
 */
export function vicReg(x: Tensor2D, vw: number, cw: number): Scalar {
  return tf.tidy(() => {
    const [R, D] = x.shape;
    const xc = x.sub(x.mean(0, true)); // [R, D]
    const variance = xc.square().sum(0).div(Math.max(1, R - 1)); // [D]
    let loss = tf.relu(tf.scalar(1).sub(variance.add(1e-4).sqrt())).mean().mul(vw);
    if (cw > 0) {
      const cov = matMul(xc as tf.Tensor2D, xc as tf.Tensor2D, true, false).div(Math.max(1, R - 1)); // [D, D]
      const off = cov.square().sum().sub(variance.square().sum());
      loss = loss.add(off.div(D).mul(cw));
    }
    return loss as tf.Scalar;
  });
}

/**
 * Collapse check: the mean over feature dimensions of the standard deviation across tokens, for
 * features [..., D]. A collapsed encoder maps every input to the same vector and this goes to 0.
 */
export async function meanFeatureStd(features: Tensor): Promise<number> {
  const std = featureStd(features);
  try {
    return (await std.data())[0]; // an async read: webgpu cannot read synchronously under Deno
  } finally {
    std.dispose();
  }
}

/** {@link meanFeatureStd} as a scalar tensor, left on the backend until someone reads it. */
export function featureStd(features: Tensor): Scalar {
  return tf.tidy(() => {
    const D = features.shape[features.rank - 1];
    const x = features.reshape([-1, D]);
    const { variance } = tf.moments(x, 0);
    return variance.sqrt().mean() as tf.Scalar;
  });
}
