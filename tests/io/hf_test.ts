// HuggingFace IJepaModel files (lib/io/hf.ts through loadModel): files written here the way
// transformers' convert_ijepa_to_hf.py writes them (its renaming and q/k/v split, redone in this test
// from the converter's table, not with lib/io/hf.ts) load back with the right outputs; wrong and
// partial files fail naming the tensors; `deno task embed` reads them.
// Run: deno test -A tests/io/hf_test.ts
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { runCli } from "../_cli.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { IJEPA } from "../../lib/model/ijepa.ts";
import { modelConfig } from "../../lib/model/config.ts";
import { describeHf, HF_LAYOUT } from "../../lib/io/hf.ts";
import { openSafetensors } from "../../lib/io/safetensors_read.ts";
import { type StoredTensor, writeSafetensors } from "../../lib/io/safetensors_write.ts";
import { openTorchCheckpoint, stateDict } from "../../lib/io/torch/checkpoint.ts";
import { loadModel, type LoadOptions, officialTensors, saveModel } from "../../lib/io/weights.ts";

const DIR = new URL("../fixtures/official-ijepa-tiny/", import.meta.url);
const CKPT = new URL("checkpoint.pth.tar", DIR).pathname;
type Arr = { shape: number[]; data: number[] };
const expected = JSON.parse(await Deno.readTextFile(new URL("expected.json", DIR))) as {
  input: Arr;
  encoder_full: Arr;
  target_encoder_full: Arr;
};

/** The converter's renaming (official state-dict key -> IJepaModel key), as its regex table has it. */
const CONVERTER: [RegExp, string][] = [
  [/^pos_embed$/, "embeddings.position_embeddings"],
  [/^patch_embed\.proj\.(weight|bias)$/, "embeddings.patch_embeddings.projection.$1"],
  [/^blocks\.(\d+)\.norm1\.(weight|bias)$/, "encoder.layer.$1.layernorm_before.$2"],
  [/^blocks\.(\d+)\.attn\.proj\.(weight|bias)$/, "encoder.layer.$1.attention.output.dense.$2"],
  [/^blocks\.(\d+)\.norm2\.(weight|bias)$/, "encoder.layer.$1.layernorm_after.$2"],
  [/^blocks\.(\d+)\.mlp\.fc1\.(weight|bias)$/, "encoder.layer.$1.intermediate.dense.$2"],
  [/^blocks\.(\d+)\.mlp\.fc2\.(weight|bias)$/, "encoder.layer.$1.output.dense.$2"],
  [/^norm\.(weight|bias)$/, "layernorm.$1"],
];

/**
 * An official encoder state dict (keys without "module.") in IJepaModel names: renamed by the table,
 * each `attn.qkv` [3D, D] split into query, key and value rows of D each, as the converter does.
 */
function toHf(official: Map<string, { shape: number[]; data: Float32Array }>): Record<string, StoredTensor> {
  const out: Record<string, StoredTensor> = {};
  for (const [k, { shape, data }] of official) {
    const qkv = /^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$/.exec(k);
    if (qkv) {
      const D = shape[0] / 3, per = data.length / 3;
      ["query", "key", "value"].forEach((q, j) => {
        out[`encoder.layer.${qkv[1]}.attention.attention.${q}.${qkv[2]}`] = {
          dtype: "F32",
          shape: [D, ...shape.slice(1)],
          data: data.slice(j * per, (j + 1) * per),
        };
      });
      continue;
    }
    const rule = CONVERTER.find(([re]) => re.test(k));
    if (!rule) throw new Error(`the converter has no rule for ${k}`);
    out[k.replace(rule[0], rule[1])] = { dtype: "F32", shape, data };
  }
  return out;
}

/** The fixture's context encoder ("encoder", as the converter reads it), in IJepaModel names. */
async function fixtureAsHf(): Promise<Record<string, StoredTensor>> {
  using ckpt = await openTorchCheckpoint(CKPT);
  const enc = stateDict(ckpt.root, "encoder", { stripPrefix: "module." });
  const m = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of enc) m.set(k, { shape: [...v.shape], data: await v.readFloat32() });
  return toHf(m);
}

