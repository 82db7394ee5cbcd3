/**
 * The EMA trainer: one I-JEPA training step is
 *
 *   1. a batch of (augmented, normalised) images and a batch of masks;
 *   2. the loss and its gradients (targets from the target encoder, outside the gradient tape);
 *   3. an AdamW update of the context encoder and predictor (learning rate and weight decay from
 *      their schedules);
 *   4. an EMA update of the target encoder with the scheduled momentum.
 *
 * Everything a run needs to continue is in its checkpoint (weights, AdamW moments, step, the mask
 * and data generators' states, the options), written atomically, so a killed run resumes and
 * produces the same losses as one that was never interrupted. A NaN or infinite loss stops the run
 * before the bad update is applied; a falling target-feature spread (collapse) prints a warning.
 * With an `outDir`, each step appends a row to metrics.jsonl with its wall-clock time and the
 * training seconds so far (`elapsed`), which a resumed run keeps counting from its checkpoint.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { IJEPA } from "../model/ijepa.ts";
 * import { EMATrainer } from "./trainer.ts";
 * await tf.setBackend("cpu");
 * const model = new IJEPA("tiny", { seed: 0 });
 * const trainer = new EMATrainer(model, { batchSize: 4, steps: 2, masks: { minKeep: 2 } });
 * const images = new Uint8Array(8 * 16 * 16).map((_, i) => i % 251);
 * const ds = { images, labels: new Int32Array(8), n: 8, height: 16, width: 16, channels: 1, classNames: ["x"], source: "demo" };
 * const result = await trainer.fit(ds);
 * if (result.losses.length !== 2) throw new Error("expected two steps");
 * trainer.dispose();
 * model.dispose();
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { AdamW } from "./adamw.ts";
import { BatchStream, type BatchStreamState } from "../data/batches.ts";
import { channelStats } from "../data/stats.ts";
import type { ImageDataset } from "../data/dataset.ts";
import type { IJEPA } from "../model/ijepa.ts";
import { createMasker, type MultiBlockMasker } from "../masks/masker.ts";
import { type MaskerOptions, trainingMasks } from "../masks/options.ts";
import { Rng } from "../engine/rng.ts";
import { sigRegRng } from "../model/sigreg.ts";
import { emaMomentum, learningRate, type LrSchedule, weightDecay } from "./schedules.ts";
import { momentsFromOfficial, momentsToOfficial } from "../io/optimizer_state.ts";
import { loadModel, saveModel } from "../io/weights.ts";
import { openSafetensors } from "../io/safetensors_read.ts";
import { appendMetricsRow, METRICS_FILE, trainingSeconds, truncateMetrics } from "./run_record.ts";

/** Trainer options. Every field has a default (see {@link TRAINER_DEFAULTS}). */
export interface TrainerOptions {
  /** Images per step. */
  batchSize: number;
  /** Length of the run in steps: the schedules are laid out over it. */
  steps: number;
  /** Learning-rate schedule; `warmup` in steps. */
  lr: LrSchedule;
  /** Weight decay from [0] to [1] along a cosine. */
  weightDecay: [number, number];
  /** EMA momentum from [0] to [1], linearly. */
  ema: [number, number];
  /** Clip the global gradient norm to this value (0 = off). */
  clipGrad: number;
  /** Mask options on top of the grid's preset (lib/masks/options.ts `maskPreset`, via `trainingMasks`). */
  masks: Partial<Omit<MaskerOptions, "rows" | "cols">>;
  /** Seed of the masks, the data order and the augmentation. */
  seed: number;
  /** RandomResizedCrop (scale 0.3-1.0), as the official config. */
  augment: boolean;
  /** Measure the target features' spread every this many steps (0 = never). */
  stdEvery: number;
  /** Warn of collapse when the spread falls below this fraction of its first value. */
  collapseRatio: number;
  /** Write a checkpoint every this many steps (0 = only at the end and on interruption). */
  checkpointEvery: number;
  /** Folder for checkpoints and metrics; none means nothing is written. */
  outDir: string | null;
}

