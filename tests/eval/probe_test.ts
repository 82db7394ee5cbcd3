// Tests of lib/eval/probe.ts (linear probe, label subsets, kNN, suite), lib/eval/features.ts (readouts) and
// lib/cli/probe.ts (`deno task probe`). Run: deno test -A tests/probe_test.ts
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { setBackend } from "../../lib/engine/backend.ts";
import { modelConfig } from "../../lib/model/config.ts";
import type { ImageDataset } from "../../lib/data/data.ts";
import { extractFeatures, modelInput, rawPixelFeatures } from "../../lib/eval/features.ts";
import { IJEPA } from "../../lib/model/ijepa.ts";
import {
  formatProbeTable,
  knnAccuracy,
  probeBars,
  probeSettings,
  runProbeSuite,
  sampleLabelSubset,
  takeFeatureRows,
  trainLinearProbe,
} from "../../lib/eval/probe.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { VisionTransformer } from "../../lib/model/vit.ts";
import { runCli } from "../_cli.ts";
import { checkPresetMatches, parseReadouts, parseShots, runAfterPretrain } from "../../lib/cli/probe.ts";
import { IN_CI, probeBackend } from "../_backends.ts";

async function onCpu(): Promise<void> {
  await setBackend("cpu", { quiet: true, blas: false });
}

/**
 * A linearly separable set: K class directions in `dim` dimensions, each point its class direction
 * times 4 plus unit noise. [n, dim] features, [n] labels.
 */
function separable(n: number, dim: number, K: number, seed: number, noiseSeed = seed + 1000) {
  const dirRng = new Rng(seed), rng = new Rng(noiseSeed);
  const dirs = Array.from({ length: K }, () => Array.from({ length: dim }, () => dirRng.normal()));
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % K;
    y[i] = c;
    for (let j = 0; j < dim; j++) x[i * dim + j] = 4 * dirs[c][j] + rng.normal() + 10; // offset: standardisation matters
  }
  return { x, y };
}

/** Synthetic images: class c is a bright horizontal band at rows 4c..4c+3 of a noisy 16x16 image. */
function bandImages(n: number, K: number, seed: number, size = 16): ImageDataset {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * size * size); // [n, size, size, 1]
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % K;
    labels[i] = c;
    for (let r = 0; r < size; r++) {
      for (let col = 0; col < size; col++) {
        const band = Math.floor((r * K) / size) === c;
        images[(i * size + r) * size + col] = Math.min(255, Math.floor((band ? 180 : 40) + 40 * rng.float()));
      }
    }
  }
  return {
    images,
    labels,
    n,
    height: size,
    width: size,
    channels: 1,
    classNames: Array.from({ length: K }, (_, c) => `band${c}`),
    source: `bands (${n})`,
  };
}

// ---------------------------------------------------------------------------------------------
// The linear probe

Deno.test("probe: a linearly separable synthetic set is learned to ~100% on held-out data", async () => {
  await onCpu();
  const train = separable(300, 12, 4, 1);
  const test = separable(400, 12, 4, 1, 99); // the same class directions, fresh noise
  const probe = await trainLinearProbe(train.x, train.y, 12, 4);
  assert.ok(probe.converged, `L-BFGS should converge, ran ${probe.iterations} iterations`);
  const acc = probe.accuracy(test.x, test.y);
  assert.ok(acc >= 0.99, `expected >= 99% on a separable set, got ${(100 * acc).toFixed(1)}%`);
  const cm = probe.confusionMatrix(test.x, test.y);
  assert.equal(cm.length, 4);
  assert.equal(cm.flat().reduce((a, b) => a + b, 0), 400);
  const diag = cm.reduce((a, r, i) => a + r[i], 0);
  assert.equal(diag / 400, acc, "the confusion matrix's diagonal is the accuracy");
  assert.ok(probe.loss < 0.2, `final objective should be small, got ${probe.loss}`);
});

