// Tests of lib/eval/features.ts (readouts, raw pixels). Run: deno test -A tests/eval/features_test.ts
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { modelConfig } from "../../lib/model/config.ts";
import type { ImageDataset } from "../../lib/data/dataset.ts";
import { extractFeatures, rawPixelFeatures } from "../../lib/eval/features.ts";
import { modelInput } from "../../lib/model/model_input.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { VisionTransformer } from "../../lib/model/vit.ts";
import { bandImages, onCpu } from "./_fixtures.ts";

Deno.test("features: readouts have the documented shapes; avgpool is the mean of the final tokens", async () => {
  await onCpu();
  const cfg = modelConfig("tiny", { depth: 4 });
  const enc = new VisionTransformer(cfg, new Rng(1));
  const ds = bandImages(7, 4, 1);
  const stats = { mean: [0.4], std: [0.3] };
  try {
    const before = tf.memory().numTensors;
    const avg = await extractFeatures(enc, ds, { ...stats, batchSize: 3 });
    assert.equal(tf.memory().numTensors, before, "no tensor outlives a batch");
    assert.equal(avg.dim, 32);
    const x = tf.tensor4d(modelInput(ds, 0, 7, 16, stats.mean, stats.std), [7, 16, 16, 1]);
    const direct = tf.tidy(() => enc.forward(x).mean(1)).dataSync(); // [7, 32]
    x.dispose();
    let worst = 0;
    for (let i = 0; i < direct.length; i++) worst = Math.max(worst, Math.abs(direct[i] - avg.features[i]));
    assert.ok(worst < 1e-5, `avgpool differs from forward().mean(1) by ${worst}`);
    const whole = await extractFeatures(enc, ds, { ...stats, batchSize: 256 });
    assert.deepEqual(
      Array.from(whole.features),
      Array.from(avg.features),
      "batch size does not change features",
    );
    const last4 = await extractFeatures(enc, ds, { ...stats, readout: "last4" });
    assert.equal(last4.dim, 128);
    // The last of the four normalised blocks is the final output: its pooled chunk is avgpool.
    for (let j = 0; j < 32; j++) assert.ok(Math.abs(last4.features[96 + j] - avg.features[j]) < 1e-5);
    const p22 = await extractFeatures(enc, ds, { ...stats, readout: "pool2x2" });
    assert.equal(p22.dim, 128);
    // On a 4x4 grid the four quadrants are disjoint: their mean is the global average.
    for (let j = 0; j < 32; j++) {
      const m = (p22.features[j] + p22.features[32 + j] + p22.features[64 + j] + p22.features[96 + j]) / 4;
      assert.ok(Math.abs(m - avg.features[j]) < 1e-5);
    }
  } finally {
    enc.dispose();
  }
});

Deno.test("features: resizing, raw pixels and bad inputs", async () => {
  await onCpu();
  const enc = new VisionTransformer(modelConfig("tiny"), new Rng(0));
  try {
    const big = bandImages(3, 4, 2, 28);
    const f = await extractFeatures(enc, big, { mean: [0.3], std: [0.3] });
    assert.equal(f.n, 3);
    assert.equal(rawPixelFeatures(big).dim, 784);
    const px = rawPixelFeatures(big, { size: 16 });
    assert.equal(px.dim, 256);
    assert.ok(px.features.every((v) => v >= 0 && v <= 1));
    const rgb: ImageDataset = { ...big, channels: 3, images: new Uint8Array(3 * 28 * 28 * 3) };
    await assert.rejects(
      () => extractFeatures(enc, rgb, { mean: [0, 0, 0], std: [1, 1, 1] }),
      /the encoder expects 1-channel images, the dataset has 3/,
    );
    await assert.rejects(
      () => extractFeatures(enc, big, { mean: [0.3], std: [0.3], readout: "last4" }),
      /last4 needs an encoder of at least 4 blocks, got 2/,
    );
    await assert.rejects(
      () => extractFeatures(enc, big, { mean: [0.3], std: [0], readout: "avgpool" }),
      /positive stds/,
    );
    await assert.rejects(
      () => extractFeatures(enc, big, { mean: [0.3], std: [0.3], readout: "cls" as "avgpool" }),
      /unknown readout "cls"; expected one of avgpool, last4, pool2x2/,
    );
  } finally {
    enc.dispose();
  }
});
