/**
 * `deno task probe`: evaluate frozen I-JEPA features beside their baselines, the paper's Tables 1
 * and 2 at our scale: a linear probe and kNN with 1, 5, 10, 50 labels per class, 1% of the labels
 * and all of them, for the target encoder, a random-init encoder of the same shape and raw pixels,
 * on the same label draws (the protocol and the probe recipe are documented in lib/eval/suite.ts and lib/eval/linear_probe.ts).
 *
 * ```sh
 * deno task probe                                       # the shipped weights (data/pretrained/)
 * deno task probe --run runs/quick                      # DIR/final.safetensors from pretrain
 * deno task probe --weights w.safetensors --png probe.png
 * deno task probe --pretrained=false --json             # baselines only, no weights
 * deno task probe --weights w.safetensors --readout avgpool,pool2x2
 * ```
 *
 * @module
 */

import { join } from "node:path";
import {
  asUsage,
  BACKEND_FLAG,
  checkDataFlag,
  checkOutputFile,
  type CliSpec,
  DATA_FLAG,
  flagGiven,
  parseFlags,
  runMain,
  statIfAny,
  UsageError,
} from "./args.ts";
import { FIGURE_EXTENSIONS } from "../viz/figure_file.ts";
import { setBackend } from "../engine/backend.ts";
import { modelConfig, PRESET_NAMES, type ResolvedConfig } from "../model/config.ts";
import type { DatasetSplits, ImageDataset } from "../data/dataset.ts";
import { loadDataset } from "../data/load.ts";
import { channelStats, subset } from "../data/stats.ts";
import { runProbeSuite } from "../eval/suite.ts";
import { READOUTS } from "../eval/features.ts";
import { formatProbeTable, probeBars } from "../eval/report.ts";
import { sampleLabelSubset } from "../eval/label_draws.ts";
import { checkPresetMatches, parseReadouts, parseShots, shotsThatFit } from "../eval/probe_task.ts";
import { pretrainedLine, pretrainedWeights } from "../io/pretrained.ts";
import { Rng } from "../engine/rng.ts";
import { VisionTransformer } from "../model/vit.ts";

const SPEC: CliSpec = {
  name: "probe",
  summary: "Linear probe and kNN on frozen encoder features (average-pooled last-layer tokens; the target\n" +
    "encoder of our files and official checkpoints, the context encoder of HuggingFace's),\n" +
    "beside a random-init encoder of the same shape and raw pixels, on the same label draws:\n" +
    "n-shot, 1% of the labels and all of them, mean and std over --seeds draws, on the test set.",
  flags: {
    weights: {
      type: "string",
      help:
        "weights file: ours (from pretrain), an official .pth.tar checkpoint or a HuggingFace IJepaModel " +
        ".safetensors (default: the shipped weights, see --pretrained)",
    },
    heads: { type: "int", min: 1, help: "head count, for official checkpoints outside the official widths" },
    run: { type: "string", help: "a pretrain run directory: reads DIR/final.safetensors" },
    pretrained: {
      type: "bool",
      default: true,
      help: "without --weights or --run, probe the shipped weights of the preset when there are some " +
        "(data/pretrained/; --pretrained=false: baselines only)",
    },
    preset: {
      type: "string",
      choices: PRESET_NAMES,
      help:
        "model shape of the random-init baseline without weights (default quick); with weights it must match",
    },
    data: DATA_FLAG,
    shots: { type: "string", default: "1,5,10,50", help: "n-shot settings, labelled images per class" },
    seeds: {
      type: "int",
      min: 1,
      default: 3,
      help: "label draws per low-shot setting (spread = std over them)",
    },
    seed: {
      type: "int",
      min: 0,
      default: 0,
      help: "base seed: draw s uses seed + s; also the random-init seed",
    },
    readout: {
      type: "string",
      default: "avgpool",
      help: "avgpool (the paper's), last4, pool2x2, or a comma list; each also read from the random init",
    },
    backend: BACKEND_FLAG,
    "batch-size": {
      type: "int",
      min: 1,
      default: 256,
      help: "images per forward pass when extracting features",
    },
    k: { type: "int", min: 0, default: 20, help: "kNN neighbours (0 turns kNN off)" },
    pool: {
      type: "int",
      min: 1,
      help: "use a class-balanced subset of N pool images (quick looks; not the protocol)",
    },
    "test-size": { type: "int", min: 1, help: "use a class-balanced subset of N test images (quick looks)" },
    "all-labels": {
      type: "bool",
      default: true,
      help: "add the all-labels column (--all-labels=false encodes only the labelled images and the test " +
        "set: minutes instead of most of an hour for the full 60k pool on 2 cores)",
    },
    json: { type: "bool", help: "print one JSON object instead of the table" },
    png: { type: "string", help: "write a bar chart of the probe accuracies to this file (.png or .svg)" },
  },
};

/** Orientation figures from the field notes (official PyTorch code, Fashion-MNIST, quick shape). */
const FIELD_NOTES_REFERENCE = "official code after 8 CPU minutes (field notes): 1% labels: I-JEPA 56-63, " +
  "random init 53.3, raw pixels 77.9; all labels: 66-71 / 68.0 / 84.6";