/** Defaults: the official recipe where it applies at this scale. */
export const TRAINER_DEFAULTS: TrainerOptions = {
  batchSize: 64,
  steps: 1000,
  lr: { start: 2e-4, ref: 1e-3, final: 1e-6, warmup: 100 },
  weightDecay: [0.04, 0.4],
  ema: [0.996, 1.0],
  clipGrad: 0,
  masks: {},
  seed: 0,
  augment: true,
  stdEvery: 10,
  collapseRatio: 0.1,
  checkpointEvery: 0,
  outDir: null,
};

/** What each step reports. */
export interface StepInfo {
  /** Steps completed, this one included. */
  step: number;
  /** Steps of the whole run. */
  steps: number;
  /** Loss of this step. */
  loss: number;
  /** Learning rate of this step. */
  lr: number;
  /** Weight-decay coefficient of this step. */
  weightDecay: number;
  /** EMA momentum of the target encoder at this step. */
  momentum: number;
  /** Mean per-dimension std of the target features, when measured this step. */
  targetStd?: number;
  /** Images per second over this step. */
  imgPerSec: number;
  /**
   * Seconds of training so far, counting across resumes: a resumed run goes on from the count
   * its checkpoint holds (metrics.jsonl rows before this change restarted at 0 at each resume).
   */
  elapsed: number;
  /** Context tokens per example this step. */
  contextLen: number;
  /** Target tokens per target block this step. */
  targetLen: number;
}

/** The outcome of {@link EMATrainer.fit}. */
export interface FitResult {
  /** Losses of the steps run by this call. */
  losses: number[];
  /** The step reached. */
  step: number;
  /** True when stopped early by the abort signal (a checkpoint was written if outDir is set). */
  interrupted: boolean;
  /** Wall-clock seconds of this call. */
  seconds: number;
  /** Path of the last checkpoint written, if any. */
  checkpoint?: string;
}

/** Thrown when the loss stops being a finite number. */
export class TrainingDiverged extends Error {
  /** An error with `message`, named "TrainingDiverged". */
  constructor(message: string) {
    super(message);
    this.name = "TrainingDiverged";
  }
}

function mergeOptions(o: Partial<TrainerOptions>): TrainerOptions {
  for (const k of Object.keys(o)) {
    if (!(k in TRAINER_DEFAULTS)) {
      throw new Error(
        `EMATrainer: unknown option "${k}"; expected one of ${Object.keys(TRAINER_DEFAULTS).join(", ")}`,
      );
    }
  }
  const m = { ...TRAINER_DEFAULTS, ...o, lr: { ...TRAINER_DEFAULTS.lr, ...(o.lr ?? {}) } };
  if (!(Number.isInteger(m.batchSize) && m.batchSize > 0)) {
    throw new Error(`EMATrainer: batchSize must be a positive integer, got ${m.batchSize}`);
  }
  if (!(Number.isInteger(m.steps) && m.steps > 0)) {
    throw new Error(`EMATrainer: steps must be a positive integer, got ${m.steps}`);
  }
  if (!(m.lr.warmup >= 0)) throw new Error(`EMATrainer: lr.warmup must be >= 0, got ${m.lr.warmup}`);
  return m;
}

/** The checkpoint file name inside a run folder. */
export const CHECKPOINT_FILE = "checkpoint.safetensors";
/** The metrics file name inside a run folder (its rows: lib/train/run_record.ts). */
export { METRICS_FILE };

/** Trains an {@link IJEPA} model. */
export class EMATrainer {
  /** The model being trained. */
  readonly model: IJEPA;
  /** The options, defaults filled in. */
  readonly options: TrainerOptions;
  /** Draws each step's context and target masks. */
  readonly masker: MultiBlockMasker;
  /** The optimizer of the trainable parameters (the target encoder follows by EMA). */
  readonly optimizer: AdamW;
  /** Steps completed. */
  step = 0;
  /** Input normalisation (set from the data at the first fit, or restored). */
  stats?: { mean: number[]; std: number[] };
  #maskRng: Rng;
  #streamState?: BatchStreamState;
  #dataRngState: number[];
  #firstStd?: number;
  #elapsed = 0;

  /** A trainer for `model`; throws on an unknown or out-of-range option. */
  constructor(model: IJEPA, options: Partial<TrainerOptions> = {}) {
    this.model = model;
    this.options = mergeOptions(options);
    const g = model.cfg.gridSize;
    this.masker = createMasker({ ...trainingMasks(g), ...this.options.masks, rows: g, cols: g });
    this.optimizer = new AdamW(model.namedTrainable());
    this.#maskRng = new Rng(this.options.seed);
    this.#dataRngState = new Rng(this.options.seed + 1).state();
  }

