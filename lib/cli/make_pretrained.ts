/**
 * `deno task make-pretrained --run DIR`: turn a finished pretrain run into the weights that ship in
 * `data/pretrained/`: every part in half precision (about 12 MB for the quick preset), probed as
 * shipped (loaded back from the F16 file) beside a random-init encoder and raw pixels, on the full
 * Fashion-MNIST when installed (10-shot and 1%) and on the shipped subset (also all labels), with a
 * card (`<preset>.json` and `<preset>.md`) that records the commands, the training time and the
 * results.
 *
 * The shipped file was made with:
 *
 * ```sh
 * deno task pretrain --preset quick --steps 3000 --data /usr/share/datasets/fashion-mnist --out runs/pretrained-quick --probe=false
 * deno task make-pretrained --run runs/pretrained-quick
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setBackend } from "../engine/backend.ts";
import { loadDataset } from "../data/load.ts";
import { type CardProbe, dataName, PRETRAINED_DIR, type PretrainedCard } from "../io/pretrained.ts";
import { cardMarkdown, trainingSeconds } from "../io/pretrained_card.ts";
import { type ProbeTable, runProbeSuite } from "../eval/suite.ts";
import { Rng } from "../engine/rng.ts";
import { VisionTransformer } from "../model/vit.ts";
import { loadModel, saveModel } from "../io/weights.ts";
import {
  BACKEND_FLAG,
  checkDataFlag,
  checkOutputFolder,
  type CliSpec,
  parseFlags,
  runMain,
  UsageError,
} from "./args.ts";

/** Pools up to this size also get the all-labels probe column. */
const ALL_LABELS_MAX_POOL = 20000;

const SPEC: CliSpec = {
  name: "make-pretrained",
  summary: "Export a finished pretrain run as the shipped half-precision weights, probe them as shipped\n" +
    "(full Fashion-MNIST when installed, and the shipped subset), and write the card beside them.",
  flags: {
    run: { type: "string", help: "the pretrain run folder (holds final.safetensors and metrics.jsonl)" },
    out: { type: "string", help: "output folder (default data/pretrained)" },
    backend: BACKEND_FLAG,
    data: {
      type: "string",
      help:
        "comma list of data to probe on (default: the installed full set if any, then the shipped subset)",
    },
  },
};

/** A probe table as the card stores it (accuracies in %, rounded to two decimals). */
function cardProbe(data: string, t: ProbeTable): CardProbe {
  const pct = (c: { mean: number; std: number }): [number, number] => [
    Math.round(1e4 * c.mean) / 100,
    Math.round(1e4 * c.std) / 100,
  ];
  return {
    data,
    settings: t.settings.map((s) => s.name),
    rows: t.rows.map((r) => ({
      method: r.method,
      dim: r.dim,
      linear: r.probe.map(pct),
      ...(r.knn ? { knn: r.knn.map(pct) } : {}),
    })),
  };
}

function machine(): string {
  let cpu = "";
  try {
    cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.+)/)?.[1]?.trim() ?? "";
  } catch {
    // not Linux, or no permission: cores only
  }
  return `${navigator.hardwareConcurrency} CPU cores${cpu ? ` (${cpu})` : ""}`;
}