function validStats(v: unknown, channels: number): v is number[] {
  return Array.isArray(v) && v.length === channels &&
    v.every((x) => typeof x === "number" && Number.isFinite(x));
}

/** A class-balanced subset of about `n` images, always the same (its own fixed seed). */
function shrink(ds: ImageDataset, n: number, flag: string, seed: number): ImageDataset {
  const K = ds.classNames.length;
  const per = Math.floor(n / K);
  if (!(Number.isInteger(n) && per >= 1)) {
    throw new UsageError(`probe: --${flag} must be at least ${K} (one image per class), got ${n}`);
  }
  if (n >= ds.n) return ds;
  try {
    return subset(ds, sampleLabelSubset(ds.labels, per, new Rng(seed), K));
  } catch (e) {
    throw new UsageError(`probe: --${flag} ${n}: ${(e as Error).message}`);
  }
}

function protocolNote(data: DatasetSplits, pool: number, test: number, shrunk: boolean): string {
  const fm = data.source.startsWith("Fashion-MNIST");
  if (shrunk) {
    return `protocol: a ${pool}-image pool and ${test} test images (--pool/--test-size): a quick look, not the reference protocol`;
  }
  if (fm && data.full) {
    return "protocol: the reference one: the 60000 training images are the label pool, 1% = 60 per class, " +
      "evaluated on the 10000 test images";
  }
  if (fm) {
    return `protocol: the reference one scaled down to the shipped subset (1% = 10 per class, the same draws as ` +
      `10-shot); install Debian's dataset-fashion-mnist or set IJEPA_DATA for the reference numbers`;
  }
  return `protocol: the training split (${pool}) is the label pool, evaluated on the test split (${test})`;
}

interface LoadedWeights {
  path: string;
  /** Which of I-JEPA's encoders the file's weights are, in words. */
  which: string;
  encoder: VisionTransformer;
  cfg: ResolvedConfig;
  meta: Record<string, unknown>;
  dispose: () => void;
}

async function loadWeights(path: string, heads?: number): Promise<LoadedWeights> {
  try {
    await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`probe: weights file ${path} not found`);
    throw e;
  }
  const [{ loadModel }, { HF_LAYOUT }] = await Promise.all([
    import("../io/weights.ts"),
    import("../io/hf.ts"),
  ]);
  // the probe reads the target encoder; a file holding one encoder (HuggingFace's: the context
  // encoder) fills it with that one
  const { model, meta } = await loadModel(path, { parts: ["target_encoder"], heads });
  // HuggingFace's IJepaModel files hold the context encoder alone: say so rather than "target"
  const which = meta.layout === HF_LAYOUT
    ? "context encoder: HuggingFace's IJepaModel files hold no other"
    : "target encoder";
  return { path, which, encoder: model.targetEncoder, cfg: model.cfg, meta, dispose: () => model.dispose() };
}

