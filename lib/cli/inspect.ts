/**
 * `deno task inspect FILE`: what a weights file or an official checkpoint holds: the inferred
 * config, parameters per part, dtype, the training state stored, and anything not understood.
 * Reads only the headers and the pickle, never the tensors' bytes.
 *
 * @module
 */
import { modelConfig, type ResolvedConfig } from "../model/config.ts";
import { openSafetensors } from "../io/safetensors_read.ts";
import type { LazyTensor } from "../io/torch/tensors.ts";
import { openTorchCheckpoint } from "../io/torch/checkpoint.ts";
import { inferConfig, OFFICIAL_HEADS, officialStateDicts } from "../io/official.ts";
import { PARTS, WEIGHTS_FORMAT } from "../io/weights.ts";
import { describeHf, hfPrefix } from "../io/hf.ts";
import { type CliSpec, parseFlags, runMain, UsageError } from "./args.ts";

const SPEC: CliSpec = {
  name: "inspect",
  summary:
    "Show what a weights file holds: ours (.safetensors), an official I-JEPA checkpoint (.pth.tar) or a\n" +
    "HuggingFace IJepaModel .safetensors.",
  positionals: ["file"],
  flags: {
    heads: { type: "int", min: 1, help: "head count, for widths outside the official family" },
    json: { type: "bool", help: "one JSON line" },
  },
};

/** What {@link inspectFile} finds. */
interface Inspection {
  file: string;
  kind: string;
  config?: ResolvedConfig;
  headsFrom?: string;
  /** Where the image size came from, when no tensor or metadata states it (HuggingFace files). */
  imageSizeFrom?: string;
  parts: Record<string, { tensors: number; parameters: number; dtypes: string[] }>;
  training: Record<string, unknown>;
  notUnderstood: string[];
}

const ROOT_KEYS = new Set([
  "encoder",
  "predictor",
  "target_encoder",
  "opt",
  "scaler",
  "epoch",
  "loss",
  "batch_size",
  "world_size",
  "lr",
]);

/** Inspect a file without reading its tensors. */
const EXPECTED = "expected a .safetensors weights file or an official .pth.tar checkpoint";

async function inspectFile(path: string, heads?: number): Promise<Inspection> {
  let size: number;
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) throw new UsageError(`inspect: ${path} is a folder: ${EXPECTED}`);
    size = st.size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`inspect: ${path}: no such file; ${EXPECTED}`);
    }
    throw e;
  }
  const head = new Uint8Array(Math.min(16, size));
  {
    using f = await Deno.open(path);
    await f.read(head);
  }
  const isZip = head[0] === 0x50 && head[1] === 0x4b; // "PK": torch.save's zip container
  if (isZip) return await inspectTorch(path, heads);
  // safetensors: a little-endian u64 header length, then a JSON header that starts with "{"
  const headerLength = head.length >= 8 ? new DataView(head.buffer).getBigUint64(0, true) : -1n;
  if (head.length < 9 || headerLength > BigInt(size - 8) || head[8] !== 0x7b) {
    const start = JSON.stringify(new TextDecoder().decode(head.subarray(0, 8)).replace(/[^\x20-\x7e]/g, "."));
    throw new UsageError(
      `inspect: ${path} is neither a safetensors file nor a .pth.tar checkpoint (it starts with ${start}; ` +
        `a checkpoint is a zip archive starting with "PK", a safetensors file an 8-byte header length and "{")`,
    );
  }
  return await inspectSafetensors(path, heads);
}

async function inspectTorch(path: string, heads?: number): Promise<Inspection> {
  using ckpt = await openTorchCheckpoint(path);
  const root = ckpt.root as Record<string, unknown>;
  const out: Inspection = {
    file: path,
    kind: "official PyTorch checkpoint",
    parts: {},
    training: {},
    notUnderstood: [],
  };
  for (const k of Object.keys(root)) {
    if (!ROOT_KEYS.has(k)) out.notUnderstood.push(k);
  }
  const dicts = officialStateDicts(root);
  for (const [part, m] of dicts) {
    out.parts[part] = {
      tensors: m.size,
      parameters: [...m.values()].reduce((a, t) => a + t.numel, 0),
      dtypes: [...new Set([...m.values()].map((t) => t.dtype))],
    };
  }
  const enc = dicts.get("target_encoder") ?? dicts.get("encoder");
  if (enc) {
    const shapes = (m: Map<string, LazyTensor>) => new Map([...m].map(([k, v]) => [k, v.shape] as const));
    const pred = dicts.get("predictor");
    const known = heads ?? OFFICIAL_HEADS[enc.get("patch_embed.proj.weight")?.shape[0] ?? 0];
    // no tensor holds the head count: without the table or --heads, show the rest and say so
    const cfg = modelConfig(inferConfig(shapes(enc), pred ? shapes(pred) : undefined, known ?? 1));
    out.config = cfg;
    out.headsFrom = heads
      ? "--heads"
      : known
      ? `the official family's table (width ${cfg.width})`
      : `unknown: width ${cfg.width} is not in the official family; pass --heads N`;
  }
  for (const k of ["epoch", "loss", "lr", "batch_size", "world_size"]) {
    if (root[k] !== undefined) out.training[k] = root[k];
  }
  const opt = root.opt as Record<string, unknown> | undefined;
  if (opt && typeof opt === "object") {
    const groups = opt.param_groups as unknown[] | undefined;
    const state = opt.state as Map<unknown, Record<string, unknown>> | undefined;
    out.training.optimizer = {
      paramGroups: groups?.length ?? 0,
      statesStored: state instanceof Map ? state.size : 0,
    };
  }
  return out;
}

