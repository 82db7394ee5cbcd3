/**
 * `deno task pretrain`: train I-JEPA (the quick preset on the shipped Fashion-MNIST by default),
 * save checkpoints, metrics and final weights, then run the low-shot probe and print its table.
 *
 * @module
 */
import { setBackend } from "../engine/backend.ts";
import { blasAdvice } from "../engine/blas_advice.ts";
import { modelConfig, PRESET_NAMES, presetOf } from "../model/config.ts";
import type { DatasetSplits } from "../data/dataset.ts";
import { loadDataset } from "../data/load.ts";
import { IJEPA } from "../model/ijepa.ts";
import { recipe } from "../train/recipes.ts";
import {
  CHECKPOINT_FILE,
  EMATrainer,
  type FitResult,
  METRICS_FILE,
  type StepInfo,
  TRAINER_DEFAULTS,
  type TrainerOptions,
} from "../train/trainer.ts";
import { saveModel } from "../io/weights.ts";
import {
  dataCountsChanged,
  readRunConfig,
  recordResume,
  resumeData,
  runLosses,
  runVersions,
  writeRunConfig,
} from "../train/run_record.ts";
import { dataSpecOf } from "../data/data_spec.ts";
import { runAfterPretrain } from "../eval/probe_task.ts";
import { formatDuration } from "../viz/progress_text.ts";
import {
  BACKEND_FLAG,
  checkDataFlag,
  checkOutputFolder,
  type CliSpec,
  DATA_FLAG,
  flagGiven,
  parseFlags,
  runMain,
  UsageError,
} from "./args.ts";

const SPEC: CliSpec = {
  name: "pretrain",
  summary: "Pretrain I-JEPA, then probe the target encoder with few labels.\n" +
    "With no flags: the quick preset on the shipped Fashion-MNIST subset (or the full set when installed).",
  flags: {
    preset: { type: "string", default: "quick", choices: PRESET_NAMES, help: "model preset" },
    steps: { type: "int", min: 1, help: "training steps (default: the preset's recipe)" },
    epochs: {
      type: "float",
      min: 0,
      exclusiveMin: true,
      help: "training length in passes over the data (instead of --steps)",
    },
    batch: { type: "int", min: 1, help: "images per step (default: the preset's recipe)" },
    lr: { type: "float", min: 0, exclusiveMin: true, help: "peak learning rate (default: the recipe's)" },
    seed: { type: "int", min: 0, default: 0, help: "seed for weights, masks, data order and augmentation" },
    backend: BACKEND_FLAG,
    data: DATA_FLAG,
    out: {
      type: "string",
      help: "run folder for checkpoints, metrics and weights (default runs/<preset>-<time>)",
    },
    resume: { type: "bool", help: "continue the run in --out from its last checkpoint" },
    "checkpoint-every": {
      type: "int",
      min: 0,
      default: 50,
      help: "steps between checkpoints (0: only at the end)",
    },
    collate: {
      type: "string",
      choices: ["truncate", "pad"],
      help: "context collation (default: the masker's)",
    },
    probe: { type: "bool", default: true, help: "probe after training (--probe=false to skip)" },
    json: { type: "bool", help: "print one JSON line with the summary at the end" },
  },
};

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

/** A one-line progress bar for terminals; plain lines otherwise. */
function progress(json: boolean) {
  const tty = !json && Deno.stderr.isTerminal();
  let lastLine = 0;
  const enc = new TextEncoder();
  return {
    step(s: StepInfo) {
      // elapsed and step both count across resumes, so their ratio is the run's pace
      const eta = s.step > 0 ? (s.elapsed / s.step) * (s.steps - s.step) : 0;
      const std = s.targetStd !== undefined ? ` std ${s.targetStd.toFixed(3)}` : "";
      const text = `step ${s.step}/${s.steps} loss ${s.loss.toFixed(4)} lr ${s.lr.toExponential(2)}${std} ` +
        `${s.imgPerSec.toFixed(1)} img/s ETA ${formatDuration(eta)}`;
      if (tty) {
        const width = 24;
        const done = Math.round((width * s.step) / s.steps);
        Deno.stderr.writeSync(enc.encode(`\r[${"#".repeat(done)}${".".repeat(width - done)}] ${text}   `));
        if (s.step === s.steps) Deno.stderr.writeSync(enc.encode("\n"));
      } else if (!json && (s.step === 1 || s.step === s.steps || s.elapsed - lastLine >= 10)) {
        lastLine = s.elapsed;
        console.error(text);
      }
    },
  };
}