async function main(args: string[]) {
  const f = parseFlags(args, SPEC);
  if (f.run === undefined) {
    throw new UsageError("make-pretrained: --run DIR is required (a finished pretrain run)");
  }
  const run = f.run as string;
  const final = join(run, "final.safetensors");
  try {
    await Deno.stat(final);
  } catch {
    throw new UsageError(
      `make-pretrained: expected ${final}, not found; finish the run first (deno task pretrain --out ${run} ` +
        `--probe=false, or --resume --out ${run} when it was interrupted)`,
    );
  }
  const outDir = (f.out as string | undefined) ?? fileURLToPath(PRETRAINED_DIR);
  await checkOutputFolder("make-pretrained", "out", outDir);
  const dataSpecs = f.data !== undefined
    ? (f.data as string).split(",").map((s) => s.trim()).filter(Boolean)
    : [undefined, "fashion-mnist-subset"];
  for (const spec of dataSpecs) await checkDataFlag("make-pretrained", spec);
  const backend = await setBackend(f.backend as string | undefined, { quiet: true });
  console.error(backend.line);

  const { model, meta } = await loadModel(final);
  const preset = typeof meta.preset === "string" ? meta.preset : undefined;
  if (!preset) {
    throw new UsageError(
      `make-pretrained: ${final} names no preset (a custom shape): only preset shapes ship as pretrained weights`,
    );
  }
  const steps = Number(meta.step);
  const batchSize = Number(meta.batch_size);
  const trainedOn = dataName(String(meta.data ?? "unknown data"));
  const dataDir = String(meta.data ?? "").match(/ from (\S.*)$/)?.[1];
  const trainSeconds = trainingSeconds(await Deno.readTextFile(join(run, "metrics.jsonl")));
  await Deno.mkdir(outDir, { recursive: true });
  const file = `${preset}.safetensors`;
  // The weights, the card and its Markdown are written under temporary names and put in place
  // together at the end: a run stopped while probing (minutes) leaves the old files as they were.
  const partial = (name: string) => join(outDir, `.${name}.partial-${Deno.pid}`);
  const names = [file, `${preset}.json`, `${preset}.md`];
  for (const n of names) partials.add(partial(n));
  for await (const e of Deno.readDir(outDir)) { // left by a run killed outright (SIGKILL)
    if (names.some((n) => e.name.startsWith(`.${n}.partial-`))) await Deno.remove(join(outDir, e.name));
  }
  // stopped, they go too (a failure removes them in runMain's wrapper below)
  for (const [sig, code] of STOP_SIGNALS) {
    Deno.addSignalListener(sig, () => {
      removePartials();
      Deno.exit(code);
    });
  }
  const path = partial(file);
  await saveModel(model, path, {
    kind: "pretrained",
    preset,
    step: steps,
    batch_size: batchSize,
    data: trainedOn,
    train_seconds: Math.round(trainSeconds),
    mean: meta.mean as number[] | undefined,
    std: meta.std as number[] | undefined,
  }, { dtype: "F16" });
  model.dispose();
  const bytes = await Deno.readFile(path);
  const sha256 = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");

  // Probe the file as shipped: loaded back from half precision.
  const shipped = await loadModel(path, { parts: ["target_encoder"] });
  const probes: CardProbe[] = [];
  const seen = new Set<string>();
  for (const spec of dataSpecs) {
    const data = await loadDataset(spec, {
      imageSize: shipped.model.cfg.imageSize,
      channels: shipped.model.cfg.channels as 1 | 3,
    });
    if (seen.has(data.source)) continue; // the default found no full set: the subset once
    seen.add(data.source);
    console.error(`probing on ${data.source}`);
    const random = new VisionTransformer(shipped.model.cfg, new Rng(0));
    try {
      const t = await runProbeSuite({
        encoders: [{ name: "I-JEPA (shipped)", encoder: shipped.model.targetEncoder }, {
          name: "random init",
          encoder: random,
        }],
        pixels: true,
        train: data.train,
        test: data.test,
        shots: [10],
        onePercent: true,
        // All labels only where the pool is small: encoding the 60k pool twice takes most of an hour
        // on 2 cores, and the headline is the low-shot probe.
        full: data.train.n <= ALL_LABELS_MAX_POOL,
        seeds: 3,
        k: 20,
        mean: shipped.meta.mean as number[] | undefined,
        std: shipped.meta.std as number[] | undefined,
        log: (s) => console.error(s),
      });
      probes.push(cardProbe(dataName(data.source), t));
    } finally {
      random.dispose();
    }
  }
  shipped.model.dispose();

  const card: PretrainedCard = {
    preset,
    file,
    bytes: bytes.length,
    sha256,
    dtype: "F16",
    commands: [
      `deno task pretrain --preset ${preset} --steps ${steps}${
        dataDir ? ` --data ${dataDir}` : ""
      } --out ${run} ` +
      "--probe=false",
      `deno task make-pretrained ${args.join(" ")}`,
    ],
    steps,
    batchSize,
    trainSeconds: Math.round(trainSeconds),
    machine: machine(),
    trainedOn,
    probes,
  };
  await Deno.writeTextFile(partial(`${preset}.json`), JSON.stringify(card, null, 2) + "\n");
  const md = [
    `# Pretrained weights: preset ${preset}`,
    "",
    `\`${file}\`: encoder, target encoder and predictor in half precision (${
      (bytes.length / 2 ** 20).toFixed(1)
    } MiB, sha256 \`${sha256}\`), in the official state-dict layout with the config in the metadata ` +
    "(`deno task inspect` shows it; `loadModel()` reads it). Written by `deno task make-pretrained`.",
    "",
    `Trained ${steps} steps of ${batchSize} images in ${
      (trainSeconds / 60).toFixed(1)
    } min on ${card.machine}, ` +
    `on ${trainedOn}. Commands:`,
    "",
    "```sh",
    ...card.commands,
    "```",
    "",
    "Probed as shipped (loaded back from F16): linear probe test accuracy %, mean ± std over 3 label draws " +
    "(kNN k=20 in brackets); the target encoder's average-pooled tokens, a random-init encoder of the same " +
    "shape and raw pixels on the same draws.",
    "",
    ...probes.flatMap((p) => [cardMarkdown(p), ""]),
  ].join("\n");
  await Deno.writeTextFile(partial(`${preset}.md`), md);
  for (const name of names) await Deno.rename(partial(name), join(outDir, name));
  console.error(
    `wrote ${join(outDir, file)}: ${(bytes.length / 2 ** 20).toFixed(2)} MiB (F16), sha256 ${sha256}; ` +
      `its card ${preset}.json and ${preset}.md beside it`,
  );
  console.log(md);
}

/** This process's temporary files (see main), removed when it fails or is stopped. */
const partials = new Set<string>();

function removePartials(): void {
  for (const p of partials) {
    try {
      Deno.removeSync(p);
    } catch { /* put in place already, or never written */ }
  }
}

/** The signals that stop a run, with the shell's exit codes; Windows listens for SIGINT alone. */
const STOP_SIGNALS: [Deno.Signal, number][] = Deno.build.os === "windows"
  ? [["SIGINT", 130]]
  : [["SIGINT", 130], ["SIGTERM", 143]];

if (import.meta.main) {
  runMain(async (args) => {
    try {
      await main(args);
    } catch (e) {
      removePartials();
      throw e;
    }
    Deno.exit(0); // the stop signals' listeners would keep the process alive
  });
}
