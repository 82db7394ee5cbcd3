/**
 * The pretrained weights that ship in `data/pretrained/`: where they are and what they reached.
 * `deno task probe` and notebooks 02-04 start from them when the reader has not pretrained; each
 * says so. `deno task make-pretrained` writes them (see its module comment for the commands).
 *
 * @example
 * ```ts
 * import { pretrainedCard, pretrainedWeights } from "./pretrained.ts";
 * const path = pretrainedWeights("quick");
 * if (path !== undefined && !path.endsWith("quick.safetensors")) throw new Error(path);
 * if (pretrainedWeights("no-such-preset") !== undefined) throw new Error("nothing ships for it");
 * const card = pretrainedCard("quick");
 * if (card && card.preset !== "quick") throw new Error("card of another preset");
 * ```
 * @module
 */
import { fileURLToPath } from "node:url";

/** The folder the pretrained weights ship in (a file URL when this module is local). */
export const PRETRAINED_DIR: URL = new URL("../../data/pretrained/", import.meta.url);

/** One probe table of a card: method x setting, accuracies in % (mean and std over draws). */
export interface CardProbe {
  /** The data the probe ran on (its `source` line). */
  data: string;
  /** Setting names, e.g. "10-shot", "1%", "all labels". */
  settings: string[];
  /** One row per method: feature size and [mean, std] per setting for the linear probe and kNN. */
  rows: { method: string; dim: number; linear: [number, number][]; knn?: [number, number][] }[];
}

/** What `data/pretrained/<preset>.json` records beside the weights. */
export interface PretrainedCard {
  /** The model preset the weights belong to. */
  preset: string;
  /** The weights file name, beside the card. */
  file: string;
  /** Size of the weights file in bytes. */
  bytes: number;
  /** SHA-256 of the weights file, hex. */
  sha256: string;
  /** The stored dtype, e.g. "F16". */
  dtype: string;
  /** The commands that made the file, in order. */
  commands: string[];
  /** Training steps. */
  steps: number;
  /** Images per training step. */
  batchSize: number;
  /** Wall-clock training seconds, all resumed segments together. */
  trainSeconds: number;
  /** The machine, in words (e.g. "2 CPU cores"). */
  machine: string;
  /** The data trained on (its `source` line). */
  trainedOn: string;
  /** Probe tables, one per dataset probed. */
  probes: CardProbe[];
}

/**
 * A data `source` line without its folder ("Fashion-MNIST, shipped subset (10000 train / 2000 test)"):
 * cards name the data this way, so they read the same on every machine.
 */
export function dataName(source: string): string {
  return source.replace(/ from \S.*$/, "");
}

function localPath(name: string): string | undefined {
  const url = new URL(name, PRETRAINED_DIR);
  if (url.protocol !== "file:") return undefined;
  const path = fileURLToPath(url);
  try {
    return Deno.statSync(path).isFile ? path : undefined;
  } catch {
    return undefined; // absent, or no read permission: no shipped weights
  }
}

/** The path of the shipped weights for a preset, or undefined when none ship (or cannot be read). */
export function pretrainedWeights(preset = "quick"): string | undefined {
  return localPath(`${preset}.safetensors`);
}

/** The card beside the shipped weights (command, training time, probe results), if any. */
export function pretrainedCard(preset = "quick"): PretrainedCard | undefined {
  const path = localPath(`${preset}.json`);
  if (!path) return undefined;
  const card = JSON.parse(Deno.readTextFileSync(path)) as PretrainedCard;
  if (card.preset !== preset) {
    throw new Error(`${path}: card of preset "${card.preset}", expected "${preset}"`);
  }
  return card;
}

/** One line saying what the shipped weights are, for logs and notebooks. */
export function pretrainedLine(preset = "quick"): string {
  const path = pretrainedWeights(preset);
  if (!path) return `no shipped pretrained weights for preset ${preset}`;
  const c = pretrainedCard(preset);
  if (!c) return `shipped pretrained weights: ${path}`;
  return `shipped pretrained weights: ${path} (${c.steps} steps of ${c.batchSize} images, ` +
    `${(c.trainSeconds / 60).toFixed(0)} min on ${c.machine}; ${c.trainedOn})`;
}

/**
 * The shipped weights' probe result on the same data, from their card, as one line for a comparison
 * (e.g. "shipped weights (3000 steps, 25 min): 70.1% at 1% on this data"); undefined when no card
 * holds a probe on `dataSource`.
 */
export function shippedReference(preset: string, dataSource: string, setting = "1%"): string | undefined {
  const card = pretrainedCard(preset);
  const probe = card?.probes.find((p) => dataName(p.data) === dataName(dataSource));
  const at = probe?.settings.indexOf(setting) ?? -1;
  const row = probe?.rows.find((r) => r.method.startsWith("I-JEPA"));
  if (!card || !row || at < 0) return undefined;
  const [mean, std] = row.linear[at];
  return `shipped weights (the same recipe, ${card.steps} steps, ${
    (card.trainSeconds / 60).toFixed(0)
  } min on ` +
    `${card.trainedOn.split(" (")[0]}): ${mean.toFixed(1)} ± ${std.toFixed(1)}% at ${setting} on this data`;
}