/** Our model's encoder in IJepaModel names (from its official-layout export). */
async function ourAsHf(model: IJEPA): Promise<Record<string, StoredTensor>> {
  const m = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of Object.entries(await officialTensors(model, ["encoder"]))) {
    m.set(k.slice("encoder.".length), { shape: [...t.shape], data: t.data as Float32Array });
  }
  return toHf(m);
}

/** config.json as transformers writes it beside model.safetensors (the fields that matter here). */
function hfConfigJson(o: Record<string, unknown>): string {
  return JSON.stringify({ architectures: ["IJepaModel"], model_type: "ijepa", hidden_act: "gelu", ...o });
}

function fixtureInput(): tf.Tensor4D {
  // official NCHW -> our NHWC
  return tf.tidy(() =>
    tf.tensor4d(expected.input.data, expected.input.shape as [number, number, number, number])
      .transpose([0, 2, 3, 1])
  ) as tf.Tensor4D;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length, "length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("hf: the fixture's context encoder in IJepaModel names reproduces the official encoder's outputs", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const dir = await Deno.makeTempDir({ prefix: "ijepa_hf_" });
  try {
    const path = `${dir}/model.safetensors`;
    await writeSafetensors(path, await fixtureAsHf(), { format: "pt" });
    // width 24 is not in the official family: without config.json nothing gives the head count
    await assertRejects(() => loadModel(path), Error, "width 24 is not in the official family");
    await Deno.writeTextFile(
      `${dir}/config.json`,
      hfConfigJson({
        hidden_size: 24,
        num_attention_heads: 2,
        image_size: 16,
        patch_size: 4,
        layer_norm_eps: 1e-6,
      }),
    );
    const { model, meta } = await loadModel(path);
    const x = fixtureInput();
    try {
      assertEquals(meta.layout, HF_LAYOUT);
      assertEquals(model.parts, ["encoder"]);
      assertEquals(meta.mean, [0.485, 0.456, 0.406]);
      const c = model.cfg;
      assertEquals([c.imageSize, c.patchSize, c.channels, c.width, c.depth, c.heads, c.mlpHidden], [
        16,
        4,
        3,
        24,
        2,
        2,
        96,
      ]);
      const d = maxDiff(await model.encoder.forward(x).data(), expected.encoder_full.data);
      assert(d < 1e-5, `context encoder: max difference ${d} from the official outputs`);
      // the target encoder asked of it gets the same (context) weights: not the fixture's EMA copy
      const t = await loadModel(path, { parts: ["target_encoder"] });
      const out = await t.model.targetEncoder.forward(x).data();
      assert(maxDiff(out, expected.encoder_full.data) < 1e-5);
      assert(maxDiff(out, expected.target_encoder_full.data) > 1e-4, "the EMA encoder differs from it");
      t.model.dispose();
      await assertRejects(() => loadModel(path, { parts: ["predictor"] }), Error, "it holds no predictor");
    } finally {
      x.dispose();
      model.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hf: our tiny model written with the converter's mapping loads back with the same outputs", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const dir = await Deno.makeTempDir({ prefix: "ijepa_hf_" });
  const ours = new IJEPA("tiny", { seed: 5, parts: ["encoder"] });
  const x = tf.randomNormal([3, 16, 16, 1], 0, 1, "float32", 2) as tf.Tensor4D;
  try {
    const hf = await ourAsHf(ours);
    // inside IJepaForImageClassification: an "ijepa." prefix and a classifier, plus a pooler
    const wrapped: Record<string, StoredTensor> = Object.fromEntries(
      Object.entries(hf).map(([k, v]) => [`ijepa.${k}`, v]),
    );
    wrapped["classifier.weight"] = { dtype: "F32", shape: [10, 32], data: new Float32Array(320) };
    wrapped["ijepa.pooler.dense.weight"] = { dtype: "F32", shape: [32, 32], data: new Float32Array(1024) };
    const path = `${dir}/w.safetensors`;
    await writeSafetensors(path, wrapped, { format: "pt" });
    const { model, meta } = await loadModel(path, { heads: 2 });
    try {
      assertEquals(meta.ignored, ["classifier.weight", "ijepa.pooler.dense.weight"]);
      const want = await ours.encoder.forward(x).data();
      const d = maxDiff(await model.encoder.forward(x).data(), want);
      assert(d < 1e-5, `max difference ${d}`);
    } finally {
      model.dispose();
    }
    // no position embeddings (the model rebuilds sin-cos): the image size must come from elsewhere
    const noPos = { ...hf };
    delete noPos["embeddings.position_embeddings"];
    await writeSafetensors(path, noPos, { format: "pt" });
    await assertRejects(
      () => loadModel(path, { heads: 2 }),
      Error,
      'no "embeddings.position_embeddings" to read the image size from',
    );
    const again = await loadModel(path, { heads: 2, imageSize: 16 });
    const d = maxDiff(await again.model.encoder.forward(x).data(), await ours.encoder.forward(x).data());
    again.model.dispose();
    assert(d < 1e-5, `without position embeddings: max difference ${d}`);
  } finally {
    x.dispose();
    ours.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hf: wrong and partial files fail naming the tensors and shapes", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const dir = await Deno.makeTempDir({ prefix: "ijepa_hf_" });
  const ours = new IJEPA("tiny", { seed: 1, parts: ["encoder"] });
  try {
    const hf = await ourAsHf(ours);
    const path = `${dir}/w.safetensors`;
    const fails = async (
      tensors: Record<string, StoredTensor>,
      says: string,
      opts: LoadOptions = { heads: 2 },
    ) => {
      await writeSafetensors(path, tensors, { format: "pt" });
      await assertRejects(() => loadModel(path, opts), Error, says);
    };
    const without = (...keys: string[]) =>
      Object.fromEntries(Object.entries(hf).filter(([k]) => !keys.includes(k)));
    await fails(
      without("encoder.layer.1.attention.attention.key.weight"),
      "missing tensors (a partial file?): encoder.layer.1.attention.attention.key.weight [32, 32]",
    );
    await fails(
      without("layernorm.weight", "layernorm.bias"),
      "missing tensors (a partial file?): layernorm.weight [32]",
    );
    // a shard of a split checkpoint is named as one
    await writeSafetensors(`${dir}/model-00001-of-00002.safetensors`, without("layernorm.weight"), {
      format: "pt",
    });
    await assertRejects(
      () => loadModel(`${dir}/model-00001-of-00002.safetensors`, { heads: 2 }),
      Error,
      "missing tensors (a partial file?; one shard of a split checkpoint?): layernorm.weight [32]",
    );
    await fails(
      {
        ...hf,
        "encoder.layer.0.output.dense.bias": { dtype: "F32", shape: [31], data: new Float32Array(31) },
      },
      "encoder.layer.0.output.dense.bias is [31], expected [32]",
    );
    await fails(
      {
        ...hf,
        "encoder.layer.5.layernorm_after.weight": { dtype: "F32", shape: [32], data: new Float32Array(32) },
      },
      'tensors this layout does not have (blocks 0-1 are complete and later ones exist: is "encoder.layer.2.layernorm_before.weight" missing?): encoder.layer.5.layernorm_after.weight',
    );
    // the tensor the blocks are counted by is missing: the rest of that block is named
    await fails(
      without("encoder.layer.1.layernorm_before.weight"),
      'is "encoder.layer.1.layernorm_before.weight" missing?): encoder.layer.1.layernorm_before.bias, encoder.layer.1.attention',
    );
    const pos = hf["embeddings.position_embeddings"];
    const learned = Float32Array.from(pos.data as Float32Array, (v, i) => v + (i === 3 ? 0.1 : 0));
    await fails(
      { ...hf, "embeddings.position_embeddings": { ...pos, data: learned } },
      "differs from the 2-D sin-cos embedding",
    );
    // config.json of another model beside the file
    await Deno.writeTextFile(
      `${dir}/config.json`,
      hfConfigJson({ hidden_size: 1280, num_attention_heads: 16 }),
    );
    await fails(hf, "config.json says hidden_size 1280, the tensors 32: is it another model's?", {});
    await Deno.remove(`${dir}/config.json`);
    // neither our format nor IJepaModel: says both
    await fails(
      { "vit.weight": { dtype: "F32", shape: [1], data: new Float32Array(1) } },
      "nor in HuggingFace's IJepaModel layout",
    );
  } finally {
    ours.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A byte source holding a safetensors header with these shapes and zeros for the data (made on
 * demand): stands in for the 2.5 GB released files, of which describeHf reads only the header.
 */
function headerOnly(shapes: Map<string, number[]>, metadata: Record<string, string> = {}) {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let at = 0;
  for (const [k, s] of shapes) {
    const bytes = 4 * s.reduce((a, b) => a * b, 1);
    header[k] = { dtype: "F32", shape: s, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(json, 8);
  return {
    name: "<header only>",
    size: head.length + at,
    read: (offset: number, length: number) =>
      Promise.resolve(
        offset + length <= head.length ? head.slice(offset, offset + length) : new Uint8Array(length),
      ),
    close() {},
  };
}

Deno.test("hf: the released models' shapes give their configs (header only, no weights)", async () => {
  const { hfShapes } = await import("../../lib/io/hf.ts");
  for (
    const [name, preset, mlp] of [["ijepa_vith14_1k", "vit_huge14", 5120], [
      "ijepa_vitg16_22k",
      "vit_giant16",
      6144,
    ]] as const
  ) {
    const cfg = modelConfig(preset);
    assertEquals(cfg.mlpHidden, mlp);
    const shapes = hfShapes(cfg);
    using st = await openSafetensors(headerOnly(shapes, { format: "pt" }));
    const path = `/cache/models--facebook--${name}/snapshots/abc/model.safetensors`;
    const d = await describeHf(st, path);
    const c = d.config;
    assertEquals([c.imageSize, c.patchSize, c.width, c.depth, c.heads, c.mlpHidden], [
      cfg.imageSize,
      cfg.patchSize,
      cfg.width,
      cfg.depth,
      cfg.heads,
      cfg.mlpHidden,
    ]);
    assert(d.imageSizeFrom.startsWith("the position embeddings"), d.imageSizeFrom);
    assertEquals(d.headsFrom, `the official family's table (width ${cfg.width})`);
    assertEquals(d.parameters, [...shapes.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0));
    // without position embeddings the model's name gives the image size
    const noPos = new Map(shapes);
    noPos.delete("embeddings.position_embeddings");
    using st2 = await openSafetensors(headerOnly(noPos));
    const d2 = await describeHf(st2, path);
    assertEquals([d2.config.imageSize, d2.model, d2.imageSizeFrom], [
      cfg.imageSize,
      name,
      `the model name ${name}`,
    ]);
  }
  // ViT-H/16 is the 448 px one: its name says so when no tensor does
  const h16 = hfShapes(modelConfig("vit_huge16"));
  h16.delete("embeddings.position_embeddings");
  using st = await openSafetensors(headerOnly(h16, { name: "facebook/ijepa_vith16_1k" }));
  assertEquals((await describeHf(st, "model.safetensors")).config.imageSize, 448);
});

/** The fixture's context encoder as HuggingFace's model.safetensors and config.json in `dir`. */
async function writeHfFolder(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeSafetensors(`${dir}/model.safetensors`, await fixtureAsHf(), { format: "pt" });
  await Deno.writeTextFile(`${dir}/config.json`, hfConfigJson({ hidden_size: 24, num_attention_heads: 2 }));
}

Deno.test("cli embed: a HuggingFace IJepaModel file beside its config.json gives the context encoder's features", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa_hf_" });
  try {
    await writeHfFolder(`${dir}/hf`);
    const { PNG } = await import("pngjs");
    await Deno.mkdir(`${dir}/imgs`);
    for (const [name, v] of [["a.png", 40], ["b.png", 200]] as const) {
      const png = new PNG({ width: 16, height: 16 });
      for (let i = 0; i < png.data.length; i++) png.data[i] = i % 4 === 3 ? 255 : (v + 3 * i) % 256;
      await Deno.writeFile(`${dir}/imgs/${name}`, PNG.sync.write(png));
    }
    const r = await runCli("embed", [
      "--weights",
      `${dir}/hf/model.safetensors`,
      "--data",
      `${dir}/imgs`,
      "--out",
      `${dir}/f.safetensors`,
      "--backend",
      "cpu",
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    using st = await openSafetensors(`${dir}/f.safetensors`);
    assertEquals(st.info("features").shape, [2, 24]);
    const got = await st.readFloat32("features");
    // the same features in-process: the fixture's context encoder, ImageNet-normalised inputs
    const { loadOfficialCheckpoint } = await import("../../lib/io/official.ts");
    const { loadImageFiles } = await import("../../lib/data/image_folder.ts");
    const { normalize } = await import("../../lib/data/augment.ts");
    await setBackend("cpu", { quiet: true, blas: false });
    const { model } = await loadOfficialCheckpoint(CKPT, { heads: 2, parts: ["encoder"] });
    const { dataset } = await loadImageFiles(`${dir}/imgs`, { size: 16, channels: 3 });
    const x = normalize(dataset.images, 3, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    const want = tf.tidy(() => model.encoder.forward(tf.tensor4d(x, [2, 16, 16, 3])).mean(1));
    const d = maxDiff(got, await want.data());
    want.dispose();
    model.dispose();
    assert(d < 1e-4, `embed vs in-process: max difference ${d}`);
    assertEquals(JSON.parse(st.metadata.preprocessing).mean, [0.485, 0.456, 0.406]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli probe: a HuggingFace IJepaModel file is probed as the encoder it holds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa_hf_probe_" });
  try {
    await writeHfFolder(`${dir}/hf`);
    // two classes told apart by brightness: a trained or random encoder both separate them
    const { PNG } = await import("pngjs");
    for (const [cls, base] of [["dark", 30], ["light", 210]] as const) {
      await Deno.mkdir(`${dir}/imgs/${cls}`, { recursive: true });
      for (let n = 0; n < 10; n++) {
        const png = new PNG({ width: 16, height: 16 });
        for (let i = 0; i < png.data.length; i++) {
          png.data[i] = i % 4 === 3 ? 255 : Math.min(255, base + ((7 * i + 13 * n) % 40));
        }
        await Deno.writeFile(`${dir}/imgs/${cls}/${n}.png`, PNG.sync.write(png));
      }
    }
    const r = await runCli("probe", [
      "--weights",
      `${dir}/hf/model.safetensors`,
      "--data",
      `${dir}/imgs`,
      "--shots",
      "1",
      "--seeds",
      "1",
      "--k",
      "0",
      "--all-labels=false",
      "--backend",
      "cpu",
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const text = JSON.stringify(out);
    // the file's context encoder, told as such, probed beside the random init on the same draws
    assert(/context encoder/i.test(r.stderr + text), `the encoder is not named:\n${r.stderr}\n${text}`);
    assert(/random init/.test(text), text);
    assert(/1-shot/.test(text), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadModel: an official checkpoint opens too, told by its content, with ImageNet normalisation", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const { model, meta } = await loadModel(CKPT, { heads: 2, parts: ["target_encoder"] });
  try {
    assertEquals(meta.layout, "official I-JEPA checkpoint (PyTorch)");
    assertEquals([meta.epoch, meta.std], [1, [0.229, 0.224, 0.225]]);
    const x = fixtureInput();
    const d = maxDiff(await model.targetEncoder.forward(x).data(), expected.target_encoder_full.data);
    x.dispose();
    assert(d < 1e-5, `max difference ${d}`);
  } finally {
    model.dispose();
  }
  // the bytes decide, not the name: our weights under a .pth.tar name still load as ours
  const dir = await Deno.makeTempDir({ prefix: "ijepa_hf_" });
  try {
    const tiny = new IJEPA("tiny", { seed: 0 });
    await saveModel(tiny, `${dir}/ours.pth.tar`, { preset: "tiny" });
    tiny.dispose();
    const r = await loadModel(`${dir}/ours.pth.tar`);
    assertEquals([r.meta.preset, r.meta.layout], ["tiny", undefined]);
    r.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