/**
 * A resumed run keeps the settings it started with; a flag given with another value (it used to
 * be ignored without a word) is a usage error, the same value passes. `--epochs` is always
 * refused: the run's length is already in steps.
 */
function resumeConflicts(
  args: string[],
  f: Record<string, unknown>,
  preset: string | null | undefined,
  o: Partial<TrainerOptions>,
): void {
  const given = (n: string) => flagGiven(args, n);
  const run: [string, unknown][] = [
    ["preset", preset],
    ["steps", o.steps],
    ["batch", o.batchSize],
    ["lr", o.lr?.ref],
    ["seed", o.seed],
    ["collate", o.masks?.collate],
    ["checkpoint-every", o.checkpointEvery],
  ];
  const differ = run.filter(([n, v]) => given(n) && f[n] !== v).map(([n, v]) =>
    `--${n} ${f[n]} (the run: ${v})`
  );
  if (given("epochs")) differ.push(`--epochs ${f.epochs}`);
  if (differ.length > 0) {
    throw new UsageError(
      `pretrain: --resume continues the run with the settings it started with; ${differ.join(", ")} ` +
        "would change them: start a new run instead (another --out)",
    );
  }
}

async function main(args: string[]) {
  const f = parseFlags(args, SPEC);
  if (f.steps !== undefined && f.epochs !== undefined) {
    throw new UsageError("pretrain: give --steps or --epochs, not both");
  }
  // Every check of the command line before the backend starts and the data loads (minutes for a
  // full dataset), and before the run folder is made.
  let outDir = f.out as string | undefined;
  let started: Awaited<ReturnType<typeof readRunConfig>>;
  if (f.resume) {
    if (!outDir) throw new UsageError("pretrain: --resume needs --out DIR (the run folder to continue)");
    try {
      Deno.statSync(`${outDir}/${CHECKPOINT_FILE}`);
    } catch {
      throw new UsageError(
        `pretrain: --resume: no checkpoint at ${outDir}/${CHECKPOINT_FILE} to resume from`,
      );
    }
    // the settings the run started with, from config.json (runs from before it: after the checkpoint loads)
    started = await readRunConfig(outDir).catch(() => undefined);
    // the data the run trained on: given, it must name the same
    const d = await resumeData(started, f.data as string | undefined);
    if (d.problem) {
      throw new UsageError(`pretrain: --resume: ${d.problem}`);
    }
    if (started) resumeConflicts(args, f, started.preset, started.trainer as Partial<TrainerOptions>);
    f.data = d.spec;
  } else {
    outDir ??= `runs/${f.preset}-${stamp()}`;
    try {
      Deno.statSync(`${outDir}/${CHECKPOINT_FILE}`);
      throw new UsageError(
        `pretrain: ${outDir} already holds a run; continue it with --resume or pick another --out`,
      );
    } catch (e) {
      if (e instanceof UsageError) throw e;
    }
  }
  await checkOutputFolder("pretrain", "out", outDir);
  await checkDataFlag("pretrain", f.data as string | undefined);

  const json = Boolean(f.json);
  const info = await setBackend(f.backend as string | undefined, { quiet: json });
  // Up front, before minutes of training: what running without a BLAS library costs here.
  const advice = !json && info.blas ? await blasAdvice(info.blas) : undefined;
  if (advice) console.error(advice);
  // The data comes in at the model's size and channels, so the model is settled first.
  const loadData = async (cfg: { imageSize: number; channels: number }) => {
    const d = await loadDataset(f.data as string | undefined, {
      imageSize: cfg.imageSize,
      channels: cfg.channels as 1 | 3,
    });
    if (!json) console.error(`data: ${d.source}`);
    return d;
  };

  let trainer: EMATrainer;
  let model: IJEPA;
  let data: DatasetSplits;
  const versions = await runVersions();
  if (f.resume) {
    const path = `${outDir}/${CHECKPOINT_FILE}`;
    trainer = await EMATrainer.resume(path, { outDir });
    model = trainer.model;
    resumeConflicts(args, f, presetOf(model.cfg), trainer.options); // before the data loads
    if (!json) console.error(`resuming ${path} at step ${trainer.step}/${trainer.options.steps}`);
    data = await loadData(model.cfg);
    const changed = dataCountsChanged(started, data);
    if (changed) throw new UsageError(`pretrain: --resume: ${changed} (${data.source})`);
    const t = trainer;
    await recordResume(
      outDir,
      {
        time: new Date().toISOString(),
        argv: args,
        step: t.step,
        backend: info.line,
        data: data.source,
        versions,
      },
      () => ({
        argv: null,
        started: null,
        preset: presetOf(t.model.cfg) ?? null,
        seed: t.options.seed,
        data: data.source,
        backend: info.line,
        versions,
        model: { ...t.model.cfg },
        trainer: { ...t.options },
      }),
    );
  } else {
    const preset = f.preset as string;
    data = await loadData(modelConfig(preset));
    const batchSize = (f.batch as number | undefined) ?? recipe(preset).batchSize;
    let steps = f.steps as number | undefined;
    if (f.epochs !== undefined) {
      steps = Math.max(1, Math.round(((f.epochs as number) * data.train.n) / batchSize));
    }
    if (batchSize > data.train.n) {
      throw new UsageError(
        `pretrain: a batch of ${batchSize} images needs at least that many training images; the data's ` +
          `training split has ${data.train.n} (${data.source}): pass --batch ${data.train.n} or less`,
      );
    }
    const r = recipe(preset, steps);
    steps = r.steps;
    const lr = { ...r.lr };
    if (f.lr !== undefined) lr.ref = f.lr as number;
    await Deno.mkdir(outDir, { recursive: true });
    model = new IJEPA(preset, { seed: f.seed as number });
    const masks = f.collate ? { collate: f.collate as "truncate" | "pad" } : {};
    trainer = new EMATrainer(model, {
      ...r,
      batchSize,
      steps,
      lr,
      seed: f.seed as number,
      outDir,
      masks: { ...r.masks, ...masks },
      checkpointEvery: (f["checkpoint-every"] as number) ?? TRAINER_DEFAULTS.checkpointEvery,
    });
    await writeRunConfig(outDir, {
      argv: args,
      started: new Date().toISOString(),
      preset,
      seed: f.seed as number,
      data: data.source,
      dataSpec: await dataSpecOf(f.data as string | undefined),
      dataCounts: { train: data.train.n, test: data.test.n },
      backend: info.line,
      versions,
      model: { ...model.cfg },
      trainer: { ...trainer.options },
      resumes: [],
    });
    if (!json) {
      console.error(
        `preset ${preset}: ${model.cfg.imageSize}px, patch ${model.cfg.patchSize}, width ${model.cfg.width}, depth ${model.cfg.depth}, ` +
          `predictor ${model.cfg.predictorWidth}x${model.cfg.predictorDepth}; ${steps} steps of ${batchSize} images; run folder ${outDir}`,
      );
    }
  }

  const startStep = trainer.step;
  const finished = startStep >= trainer.options.steps;
  let result: FitResult | undefined;
  if (!finished) {
    const abort = new AbortController();
    // SIGTERM (a scheduler's or `kill`'s stop) saves a checkpoint too; Windows has no SIGTERM listener.
    // The exit code is the shell's for the signal: 130 for SIGINT, 143 for SIGTERM.
    let exitCode = 130;
    const handlers = (Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"]).map((sig) => {
      const ctrlC = sig === "SIGINT";
      const on = () => {
        if (abort.signal.aborted) Deno.exit(exitCode);
        exitCode = ctrlC ? 130 : 143;
        if (!json) {
          console.error(
            `\n${ctrlC ? "interrupted" : "SIGTERM"}: saving a checkpoint before exiting (${
              ctrlC ? "Ctrl-C" : "the signal"
            } again to force)`,
          );
        }
        abort.abort();
      };
      Deno.addSignalListener(sig as Deno.Signal, on);
      return [sig as Deno.Signal, on] as const;
    });
    const bar = progress(json);
    try {
      result = await trainer.fit(data.train, { onStep: (s) => bar.step(s), signal: abort.signal });
    } finally {
      for (const [sig, on] of handlers) Deno.removeSignalListener(sig, on);
    }
    if (result.interrupted) {
      console.error(
        `stopped at step ${result.step}; checkpoint ${result.checkpoint}. Continue with: deno task pretrain --resume --out ${outDir}` +
          // a run from before config.json recorded its data needs it named again
          (f.resume && !started?.dataSpec && f.data !== undefined ? ` --data ${f.data}` : "") +
          (f.probe ? "" : " --probe=false"),
      );
      Deno.exit(exitCode);
    }
  }
  const weights = `${outDir}/final.safetensors`;
  await saveModel(model, weights, {
    kind: "weights",
    preset: f.resume ? presetOf(model.cfg) : f.preset as string,
    step: trainer.step,
    batch_size: trainer.options.batchSize,
    seed: trainer.options.seed,
    data: data.source,
    mean: trainer.stats?.mean,
    std: trainer.stats?.std,
  }, { parts: ["encoder", "target_encoder", "predictor"] });
  const summary: Record<string, unknown> = {
    backend: info.name,
    blas: info.blas?.enabled ?? false,
    data: data.source,
    steps: trainer.step,
    weights,
  };
  if (result) {
    const losses = result.losses;
    const trained = trainer.step - startStep;
    Object.assign(summary, {
      seconds: Number(result.seconds.toFixed(1)),
      imgPerSec: Number(((losses.length * trainer.options.batchSize) / result.seconds).toFixed(2)),
      firstLoss: losses[0],
      lastLoss: losses[losses.length - 1],
    });
    if (!json) {
      const what = startStep > 0
        ? `trained steps ${startStep + 1}-${trainer.step} (${trained} more)`
        : `trained ${trainer.step} steps`;
      console.log(
        `${what} in ${summary.seconds} s (${summary.imgPerSec} img/s on ${info.name}); ` +
          `loss ${losses[0].toFixed(4)} -> ${losses[losses.length - 1].toFixed(4)}; weights ${weights}`,
      );
    }
  } else {
    // Resuming a run that had already reached its last step: nothing to train.
    const run = await runLosses(outDir);
    Object.assign(summary, {
      alreadyFinished: true,
      seconds: 0,
      imgPerSec: null,
      firstLoss: run?.first ?? null,
      lastLoss: run?.last ?? null,
    });
    if (!json) {
      console.log(
        `the run in ${outDir} had already finished at step ${trainer.step}/${trainer.options.steps}: nothing to train` +
          (run ? `; its loss went ${run.first.toFixed(4)} -> ${run.last.toFixed(4)} (${METRICS_FILE})` : "") +
          `; weights ${weights}`,
      );
    }
  }
  if (f.probe) {
    summary.probe = await runAfterPretrain({ weights, model, data, json, stats: trainer.stats });
  }
  if (json) console.log(JSON.stringify(summary));
  trainer.dispose();
  model.dispose();
}

if (import.meta.main) runMain(main);