Deno.test("probe: a fixed linear rule with a margin is recovered on held-out points", async () => {
  await onCpu();
  // Labels from a fixed linear rule with a margin: the probe must find that rule.
  const rng = new Rng(7);
  const dim = 10, K = 3;
  const V = Array.from({ length: dim * K }, () => rng.normal());
  const make = (n: number) => {
    const x: number[] = [], y: number[] = [];
    while (y.length < n) {
      const p = Array.from({ length: dim }, () => rng.normal());
      const s = [0, 1, 2].map((k) => p.reduce((a, v, j) => a + v * V[j * K + k], 0));
      const sorted = [...s].sort((a, b) => b - a);
      if (sorted[0] - sorted[1] < 1) continue; // margin
      x.push(...p);
      y.push(s.indexOf(sorted[0]));
    }
    return { x: Float32Array.from(x), y: Int32Array.from(y) };
  };
  const tr = make(600), te = make(600);
  const probe = await trainLinearProbe(tr.x, tr.y, dim, K);
  const acc = probe.accuracy(te.x, te.y);
  assert.ok(acc >= 0.97, `expected >= 97% held-out accuracy, got ${(100 * acc).toFixed(1)}%`);
});

Deno.test("probe: the same inputs give the same probe (no randomness in the recipe)", async () => {
  await onCpu();
  const { x, y } = separable(120, 6, 3, 3);
  const a = await trainLinearProbe(x, y, 6, 3);
  const b = await trainLinearProbe(x, y, 6, 3);
  assert.deepEqual(Array.from(a.weights), Array.from(b.weights));
  assert.deepEqual(Array.from(a.bias), Array.from(b.bias));
  assert.equal(a.iterations, b.iterations);
  // Weaker regularisation (larger C) must fit the training set at least as tightly.
  const loose = await trainLinearProbe(x, y, 6, 3, { C: 100 });
  assert.ok(loose.loss <= a.loss + 1e-9, `C=100 objective ${loose.loss} should be <= C=1's ${a.loss}`);
});

const WASM_BLAS = await probeBackend({ label: "wasm+blas", name: "wasm", blas: true });
if (WASM_BLAS) console.warn(`wasm+blas probe test ignored: ${WASM_BLAS}`);

Deno.test({
  name: `probe: deterministic on wasm+blas too, and the same optimum as on cpu${
    WASM_BLAS ? ` (ignored: ${WASM_BLAS})` : ""
  }`,
  ignore: WASM_BLAS !== undefined && !IN_CI,
  fn: async () => {
    const { x, y } = separable(2000, 64, 10, 8);
    await onCpu();
    const ref = await trainLinearProbe(x, y, 64, 10);
    try {
      await setBackend("wasm", { quiet: true, blas: true });
      const a = await trainLinearProbe(x, y, 64, 10);
      const b = await trainLinearProbe(x, y, 64, 10);
      assert.deepEqual(Array.from(a.weights), Array.from(b.weights), "two fits on wasm+blas differ");
      assert.ok(a.converged && ref.converged);
      let worst = 0;
      for (let i = 0; i < a.weights.length; i++) {
        worst = Math.max(worst, Math.abs(a.weights[i] - ref.weights[i]));
      }
      assert.ok(worst < 5e-3, `wasm+blas and cpu optima differ by ${worst}`);
      assert.ok(Math.abs(a.loss - ref.loss) < 1e-6, `objective ${a.loss} vs ${ref.loss}`);
    } finally {
      await onCpu();
    }
  },
});