async function inspectSafetensors(path: string, heads?: number): Promise<Inspection> {
  using st = await openSafetensors(path);
  const md = st.metadata;
  if (md.format !== WEIGHTS_FORMAT && hfPrefix(st.names()) !== undefined) {
    const hf = await describeHf(st, path, { heads });
    return {
      file: path,
      kind: hf.kind,
      config: hf.config,
      headsFrom: hf.headsFrom,
      imageSizeFrom: hf.imageSizeFrom,
      parts: { encoder: { tensors: hf.tensors, parameters: hf.parameters, dtypes: hf.dtypes } },
      training: hf.model ? { model: hf.model } : {},
      notUnderstood: hf.ignored,
    };
  }
  const ours = md.format === WEIGHTS_FORMAT;
  const out: Inspection = {
    file: path,
    kind: ours
      ? `ijepa-deno ${
        md.kind === '"checkpoint"' || md.kind === "checkpoint" ? "training checkpoint" : "weights"
      }` +
        ` (format ${md.format_version})`
      : "safetensors without ijepa-deno metadata",
    parts: {},
    training: {},
    notUnderstood: [],
  };
  if (md.config) out.config = modelConfig(JSON.parse(md.config));
  for (const n of st.names()) {
    const part = PARTS.find((p) => n.startsWith(p + "."));
    const info = st.info(n);
    const numel = info.shape.reduce((a, b) => a * b, 1);
    if (part) {
      const e = out.parts[part] ??= { tensors: 0, parameters: 0, dtypes: [] };
      e.tensors++;
      e.parameters += numel;
      if (!e.dtypes.includes(info.dtype)) e.dtypes.push(info.dtype);
    } else if (n.startsWith("adamw.")) {
      const e = out.parts["optimizer (AdamW moments)"] ??= { tensors: 0, parameters: 0, dtypes: [] };
      e.tensors++;
      e.parameters += numel;
      if (!e.dtypes.includes(info.dtype)) e.dtypes.push(info.dtype);
    } else if (!n.startsWith("pixel_head.")) out.notUnderstood.push(n);
  }
  for (const k of ["preset", "step", "mean", "std", "adamw_t"]) {
    if (md[k] !== undefined) {
      try {
        out.training[k] = JSON.parse(md[k]);
      } catch {
        out.training[k] = md[k];
      }
    }
  }
  return out;
}

function format(i: Inspection): string {
  const lines = [`${i.file}: ${i.kind}`];
  const c = i.config;
  if (c) {
    lines.push(
      `config: ${c.imageSize}px images, ${c.channels} channel(s), patch ${c.patchSize} (${c.gridSize}x${c.gridSize} grid), ` +
        `width ${c.width}, depth ${c.depth}, ${c.heads} heads${
          i.headsFrom ? ` (from ${i.headsFrom})` : ""
        }, ` +
        `MLP ${c.mlpHidden}; predictor ${c.predictorWidth} wide, ${c.predictorDepth} deep`,
    );
    if (i.imageSizeFrom) lines.push(`image size from ${i.imageSizeFrom}`);
  }
  for (const [p, e] of Object.entries(i.parts)) {
    lines.push(
      `${p}: ${(e.parameters / 1e6).toFixed(2)}M values in ${e.tensors} tensors (${e.dtypes.join(", ")})`,
    );
  }
  if (Object.keys(i.training).length) lines.push(`training state: ${JSON.stringify(i.training)}`);
  lines.push(`not understood: ${i.notUnderstood.length ? i.notUnderstood.join(", ") : "nothing"}`);
  return lines.join("\n");
}

async function main(args: string[]) {
  const f = parseFlags(args, SPEC);
  const file = f._[0];
  if (!file) throw new UsageError("inspect: expected a FILE (see --help)");
  const info = await inspectFile(file, f.heads as number | undefined);
  console.log(f.json ? JSON.stringify(info) : format(info));
}

if (import.meta.main) runMain(main);