  /** The learning rate, weight decay and momentum at a step. */
  schedule(step: number): { lr: number; weightDecay: number; momentum: number } {
    const { steps, lr, weightDecay: wd, ema } = this.options;
    return {
      lr: learningRate(step, steps, lr),
      weightDecay: weightDecay(step, steps, wd),
      momentum: emaMomentum(step, steps, ema),
    };
  }

  /** Seconds of training so far, over every fit and resume of this run. */
  get elapsed(): number {
    return this.#elapsed;
  }

  /**
   * Train until `options.steps` (or the abort signal). Resumes from where this trainer stands
   * (after {@link EMATrainer.resume}, from the checkpoint's step with the same data order).
   */
  async fit(
    data: ImageDataset,
    hooks: { onStep?: (s: StepInfo) => void | Promise<void>; signal?: AbortSignal } = {},
  ): Promise<FitResult> {
    const { model, options: o } = this;
    const cfg = model.cfg;
    if (data.channels !== cfg.channels) {
      throw new Error(
        `EMATrainer.fit: the data has ${data.channels} channel(s), the model expects ${cfg.channels}`,
      );
    }
    if (data.n < o.batchSize) {
      throw new Error(
        `EMATrainer.fit: a batch of ${o.batchSize} images needs at least that many training images; the data has ${data.n}: use a smaller batch`,
      );
    }
    this.stats ??= channelStats(data);
    const streamOpts = {
      batchSize: o.batchSize,
      rng: Rng.fromState(this.#dataRngState),
      shuffle: true,
      dropLast: true,
      augment: o.augment,
      size: cfg.imageSize,
      stats: this.stats,
    };
    const stream = this.#streamState
      ? BatchStream.fromState(data, streamOpts, this.#streamState)
      : new BatchStream(data, streamOpts);
    const t0 = performance.now();
    if (o.outDir) await Deno.mkdir(o.outDir, { recursive: true });
    const before = this.#elapsed; // training seconds of earlier fits and runs resumed from
    const losses: number[] = [];
    let checkpoint: string | undefined;
    let interrupted = false;
    while (this.step < o.steps) {
      if (hooks.signal?.aborted) {
        interrupted = true;
        break;
      }
      const ts = performance.now();
      const batch = stream.next();
      const masks = this.masker.sample(this.#maskRng, o.batchSize);
      const sched = this.schedule(this.step);
      const measure = o.stdEvery > 0 && this.step % o.stdEvery === 0;
      const images = tf.tensor4d(batch.images, batch.shape);
      const { loss, grads, targetStd: stdTensor } = model.lossAndGrads(images, masks, {
        measureStd: measure,
        // SIGReg's directions from the seed and the step, so that a resumed run draws the same ones
        draw: model.cfg.sigregWeight > 0 ? sigRegRng(o.seed, this.step) : undefined,
      });
      images.dispose();
      // async reads only: a synchronous read throws on webgpu under Deno
      const lossValue = (await loss.data())[0];
      const targetStd = stdTensor ? (await stdTensor.data())[0] : undefined;
      tf.dispose([loss, stdTensor ?? []].flat());
      if (!Number.isFinite(lossValue)) {
        tf.dispose(Object.values(grads));
        const where = checkpoint ??
          (o.outDir ? `${o.outDir}/${CHECKPOINT_FILE} (if one was written)` : "none");
        throw new TrainingDiverged(
          `the loss became ${lossValue} at step ${this.step}; no update was applied. Last good checkpoint: ${where}. ` +
            `Try a lower learning rate (it was ${sched.lr.toExponential(2)}) or gradient clipping.`,
        );
      }
      if (o.clipGrad > 0) await clipByGlobalNorm(grads, o.clipGrad);
      this.optimizer.step(grads, { lr: sched.lr, weightDecay: sched.weightDecay });
      model.updateTarget(sched.momentum);
      this.step += 1;
      this.#streamState = stream.state();
      losses.push(lossValue);
      if (targetStd !== undefined) {
        this.#firstStd ??= targetStd;
        if (targetStd < o.collapseRatio * this.#firstStd) {
          console.warn(
            `warning: possible collapse at step ${this.step}: target-feature std ${
              targetStd.toFixed(4)
            } fell below ` +
              `${o.collapseRatio} x its first value ${this.#firstStd.toFixed(4)}`,
          );
        }
      }
      const info: StepInfo = {
        step: this.step,
        steps: o.steps,
        loss: lossValue,
        ...sched,
        targetStd,
        imgPerSec: o.batchSize / ((performance.now() - ts) / 1000),
        elapsed: before + (performance.now() - t0) / 1000,
        contextLen: masks.contextLen,
        targetLen: masks.targetLen,
      };
      this.#elapsed = info.elapsed;
      if (o.outDir) await appendMetricsRow(`${o.outDir}/${METRICS_FILE}`, { ...info });
      await hooks.onStep?.(info);
      if (o.outDir && o.checkpointEvery > 0 && this.step % o.checkpointEvery === 0 && this.step < o.steps) {
        checkpoint = await this.save(`${o.outDir}/${CHECKPOINT_FILE}`);
      }
    }
    if (o.outDir && (interrupted || this.step >= o.steps)) {
      checkpoint = await this.save(`${o.outDir}/${CHECKPOINT_FILE}`);
    }
    return { losses, step: this.step, interrupted, seconds: (performance.now() - t0) / 1000, checkpoint };
  }

  /** Write a checkpoint (atomically): weights, AdamW moments, step, generator states, options. */
  async save(path: string): Promise<string> {
    const extra = await momentsToOfficial(this.optimizer.stateTensors(), this.model.cfg);
    await saveModel(this.model, path, {
      kind: "checkpoint",
      step: this.step,
      adamw_t: this.optimizer.t,
      mask_rng: this.#maskRng.state(),
      data_rng: this.#dataRngState,
      stream: this.#streamState,
      trainer: this.options,
      mean: this.stats?.mean,
      std: this.stats?.std,
      first_std: this.#firstStd,
      elapsed: this.#elapsed,
    }, { extra });
    return path;
  }

  /**
   * Continue a run from its checkpoint: the model, the optimizer, the step and the generators come
   * back as they were. `overrides` may change nothing that would alter the run except `outDir`.
   */
  static async resume(
    path: string,
    overrides: Partial<Pick<TrainerOptions, "outDir">> = {},
  ): Promise<EMATrainer> {
    const { model, meta } = await loadModel(path);
    if (meta.kind !== "checkpoint") {
      model.dispose();
      throw new Error(
        `${path}: holds final weights, not a training checkpoint (no optimizer state); cannot resume`,
      );
    }
    const trainer = new EMATrainer(model, { ...(meta.trainer as TrainerOptions), ...overrides });
    using st = await openSafetensors(path);
    const moments = await momentsFromOfficial(st, trainer.optimizer.stateTensors(), model.cfg, path);
    trainer.optimizer.loadState(meta.adamw_t as number, moments);
    trainer.step = meta.step as number;
    trainer.#maskRng = Rng.fromState(meta.mask_rng as number[]);
    trainer.#dataRngState = meta.data_rng as number[];
    trainer.#streamState = meta.stream as BatchStreamState | undefined;
    trainer.stats = meta.mean ? { mean: meta.mean as number[], std: meta.std as number[] } : undefined;
    trainer.#firstStd = meta.first_std as number | undefined;
    const dir = trainer.options.outDir;
    const kept = dir ? await truncateMetrics(`${dir}/${METRICS_FILE}`, trainer.step) : "";
    // checkpoints written before `elapsed` was stored: add up the kept rows' segments instead
    trainer.#elapsed = typeof meta.elapsed === "number" ? meta.elapsed : trainingSeconds(kept);
    return trainer;
  }

  /** Free the optimizer state (the model stays with its owner). */
  dispose(): void {
    this.optimizer.dispose();
  }
}

/** Scale all gradients so their global L2 norm is at most `maxNorm` (in place in the map). */
export async function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): Promise<number> {
  const normT = tf.tidy(() => tf.addN(Object.values(grads).map((g) => g.square().sum())).sqrt());
  const norm = (await normT.data())[0];
  normT.dispose();
  if (norm > maxNorm) {
    const scale = maxNorm / (norm + 1e-6);
    for (const k of Object.keys(grads)) {
      const old = grads[k];
      grads[k] = old.mul(scale);
      old.dispose();
    }
  }
  return norm;
}
