/**
 * `deno task embed --weights FILE --data DIR --out FEATURES`: frozen target-encoder features of a
 * folder of images, for use in any other tool. FILE is one of our weights files or an official
 * checkpoint (.pth.tar); FEATURES is `.safetensors` (features plus the file names in its metadata)
 * or `.npy` (with the names in FEATURES.files.txt).
 *
 * Preprocessing: each image is centre-cropped to a square, resized to the model's size and
 * converted to its channels (grey repeated to RGB, colour to grey by luma; the `data:` line says
 * what was done). Our weights carry their input normalisation; official checkpoints get the
 * official one (ImageNet mean and std).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { setBackend } from "../engine/backend.ts";
import { loadImageFiles } from "../data/image_folder.ts";
import { normalize } from "../data/augment.ts";
import type { IJEPA } from "../model/ijepa.ts";
import { writeSafetensors } from "../io/safetensors_write.ts";
import { loadModel } from "../io/weights.ts";
import {
  BACKEND_FLAG,
  checkOutputFile,
  type CliSpec,
  parseFlags,
  runMain,
  statIfAny,
  UsageError,
} from "./args.ts";

const SPEC: CliSpec = {
  name: "embed",
  summary: "Frozen target-encoder features (average-pooled patch tokens) of every image in a folder.",
  flags: {
    weights: {
      type: "string",
      help:
        "our .safetensors weights, an official .pth.tar checkpoint or a HuggingFace IJepaModel .safetensors",
    },
    data: { type: "string", help: "folder of PNG/JPEG images (sub-folders included)" },
    out: { type: "string", help: "output file: .safetensors or .npy" },
    tokens: { type: "bool", help: "keep every patch token ([N, patches, D]) instead of the average" },
    batch: { type: "int", min: 1, default: 16, help: "images per forward pass" },
    heads: { type: "int", min: 1, help: "head count, for official checkpoints outside the official widths" },
    backend: BACKEND_FLAG,
    json: { type: "bool", help: "one JSON line with the summary" },
  },
};

/** Write a float32 array as a NumPy .npy file (format 1.0, little-endian, C order). */
function encodeNpy(data: Float32Array, shape: number[]): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}${
    shape.length === 1 ? "," : ""
  }), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += " ".repeat(pad % 64) + "\n";
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

async function main(args: string[]) {
  const f = parseFlags(args, SPEC);
  for (const k of ["weights", "data", "out"]) {
    if (!f[k]) throw new UsageError(`embed: --${k} is required (see --help)`);
  }
  const out = f.out as string;
  // every input and the destination checked before the backend starts
  const ext = await checkOutputFile("embed", "out", out, [".safetensors", ".npy"]);
  const weights = f.weights as string;
  for (const [flag, path, want] of [["weights", weights, "file"], ["data", f.data as string, "folder"]]) {
    const info = await statIfAny(path);
    if (!info) throw new UsageError(`embed: --${flag} ${path}: no such ${want}`);
    if (info.isDirectory !== (want === "folder")) {
      throw new UsageError(
        `embed: --${flag} ${path} is a ${info.isDirectory ? "folder" : "file"}; expected a ${want}`,
      );
    }
  }
  const json = Boolean(f.json);
  await setBackend(f.backend as string | undefined, { quiet: json });
  const t0 = performance.now();
  // any weights file, told apart by its content: ours, an official checkpoint, a HuggingFace file
  // (the last two carry the ImageNet mean and std their encoders were trained with)
  const r = await loadModel(weights, { parts: ["target_encoder"], heads: f.heads as number | undefined });
  const model: IJEPA = r.model;
  const mean = (r.meta.mean as number[] | undefined) ?? new Array(model.cfg.channels).fill(0.5);
  const std = (r.meta.std as number[] | undefined) ?? new Array(model.cfg.channels).fill(0.25);
  const loadSeconds = (performance.now() - t0) / 1000;
  const cfg = model.cfg;
  // at the model's size and channels: grey images repeated to 3 channels for RGB models (the
  // official preprocessing), colour ones turned grey (luma) for grey models
  const { dataset, files } = await loadImageFiles(f.data as string, {
    size: cfg.imageSize,
    channels: cfg.channels === 1 ? 1 : 3,
  });
  if (!json) console.error(`data: ${dataset.source}`);
  const N = dataset.n, D = cfg.width, P = cfg.numPatches;
  const per = f.tokens ? P * D : D;
  const features = new Float32Array(N * per);
  const B = f.batch as number;
  const pix = cfg.imageSize * cfg.imageSize * cfg.channels;
  const t1 = performance.now();
  for (let s = 0; s < N; s += B) {
    const n = Math.min(B, N - s);
    const x = normalize(dataset.images.subarray(s * pix, (s + n) * pix), cfg.channels, mean, std);
    const feats = tf.tidy(() => {
      const h = model.targetEncoder.forward(tf.tensor4d(x, [n, cfg.imageSize, cfg.imageSize, cfg.channels]));
      return f.tokens ? h : h.mean(1); // [n, P, D] or [n, D]
    });
    features.set(await feats.data() as Float32Array, s * per);
    feats.dispose();
    if (!json) console.error(`embedded ${s + n}/${N}`);
  }
  const seconds = (performance.now() - t1) / 1000;
  const shape = f.tokens ? [N, P, D] : [N, D];
  if (ext === ".npy") {
    await Deno.writeFile(out, encodeNpy(features, shape));
    await Deno.writeTextFile(`${out}.files.txt`, files.join("\n") + "\n");
  } else {
    await writeSafetensors(out, { features: { dtype: "F32", shape, data: features } }, {
      files: JSON.stringify(files),
      weights,
      preprocessing: JSON.stringify({ size: cfg.imageSize, mean, std }),
    });
  }
  const summary = {
    images: N,
    shape,
    out,
    loadSeconds: Number(loadSeconds.toFixed(2)),
    secondsPerImage: Number((seconds / N).toFixed(3)),
    peakRssGiB: Number((Deno.memoryUsage().rss / 2 ** 30).toFixed(2)),
  };
  console.log(
    json
      ? JSON.stringify(summary)
      : `wrote ${out}: ${shape.join(" x ")} features; ${summary.secondsPerImage} s/image`,
  );
  model.dispose();
}

if (import.meta.main) runMain(main);