Deno.test("probe: no tensors leak from fitting", async () => {
  await onCpu();
  const { x, y } = separable(60, 5, 3, 4);
  await trainLinearProbe(x, y, 5, 3);
  const before = tf.memory().numTensors;
  await trainLinearProbe(x, y, 5, 3);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("probe: bad inputs are errors naming what was expected and what came", async () => {
  await onCpu();
  const { x, y } = separable(30, 4, 3, 5);
  await assert.rejects(
    () => trainLinearProbe(x.subarray(0, 100), y, 4, 3),
    /expected 30 x 4 = 120 feature values .* got 100/,
  );
  await assert.rejects(() => trainLinearProbe(x, y, 5, 3), /expected 30 x 5 = 150 feature values/);
  const bad = Int32Array.from(y);
  bad[7] = 3;
  await assert.rejects(
    () => trainLinearProbe(x, bad, 4, 3),
    /label 3 at index 7 is out of range: expected 0\.\.2/,
  );
  bad[7] = -1;
  await assert.rejects(() => trainLinearProbe(x, bad, 4, 3), /label -1 at index 7 is out of range/);
  await assert.rejects(() => trainLinearProbe(x, y, 4, 1), /at least 2 classes/);
  await assert.rejects(
    () => trainLinearProbe(x, y, 4, 3, { lr: 1 } as unknown as Record<string, number>),
    /unknown option "lr"/,
  );
  const probe = await trainLinearProbe(x, y, 4, 3);
  assert.throws(() => probe.predict(new Float32Array(10)), /expected rows of 4 features, got 10 values/);
  assert.throws(() => probe.accuracy(x, y.subarray(0, 10)), /expected 10 x 4 = 40 feature values/);
});

// ---------------------------------------------------------------------------------------------
// Label subsets and settings

Deno.test("sampleLabelSubset: class-balanced, seeded, deterministic, nested across sizes", () => {
  const labels = Int32Array.from({ length: 500 }, (_, i) => (i * 7) % 5); // 100 per class
  const a = sampleLabelSubset(labels, 10, new Rng(3));
  const b = sampleLabelSubset(labels, 10, new Rng(3));
  assert.deepEqual(Array.from(a), Array.from(b), "same seed, same subset");
  const c = sampleLabelSubset(labels, 10, new Rng(4));
  assert.notDeepEqual(Array.from(a), Array.from(c), "another seed, another subset");
  assert.equal(a.length, 50);
  const counts = new Array(5).fill(0);
  for (const i of a) counts[labels[i]]++;
  assert.deepEqual(counts, [10, 10, 10, 10, 10]);
  assert.equal(new Set(a).size, 50, "no index twice");
  for (let i = 1; i < a.length; i++) assert.ok(a[i] > a[i - 1], "ascending");
  const small = new Set(sampleLabelSubset(labels, 3, new Rng(3)));
  for (const i of small) assert.ok(a.includes(i), "the 3-per-class draw is inside the 10-per-class draw");
  const uneven = sampleLabelSubset(labels, [1, 2, 0, 0, 5], new Rng(0));
  assert.deepEqual(Array.from(uneven, (i) => labels[i]).sort(), [0, 1, 1, 4, 4, 4, 4, 4]);
  assert.throws(
    () => sampleLabelSubset(labels, 101, new Rng(0)),
    /101 labelled images of class 0 requested, the pool has 100/,
  );
  assert.throws(
    () => sampleLabelSubset(Int32Array.from([0, 1, 5]), 1, new Rng(0), 3),
    /label 5 at index 2 is out of range/,
  );
});

Deno.test("probeSettings: n-shot, 1% per class, full; too many shots is an error", () => {
  const s = probeSettings([6000, 6000, 5000], { shots: [1, 50], seeds: 3 });
  assert.deepEqual(s.map((x) => x.name), ["1-shot", "50-shot", "1%", "full"]);
  assert.deepEqual(s[2].perClass, [60, 60, 50]);
  assert.equal(s[3].labelled, 17000);
  assert.equal(s[3].draws, 1);
  assert.throws(
    () => probeSettings([10, 4], { shots: [5] }),
    /5-shot needs 5 labelled images of every class; .* has 4/,
  );
});

// ---------------------------------------------------------------------------------------------
// kNN

Deno.test("knn: separable clusters are classified correctly; k larger than the pool works", async () => {
  await onCpu();
  const tr = separable(90, 8, 3, 6), te = separable(90, 8, 3, 6, 60);
  const train = { features: tr.x, dim: 8, n: 90, labels: tr.y };
  const test = { features: te.x, dim: 8, n: 90, labels: te.y };
  const before = tf.memory().numTensors;
  assert.ok((await knnAccuracy(train, test, 20)) >= 0.99);
  assert.equal(tf.memory().numTensors, before, "kNN leaves no tensor behind");
  const few = {
    features: takeFeatureRows(tr.x, 8, [0, 1, 2]),
    dim: 8,
    n: 3,
    labels: Int32Array.from([0, 1, 2]),
  };
  assert.ok((await knnAccuracy(few, test, 20)) >= 0.9, "k = 20 with 3 labelled points uses all 3");
  await assert.rejects(() => knnAccuracy(train, { ...test, dim: 4 }, 20), /expected test features \[90, 8\]/);
});

// ---------------------------------------------------------------------------------------------
// Features

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

// ---------------------------------------------------------------------------------------------
// The suite and its table

Deno.test("suite: every method on the same draws, a cell per setting, kNN beside the probe", async () => {
  await onCpu();
  const train = bandImages(80, 4, 3), test = bandImages(40, 4, 4);
  const enc = new VisionTransformer(modelConfig("tiny"), new Rng(0));
  try {
    const table = await runProbeSuite({
      encoders: [{ name: "random init", encoder: enc }],
      train,
      test,
      shots: [1, 5],
      seeds: 2,
      k: 5,
    });
    assert.deepEqual(table.settings.map((s) => s.name), ["1-shot", "5-shot", "1%", "full"]);
    assert.deepEqual(table.rows.map((r) => r.method), ["random init", "raw pixels"]);
    assert.deepEqual(table.rows.map((r) => r.dim), [32, 256]);
    for (const r of table.rows) {
      assert.equal(r.probe.length, 4);
      assert.equal(r.knn?.length, 4);
      assert.equal(r.probe[0].runs.length, 2);
      assert.equal(r.probe[3].runs.length, 1);
      for (const c of r.probe) assert.ok(c.mean >= 0 && c.mean <= 1 && c.std >= 0);
      assert.equal(r.confusion.flat().reduce((a, b) => a + b, 0), 40);
    }
    // 1% of 20 per class rounds to 1 per class: the same draws as 1-shot, so the same accuracies.
    for (const r of table.rows) assert.deepEqual(r.probe[2].runs, r.probe[0].runs);
    // The band images are linearly separable in pixels: all labels must be near 100%.
    assert.ok(table.rows[1].probe[3].mean >= 0.95, `pixels, full: ${table.rows[1].probe[3].mean}`);
    const text = formatProbeTable(table);
    assert.match(text, /random init\s+32 /);
    assert.match(text, /raw pixels\s+256 /);
    assert.match(text, /kNN \(cosine, k=5\)/);
    assert.match(text, /full \(80\)/);
    const bars = probeBars(table);
    assert.equal(bars.length, 8);
    assert.ok(bars.every((b) => b.mean >= 0 && b.mean <= 100));
  } finally {
    enc.dispose();
  }
});

Deno.test("suite: without 'full' only the labelled pool images are encoded", async () => {
  await onCpu();
  const train = bandImages(200, 4, 5), test = bandImages(20, 4, 6);
  const enc = new VisionTransformer(modelConfig("tiny"), new Rng(0));
  const lines: string[] = [];
  try {
    const table = await runProbeSuite({
      encoders: [{ name: "enc", encoder: enc }],
      pixels: false,
      train,
      test,
      shots: [2],
      onePercent: false,
      full: false,
      seeds: 1,
      k: 0,
      log: (s) => lines.push(s),
    });
    assert.equal(table.rows.length, 1);
    assert.equal(table.rows[0].knn, null);
    assert.ok(lines.some((l) => l.includes("features of 8 pool and 20 test images")), lines.join("\n"));
  } finally {
    enc.dispose();
  }
});

// ---------------------------------------------------------------------------------------------
// The CLI

const cli = (args: string[]) => runCli("probe", args);

const SMALL = [
  "--data",
  "fashion-mnist-subset",
  "--pool",
  "400",
  "--test-size",
  "200",
  "--shots",
  "1,5",
  "--seeds",
  "2",
  "--backend",
  "cpu",
];

Deno.test("cli probe: flags parse and check", () => {
  assert.deepEqual(parseShots("10, 1,5,5"), [1, 5, 10]);
  assert.deepEqual(parseShots(""), []);
  assert.throws(() => parseShots("1,x"), /--shots expects positive integers/);
  assert.deepEqual(parseReadouts("avgpool,pool2x2"), ["avgpool", "pool2x2"]);
  assert.throws(() => parseReadouts("avgpool,cls"), /unknown readout "cls"/);
  checkPresetMatches("tiny", modelConfig("tiny"), "w.safetensors");
  assert.throws(
    () => checkPresetMatches("quick", modelConfig("tiny"), "w.safetensors", "tiny"),
    /--preset quick does not match the weights in w\.safetensors \(saved from preset tiny\): imageSize 16 in the file, 28 in quick; .*width 32 in the file, 192 in quick/,
  );
});

Deno.test("cli probe: a tiny end-to-end run with --json, then with --weights", async () => {
  const r = await cli(["--preset", "tiny", "--json", ...SMALL]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.settings.map((s: { name: string }) => s.name), ["1-shot", "5-shot", "1%", "full"]);
  assert.deepEqual(out.rows.map((x: { method: string }) => x.method), ["random init", "raw pixels"]);
  assert.equal(out.pool, 400);
  assert.equal(out.test, 200);
  assert.equal(out.weights, null);
  for (const row of out.rows) {
    for (const c of row.probe) assert.ok(c.mean > 0.1 && c.mean <= 1, JSON.stringify(c)); // above chance (10%)
  }
  assert.match(r.stderr, /resized from 28x28 to the model's 16x16/);

  // Weights saved from the tiny preset: an I-JEPA row joins; --preset quick with them is an error.
  const dir = await Deno.makeTempDir();
  try {
    await onCpu();
    const { saveModel } = await import("../../lib/io/weights.ts");
    const model = new IJEPA("tiny", { seed: 5 });
    const path = `${dir}/w.safetensors`;
    await saveModel(model, path, { preset: "tiny", mean: [0.3], std: [0.35] });
    model.dispose();
    const w = await cli(["--weights", path, "--json", "--k", "0", ...SMALL]);
    assert.equal(w.code, 0, w.stderr);
    const o = JSON.parse(w.stdout);
    assert.deepEqual(o.rows.map((x: { method: string }) => x.method), [
      "I-JEPA",
      "random init",
      "raw pixels",
    ]);
    assert.equal(o.rows[0].knn, null);
    assert.match(w.stderr, /mean 0\.3000 std 0\.3500 \(from the weights file\)/);
    const bad = await cli(["--weights", path, "--preset", "quick", ...SMALL]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--preset quick does not match the weights .* \(saved from preset tiny\)/);
    await Deno.mkdir(`${dir}/run`);
    await Deno.copyFile(path, `${dir}/run/final.safetensors`);
    const png = `${dir}/bars.png`;
    const run = await cli([
      "--run",
      `${dir}/run`,
      "--png",
      png,
      "--k",
      "0",
      "--seeds",
      "1",
      ...SMALL.slice(0, -4),
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /I-JEPA\s+32 /);
    assert.ok((await Deno.stat(png)).size > 1000, "the bar chart was written");
    const none = await cli(["--run", `${dir}/nothing`]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /expected .*nothing\/final\.safetensors/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli probe: runAfterPretrain probes a trained model without the all-labels column", async () => {
  await onCpu();
  const model = new IJEPA("tiny", { seed: 1 });
  try {
    const data = { train: bandImages(40, 4, 7), test: bandImages(20, 4, 8), source: "bands", full: true };
    const table = await runAfterPretrain({ weights: "w.safetensors", model, data, json: true });
    assert.deepEqual(table.settings.map((s) => s.name), ["1-shot", "5-shot", "10-shot", "1%"]);
    assert.deepEqual(table.rows.map((r) => r.method), ["I-JEPA", "random init", "raw pixels"]);
    await assert.rejects(() => runAfterPretrain({ model }), /expected \{ weights: string/);
  } finally {
    model.dispose();
  }
});