async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, SPEC);
  let shots = asUsage(() => parseShots(f.shots as string));
  const unknown = (f.readout as string).split(",").map((r) => r.trim())
    .filter((r) => !(READOUTS as readonly string[]).includes(r));
  if (unknown.length > 0) {
    throw new UsageError(
      `probe: --readout expects ${READOUTS.join(", ")} or a comma list of them, got "${unknown.join(",")}"`,
    );
  }
  const readouts = parseReadouts(f.readout as string);
  const seeds = f.seeds as number, seed = f.seed as number, k = f.k as number;
  const batchSize = f["batch-size"] as number;
  if (f.weights !== undefined && f.run !== undefined) {
    throw new UsageError("probe: give --weights FILE or --run DIR, not both");
  }
  let weightsPath = f.run !== undefined
    ? join(f.run as string, "final.safetensors")
    : f.weights as string | undefined;
  let shipped = false;
  if (weightsPath === undefined && f.pretrained) {
    weightsPath = pretrainedWeights((f.preset as string | undefined) ?? "quick");
    shipped = weightsPath !== undefined;
  }
  if (f.run !== undefined) {
    try {
      await Deno.stat(weightsPath!);
    } catch {
      throw new UsageError(
        `probe: --run ${f.run}: expected ${weightsPath} (pretrain writes it at the end of a run), not found`,
      );
    }
  }
  if (weightsPath !== undefined && f.run === undefined && !(await statIfAny(weightsPath))) {
    throw new UsageError(`probe: weights file ${weightsPath} not found`);
  }
  await checkDataFlag("probe", f.data as string | undefined);
  if (f.png !== undefined) await checkOutputFile("probe", "png", f.png as string, FIGURE_EXTENSIONS);
  const log = (s: string) => console.error(s);
  const backend = await setBackend(f.backend as string | undefined, { quiet: true });
  log(backend.line);

  let weights: LoadedWeights | undefined;
  let random: VisionTransformer | undefined;
  try {
    if (weightsPath !== undefined) {
      weights = await loadWeights(weightsPath, f.heads as number | undefined);
      if (f.preset !== undefined) {
        const [preset, file] = [f.preset as string, weightsPath];
        asUsage(() => checkPresetMatches(preset, weights!.cfg, file, weights!.meta.preset));
      }
    }
    const cfg = weights?.cfg ?? modelConfig((f.preset as string | undefined) ?? "quick");
    // the images come in at the model's size and channels (image folders converted, said on this line)
    const data = await loadDataset(f.data as string | undefined, {
      imageSize: cfg.imageSize,
      channels: cfg.channels as 1 | 3,
    });
    log(`data: ${data.source}`);
    let train = data.train, test = data.test;
    if (f.pool !== undefined) train = shrink(train, f.pool as number, "pool", 1);
    if (f["test-size"] !== undefined) test = shrink(test, f["test-size"] as number, "test-size", 2);
    const shrunk = train !== data.train || test !== data.test;
    if (!flagGiven(args, "shots")) {
      // the default settings, on a small pool (a folder of your own images): keep those that fit
      const { fit, dropped, smallest } = shotsThatFit(shots, train);
      if (dropped.length > 0) {
        shots = fit;
        log(
          `shots: ${dropped.map((s) => `${s}-shot`).join(", ")} left out: the pool's smallest class has ` +
            `${smallest} images (--shots to choose)`,
        );
      }
    }
    if (train.channels !== cfg.channels) {
      throw new UsageError(
        `probe: the model expects ${cfg.channels}-channel images, the dataset has ${train.channels} (${data.source})`,
      );
    }
    const meta = weights?.meta ?? {};
    const fromFile = validStats(meta.mean, cfg.channels) && validStats(meta.std, cfg.channels);
    const stats = fromFile ? { mean: meta.mean as number[], std: meta.std as number[] } : channelStats(train);
    random = new VisionTransformer(cfg, new Rng(seed));
    const encoders = [
      ...(weights ? [{ name: shipped ? "I-JEPA (shipped)" : "I-JEPA", encoder: weights.encoder }] : []),
      { name: "random init", encoder: random },
    ];
    const notes = [
      protocolNote(data, train.n, test.n, shrunk),
      shipped
        ? `no --weights: ${
          pretrainedLine((f.preset as string | undefined) ?? "quick")
        } (your own: --weights FILE or --run DIR)`
        : weights
        ? `weights: ${weights.path} (${weights.which}${
          typeof weights.meta.preset === "string" ? `, preset ${weights.meta.preset}` : ""
        })`
        : `no --weights: baselines only (random init of preset ${
          (f.preset as string | undefined) ?? "quick"
        }, raw pixels)`,
      `input normalisation: mean ${stats.mean.map((v) => v.toFixed(4)).join(",")} std ${
        stats.std.map((v) => v.toFixed(4)).join(",")
      } (${fromFile ? "from the weights file" : "channel statistics of the pool"})`,
    ];
    if (train.height !== cfg.imageSize || train.width !== cfg.imageSize) {
      notes.push(
        `images resized from ${train.height}x${train.width} to the model's ${cfg.imageSize}x${cfg.imageSize} ` +
          `(raw pixels too, so every method sees the same input)`,
      );
    }
    for (const n of notes) log(n);

    const t0 = performance.now();
    const table = await runProbeSuite({
      encoders,
      pixels: true,
      train,
      test,
      shots,
      full: Boolean(f["all-labels"]),
      seeds,
      seed,
      readouts,
      mean: stats.mean,
      std: stats.std,
      batchSize,
      k,
      log,
    });
    const seconds = (performance.now() - t0) / 1000;
    const reference = data.source.startsWith("Fashion-MNIST") && data.full && !shrunk &&
        cfg.imageSize === 28 && cfg.width === 192
      ? FIELD_NOTES_REFERENCE
      : undefined;
    if (f.json) {
      console.log(JSON.stringify({
        task: "probe",
        source: data.source,
        fullDataset: data.full,
        notes,
        backend: backend.name,
        weights: weights?.path ?? null,
        preset: typeof weights?.meta.preset === "string" ? weights.meta.preset : (f.preset ?? "quick"),
        readouts,
        reference: reference ?? null,
        totalSeconds: seconds,
        ...table,
      }));
    } else {
      console.log(formatProbeTable(table));
      if (reference) console.log(`for orientation, ${reference}`);
      const s = table.seconds;
      console.log(
        `time: ${seconds.toFixed(1)} s (features ${s.features.toFixed(1)} s, probe fits ${
          s.probe.toFixed(1)
        } s, ` +
          `kNN ${s.knn.toFixed(1)} s) on ${backend.name}`,
      );
    }
    if (f.png !== undefined) {
      const { plotBars } = await import("../viz/figures_results.ts");
      const { saveFigure } = await import("../viz/figure_file.ts");
      const svg = plotBars(probeBars(table), {
        title: "Linear probe on frozen features",
        subtitle:
          `${train.n}-image label pool, ${test.n} test images; error bars: ±1 std over ${seeds} draws`,
        x: "labelled images",
        y: "test accuracy (%)",
        yDomain: [0, 100],
      });
      await saveFigure(svg, f.png as string);
      if (!f.json) console.log(`wrote ${f.png}`);
    }
  } finally {
    weights?.dispose();
    random?.dispose();
  }
}

if (import.meta.main) runMain(main);
