// Tests of lib/inside/: PCA, patch colours, the patch bank and nearest-patch retrieval, and the pixel
// helpers. Run: deno test -A tests/inside/analysis_test.ts
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  adaptImages,
  cutPatch,
  denormalizePixels,
  highlightPatch,
  imageAt,
  nearestPatches,
  pastePatches,
  type PatchBank,
  patchBank,
  patchColourImage,
  patchColours,
  pca,
  pcaProject,
  pixelPatchBank,
  predictBlocks,
} from "../../lib/inside/mod.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import type { ImageDataset } from "../../lib/data/dataset.ts";
import { modelInput } from "../../lib/model/model_input.ts";
import { IJEPA } from "../../lib/model/ijepa.ts";
import { createMasker } from "../../lib/masks/masker.ts";
import { Rng } from "../../lib/engine/rng.ts";

/** Sample covariance [dim, dim] of x [n, dim], in float64, computed the plain way. */
function covariance(x: Float32Array, n: number, dim: number): Float64Array {
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += x[i * dim + j] / n;
  const c = new Float64Array(dim * dim);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < dim; a++) {
      for (let b = 0; b < dim; b++) c[a * dim + b] += (x[i * dim + a] - mean[a]) * (x[i * dim + b] - mean[b]);
    }
  }
  return c.map((v) => v / (n - 1));
}

function randomMatrix(n: number, dim: number, seed: number, scales?: number[]): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * dim }, (_, i) => rng.normal() * (scales ? scales[i % dim] : 1));
}

function dotRows(a: Float32Array, i: number, b: Float32Array, j: number, dim: number): number {
  let s = 0;
  for (let t = 0; t < dim; t++) s += a[i * dim + t] * b[j * dim + t];
  return s;
}

/** Check C v = lambda v for every component (both the covariance and the Gram path must pass). */
function assertEigenpairs(x: Float32Array, n: number, dim: number, k: number, tol: number): void {
  const r = pca(x, n, dim, k);
  const C = covariance(x, n, dim);
  for (let c = 0; c < k; c++) {
    for (let a = 0; a < dim; a++) {
      let s = 0;
      for (let b = 0; b < dim; b++) s += C[a * dim + b] * r.components[c * dim + b];
      const want = r.variance[c] * r.components[c * dim + a];
      assert.ok(
        Math.abs(s - want) < tol * r.variance[0],
        `component ${c}, entry ${a}: (C v) ${s} vs lambda v ${want}`,
      );
    }
  }
  // Orthonormal rows.
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      const d = dotRows(r.components, a, r.components, b, dim);
      assert.ok(Math.abs(d - (a === b ? 1 : 0)) < 1e-5, `components ${a}.${b} = ${d}`);
    }
  }
  // Descending variance, and the top-k variances are the covariance's largest eigenvalues: their sum
  // cannot be beaten by the trace of any other k-dimensional projection, in particular the axes.
  for (let c = 1; c < k; c++) assert.ok(r.variance[c] <= r.variance[c - 1] * (1 + 1e-9));
  const diag = Array.from({ length: dim }, (_, a) => C[a * dim + a]).sort((p, q) => q - p);
  const topDiag = diag.slice(0, k).reduce((p, q) => p + q, 0);
  assert.ok(r.variance.reduce((p, q) => p + q, 0) >= topDiag * (1 - 1e-6), "top-k variance below the axes'");
}

Deno.test("pca: points on a line give one component along it, explaining all the variance", () => {
  const dir = [1, -2, 0.5, 3, -1];
  const norm = Math.hypot(...dir);
  const n = 40, dim = 5;
  const x = new Float32Array(n * dim);
  const t = Array.from({ length: n }, (_, i) => (i - 17) * 0.3);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) x[i * dim + j] = 7 + t[i] * dir[j];
  const r = pca(x, n, dim, 2);
  // The largest |loading| (3 / norm) is positive: the sign rule.
  for (let j = 0; j < dim; j++) assert.ok(Math.abs(r.components[j] - dir[j] / norm) < 1e-5, `loading ${j}`);
  assert.ok(Math.abs(r.explained[0] - 1) < 1e-9, `explained ${r.explained[0]}`);
  assert.ok(r.variance[1] < 1e-9 * r.variance[0], `second variance ${r.variance[1]}`);
  // The projection is the position along the line, centred.
  const tMean = t.reduce((a, b) => a + b, 0) / n;
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(r.projected[i * 2] - (t[i] - tMean) * norm) < 1e-4, `projected ${i}`);
  }
  assert.ok(Math.abs(r.mean[3] - (7 + tMean * 3)) < 1e-4, "mean");
});

Deno.test("pca: a plane with known axes and variances is recovered exactly", () => {
  // Columns 1..3 of the 8x8 Hadamard matrix: zero-mean and mutually orthogonal, so the sample
  // covariance in the (a, b, c) axes is exactly diagonal with variances 25, 9, 1 times 8/7.
  const h = (i: number, j: number) => (popcount(i & j) % 2 === 0 ? 1 : -1);
  const axes = [
    [1, 1, 0, 0, 0, 0].map((v) => v / Math.SQRT2),
    [0, 0, 1, 0, 1, 0].map((v) => v / Math.SQRT2),
    [1, -1, 0, 0, 0, 1].map((v) => v / Math.sqrt(3)),
  ];
  const scales = [5, 3, 1];
  const n = 8, dim = 6;
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < 3; a++) {
      for (let j = 0; j < dim; j++) x[i * dim + j] += scales[a] * h(i, a + 1) * axes[a][j];
    }
  }
  const r = pca(x, n, dim, 3);
  for (let a = 0; a < 3; a++) {
    assert.ok(Math.abs(r.variance[a] - (scales[a] ** 2 * 8) / 7) < 1e-4, `variance ${a}: ${r.variance[a]}`);
    const cos = axes[a].reduce((s, v, j) => s + v * r.components[a * dim + j], 0);
    assert.ok(Math.abs(Math.abs(cos) - 1) < 1e-5, `component ${a} is not axis ${a}: cos ${cos}`);
  }
  const total = (25 + 9 + 1) * 8 / 7;
  assert.ok(Math.abs(r.explained[0] - (25 * 8 / 7) / total) < 1e-6);
});

function popcount(v: number): number {
  let c = 0;
  for (; v; v >>= 1) c += v & 1;
  return c;
}

Deno.test("pca: eigenpairs of the covariance, orthonormal, on both paths (n >= dim and n < dim)", () => {
  // Covariance path: more rows than features, distinct scales.
  const scales = Array.from({ length: 30 }, (_, j) => 1 + 0.2 * ((j * 7) % 30));
  assertEigenpairs(randomMatrix(300, 30, 1, scales), 300, 30, 6, 1e-5);
  // Gram path: fewer rows than features.
  assertEigenpairs(
    randomMatrix(12, 50, 2, Array.from({ length: 50 }, (_, j) => 1 + (j % 5))),
    12,
    50,
    5,
    1e-5,
  );
  // Isotropic noise (a flat spectrum, the slow case for subspace iteration) still converges.
  assertEigenpairs(randomMatrix(200, 40, 3), 200, 40, 3, 1e-4);
});

Deno.test("pca: deterministic, signs fixed by the largest loading, projection matches pcaProject", () => {
  const x = randomMatrix(100, 12, 4, Array.from({ length: 12 }, (_, j) => 12 - j));
  const a = pca(x, 100, 12, 4), b = pca(x, 100, 12, 4);
  assert.deepEqual(a.components, b.components);
  assert.deepEqual(a.projected, b.projected);
  for (let c = 0; c < 4; c++) {
    const row = Array.from(a.components.subarray(c * 12, (c + 1) * 12));
    const big = row.reduce((best, v) => (Math.abs(v) > Math.abs(best) ? v : best), 0);
    assert.ok(big > 0, `component ${c}: largest loading ${big} should be positive`);
  }
  const again = pcaProject(a, x);
  for (let i = 0; i < again.length; i++) assert.ok(Math.abs(again[i] - a.projected[i]) < 1e-4);
  const sum = a.explained.reduce((p, q) => p + q, 0);
  assert.ok(sum > 0 && sum <= 1 + 1e-9, `explained sums to ${sum}`);
});

Deno.test("pca: errors name what was expected and what came", () => {
  assert.throws(
    () => pca(new Float32Array(6), 2, 3, 3),
    /k must be an integer from 1 to min\(n, dim\) = 2.*got 3/,
  );
  assert.throws(() => pca(new Float32Array(5), 2, 3, 1), /expected 2 x 3 = 6 values, got 5/);
  assert.throws(() => pca(new Float32Array(6), 2, 3, 1, { iters: 3 } as never), /unknown option "iters"/);
  assert.throws(() => pca(new Float32Array([0, NaN]), 2, 1, 1), /not finite/);
});

Deno.test("patchColours: equal features get equal colours, the range is 0..255, a basis colours images alike", () => {
  // Three clusters of patches in 8-D.
  const centres = [randomMatrix(1, 8, 10), randomMatrix(1, 8, 11), randomMatrix(1, 8, 12)];
  const cluster = [0, 1, 2, 0, 1, 2, 2, 0];
  const f = new Float32Array(cluster.length * 8);
  cluster.forEach((c, i) => f.set(centres[c], i * 8));
  const rgb = patchColours(f, 8);
  assert.equal(rgb.length, cluster.length * 3);
  const colour = (i: number) => Array.from(rgb.slice(i * 3, i * 3 + 3)).join();
  assert.equal(colour(0), colour(3));
  assert.equal(colour(2), colour(6));
  assert.notEqual(colour(0), colour(1));
  assert.notEqual(colour(1), colour(2));
  // Min-max: the first component reaches both ends.
  const red = cluster.map((_, i) => rgb[i * 3]);
  assert.equal(Math.min(...red), 0);
  assert.equal(Math.max(...red), 255);
  // A shared basis: the same features in two "images" get the same colours.
  const basis = pca(f, cluster.length, 8, 3);
  const one = patchColours(f.slice(0, 3 * 8), 8, { basis });
  const two = patchColours(f.slice(3 * 8, 6 * 8), 8, { basis });
  assert.deepEqual(one, two);
  assert.throws(() => patchColours(new Float32Array(7), 8), /expected patch features \[N, 8\]/);
});

Deno.test("patchColourImage: one pixel per patch, or blended over the image at its resolution", () => {
  const colours = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]); // 2x2 grid
  const small = patchColourImage(colours, 2, 2);
  assert.deepEqual([small.height, small.width, small.channels], [2, 2, 3]);
  assert.deepEqual(Array.from(small.data), Array.from(colours));
  const grey = { data: new Uint8Array(16).fill(50), height: 4, width: 4, channels: 1 };
  const over = patchColourImage(colours, 2, 2, { over: grey, alpha: 1 });
  // Pixel (3, 0) lies in patch 2 (bottom-left): pure blue with alpha 1.
  assert.deepEqual(Array.from(over.data.slice((3 * 4 + 0) * 3, (3 * 4 + 0) * 3 + 3)), [0, 0, 255]);
  const half = patchColourImage(colours, 2, 2, { over: grey, alpha: 0 });
  assert.ok(half.data.every((v) => v === 50), "alpha 0 leaves the image");
  assert.throws(
    () => patchColourImage(colours, 3, 2),
    /expected 3 x 2 patches x 3 = 18 colour values, got 12/,
  );
});

Deno.test("nearestPatches: matches a brute-force ranking, skips excluded images, ties go to the lower row", () => {
  const n = 300, dim = 16, K = 7, k = 5;
  const bank: PatchBank = {
    features: randomMatrix(n, dim, 20),
    dim,
    n,
    image: Int32Array.from({ length: n }, (_, i) => Math.floor(i / 10)),
    patch: Int32Array.from({ length: n }, (_, i) => i % 10),
  };
  const q = randomMatrix(K, dim, 21);
  const r = nearestPatches(q, bank, k, { excludeImages: [3, 7] });
  for (let a = 0; a < K; a++) {
    const qa = q.subarray(a * dim, (a + 1) * dim);
    const cos = Array.from({ length: n }, (_, i) => {
      const b = bank.features.subarray(i * dim, (i + 1) * dim);
      const d = qa.reduce((s, v, j) => s + v * b[j], 0);
      return { i, s: d / Math.hypot(...qa) / Math.hypot(...b) };
    }).filter((e) => bank.image[e.i] !== 3 && bank.image[e.i] !== 7).sort((x, y) => y.s - x.s);
    assert.deepEqual(Array.from(r.index.subarray(a * k, (a + 1) * k)), cos.slice(0, k).map((e) => e.i));
    for (let j = 0; j < k; j++) assert.ok(Math.abs(r.similarity[a * k + j] - cos[j].s) < 1e-5);
  }
  // Duplicates: the lower row wins, and the query's own row is found first with similarity 1.
  const dup: PatchBank = {
    ...bank,
    features: Float32Array.from([...bank.features.subarray(0, 16), ...bank.features]),
    n: n + 1,
    image: Int32Array.from([99, ...bank.image]),
    patch: Int32Array.from([0, ...bank.patch]),
  };
  const d = nearestPatches(bank.features.subarray(0, 16), dup, 2);
  assert.deepEqual(Array.from(d.index), [0, 1]);
  assert.ok(Math.abs(d.similarity[0] - 1) < 1e-6);
  // Centring: a large shared component makes every raw cosine ~1; centred, the ranking is the
  // ranking of the residuals, the same as on a bank without that component.
  const shared = Float32Array.from({ length: dim }, (_, j) => 50 + j);
  const shifted: PatchBank = { ...bank, features: bank.features.map((v, i) => v + shared[i % dim]) };
  const qs = q.map((v, i) => v + shared[i % dim]);
  const zeroMean = new Float32Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) zeroMean[j] += bank.features[i * dim + j] / n;
  const plain = nearestPatches(q.map((v, i) => v - zeroMean[i % dim]), {
    ...bank,
    features: bank.features.map((v, i) => v - zeroMean[i % dim]),
  }, k);
  const centred = nearestPatches(qs, shifted, k, { centre: true });
  assert.deepEqual(Array.from(centred.index), Array.from(plain.index));
  for (let i = 0; i < K * k; i++) assert.ok(Math.abs(centred.similarity[i] - plain.similarity[i]) < 1e-4);
  const raw = nearestPatches(qs, shifted, k);
  assert.ok(raw.similarity.every((v) => v > 0.99), "the shared component should make raw cosines ~1");
  const given = nearestPatches(qs, shifted, k, { centre: shared.map((v, j) => v + zeroMean[j]) });
  assert.deepEqual(Array.from(given.index), Array.from(plain.index));
  assert.throws(
    () => nearestPatches(q, bank, 1, { centre: new Float32Array(3) }),
    /expected a centre of 16 values, got 3/,
  );
  assert.throws(() => nearestPatches(new Float32Array(15), bank), /expected queries \[K, 16\]/);
  assert.throws(
    () =>
      nearestPatches(
        q,
        {
          ...bank,
          n: 20,
          features: bank.features.subarray(0, 320),
          image: bank.image.subarray(0, 20),
          patch: bank.patch.subarray(0, 20),
        },
        5,
        { excludeImages: [0, 1] },
      ),
    /asked for 5 neighbours, the bank has 0 patches/,
  );
});

function tinyData(n: number, size = 16, channels = 1, seed = 0): ImageDataset {
  const rng = new Rng(seed);
  return {
    images: Uint8Array.from({ length: n * size * size * channels }, () => rng.int(0, 256)),
    labels: Int32Array.from({ length: n }, (_, i) => i % 2),
    n,
    height: size,
    width: size,
    channels,
    classNames: ["a", "b"],
    source: "test",
  };
}

Deno.test("patchBank: the target encoder's layer-normalised tokens, as I-JEPA's targets, with their origin", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const model = new IJEPA("tiny", { seed: 1 });
  const ds = tinyData(5);
  const mean = [0.5], std = [0.3];
  const before = tf.memory().numTensors;
  const bank = await patchBank(model.targetEncoder, ds, { mean, std, indices: [4, 1, 3], batchSize: 2 });
  assert.equal(tf.memory().numTensors, before, "patchBank leaked tensors");
  const N = 16, D = 32;
  assert.equal(bank.n, 3 * N);
  assert.deepEqual(Array.from(bank.image.subarray(N - 1, N + 1)), [4, 1]);
  assert.equal(bank.patch[N + 5], 5);
  // Every row is layer-normalised: mean 0, variance 1 (up to eps).
  for (let i = 0; i < bank.n; i++) {
    const row = bank.features.subarray(i * D, (i + 1) * D);
    const m = row.reduce((a, b) => a + b, 0) / D;
    const v = row.reduce((a, b) => a + (b - m) ** 2, 0) / D;
    assert.ok(Math.abs(m) < 1e-4 && Math.abs(v - 1) < 1e-3, `row ${i}: mean ${m}, var ${v}`);
  }
  // The bank rows are exactly the model's regression targets for the same patches.
  const masks = createMasker({ rows: 4, cols: 4, nTargets: 2, minKeep: 2 }).sample(new Rng(3), 1);
  const img = tf.tensor4d(modelInput(ds, 3, 1, 16, mean, std), [1, 16, 16, 1]);
  const targets = model.targets(img, masks); // [M, Lt, D]
  const t = targets.dataSync();
  tf.dispose([img, targets]);
  for (let r = 0; r < masks.nTargets * masks.targetLen; r++) {
    const p = masks.targetIdx[r];
    const row = 2 * N + p; // image 3 is the third in the bank
    for (let j = 0; j < D; j++) assert.ok(Math.abs(t[r * D + j] - bank.features[row * D + j]) < 1e-4);
    // ... so the true target, searched for, is found first with cosine 1.
    const hit = nearestPatches(t.slice(r * D, (r + 1) * D) as Float32Array, bank, 1);
    assert.equal(hit.index[0], row);
  }
  const raw = await patchBank(model.targetEncoder, ds, { mean, std, indices: [0], normalize: "none" });
  const direct = model.targetEncoder.forward(
    tf.tensor4d(modelInput(ds, 0, 1, 16, mean, std), [1, 16, 16, 1]),
  );
  const dv = direct.dataSync();
  direct.dispose();
  for (let i = 0; i < dv.length; i++) assert.ok(Math.abs(dv[i] - raw.features[i]) < 1e-5);
  await assert.rejects(
    () => patchBank(model.targetEncoder, tinyData(1, 16, 3), { mean, std }),
    /expects 1-channel images.*adaptImages/,
  );
  model.dispose();
});

Deno.test("cutPatch, pastePatches, imageAt: patches come out and go back in place", () => {
  const ds = tinyData(3, 8, 3, 5);
  const img = imageAt(ds, 2);
  assert.equal(img.data.length, 8 * 8 * 3);
  // Rebuild image 2 from its four 4x4 patches, pasted onto a blank image.
  const blank = { data: new Uint8Array(8 * 8 * 3), height: 8, width: 8, channels: 3 };
  const rebuilt = pastePatches(
    blank,
    4,
    [0, 1, 2, 3].map((p) => ({ patch: p, pixels: cutPatch(ds, 2, p, 4) })),
  );
  assert.deepEqual(rebuilt.data, img.data);
  assert.ok(blank.data.every((v) => v === 0), "pastePatches must not modify its input");
  // Patch 1 is the top-right 4x4: its first pixel is the image's pixel (0, 4).
  assert.deepEqual(Array.from(cutPatch(ds, 2, 1, 4).data.slice(0, 3)), Array.from(img.data.slice(12, 15)));
  const grey = pastePatches(img, 4, [{ patch: 3 }]);
  assert.equal(grey.data[(7 * 8 + 7) * 3], 128);
  assert.deepEqual(grey.data.slice(0, 12), img.data.slice(0, 12));
  // highlightPatch: a frame just outside patch 0 (row 4 and column 4 up to 4), the patch untouched.
  const hl = highlightPatch(img, 4, 0, [1, 2, 3]);
  assert.deepEqual(Array.from(hl.data.slice((4 * 8 + 4) * 3, (4 * 8 + 4) * 3 + 3)), [1, 2, 3]);
  assert.deepEqual(Array.from(hl.data.slice((0 * 8 + 4) * 3, (0 * 8 + 4) * 3 + 3)), [1, 2, 3]);
  assert.deepEqual(
    Array.from(hl.data.slice((3 * 8 + 3) * 3, (3 * 8 + 3) * 3 + 3)),
    Array.from(img.data.slice((3 * 8 + 3) * 3, (3 * 8 + 3) * 3 + 3)),
  );
  assert.deepEqual(
    Array.from(hl.data.slice((6 * 8 + 6) * 3, (6 * 8 + 6) * 3 + 3)),
    Array.from(img.data.slice((6 * 8 + 6) * 3, (6 * 8 + 6) * 3 + 3)),
  );
  // A 2-pixel frame around the centre patch of a 12x12 image (3x3 grid of 4x4 patches): rows 2..9.
  const big = { data: new Uint8Array(144), height: 12, width: 12, channels: 1 };
  const framed = highlightPatch(big, 4, 4, [9, 9, 9], 2);
  const red: number[] = Array.from({ length: 144 }, (_, p) => (framed.data[p * 3] === 9 ? 1 : 0));
  assert.equal(red.reduce((a, b) => a + b, 0), 8 * 8 - 4 * 4);
  assert.equal(red[2 * 12 + 2], 1);
  assert.equal(red[5 * 12 + 5], 0);
  assert.equal(red[1 * 12 + 2], 0);
  assert.throws(() => cutPatch(ds, 0, 4, 4), /patch index 4 is outside the 2x2 grid/);
  assert.throws(() => cutPatch(ds, 0, 0, 3), /patch size 3 does not divide the 8x8 images/);
  assert.throws(() => imageAt(ds, 3), /image index 3 is out of range 0..2/);
});

Deno.test("adaptImages: resizes as the feature extractor does and repeats grey into RGB", () => {
  const ds = tinyData(2, 28, 1, 6);
  const rgb = adaptImages(ds, { size: 16, channels: 3 });
  assert.deepEqual([rgb.n, rgb.height, rgb.width, rgb.channels], [2, 16, 16, 3]);
  const ref = modelInput(ds, 0, 2, 16, [0], [1]); // resized, in 0..1
  for (let p = 0; p < 2 * 16 * 16; p++) {
    const v = Math.round(ref[p] * 255);
    assert.ok(Math.abs(rgb.images[p * 3] - v) <= 1, `pixel ${p}`);
    assert.equal(rgb.images[p * 3 + 1], rgb.images[p * 3]);
    assert.equal(rgb.images[p * 3 + 2], rgb.images[p * 3]);
  }
  assert.equal(rgb.labels, ds.labels);
  const back = adaptImages(rgb, { size: 16, channels: 1 });
  assert.deepEqual(back.images, Uint8Array.from({ length: 512 }, (_, p) => rgb.images[p * 3]));
  assert.throws(() => adaptImages(ds, { size: 16, channels: 2 }), /can convert 1 <-> 3 channels, got 1 -> 2/);
});

Deno.test("predictBlocks: the model's predictions and targets for one image; pixel targets draw back as the patches", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const ds = tinyData(3, 16, 1, 8);
  const mean = [0.4], std = [0.3];
  const masks = createMasker({ rows: 4, cols: 4, nTargets: 2, minKeep: 2 }).sample(new Rng(5), 1);
  const model = new IJEPA("tiny", { seed: 2 });
  const before = tf.memory().numTensors;
  const p = await predictBlocks(model, ds, 1, masks, { mean, std });
  assert.equal(tf.memory().numTensors, before, "predictBlocks leaked tensors");
  assert.deepEqual([p.blocks, p.length, p.dim], [2, masks.targetLen, 32]);
  assert.deepEqual(Array.from(p.patches), Array.from(masks.targetIdx));
  const x = tf.tensor4d(modelInput(ds, 1, 1, 16, mean, std), [1, 16, 16, 1]);
  const direct = model.predict(x, masks);
  const dv = direct.dataSync();
  tf.dispose([x, direct]);
  for (let i = 0; i < dv.length; i++) assert.ok(Math.abs(dv[i] - p.predicted[i]) < 1e-5, `prediction ${i}`);
  model.dispose();
  // Pixel mode: the targets are normalised patches in cutPatch's layout, so they draw back exactly.
  const pixel = new IJEPA("tiny", { seed: 2, overrides: { targetMode: "pixel" } });
  const q = await predictBlocks(pixel, ds, 1, masks, { mean, std });
  assert.equal(q.dim, 16);
  for (let r = 0; r < q.blocks * q.length; r++) {
    const truth = cutPatch(ds, 1, q.patches[r], 4);
    const back = denormalizePixels(q.targets.slice(r * 16, (r + 1) * 16), truth);
    for (let i = 0; i < 16; i++) {
      assert.ok(Math.abs(back.data[i] - truth.data[i]) <= 1, `row ${r} pixel ${i}`);
    }
  }
  // ... and they are the rows of a pixel patch bank of the same image.
  const pb = pixelPatchBank(ds, [1], 4);
  for (let r = 0; r < q.blocks * q.length; r++) {
    for (let j = 0; j < 16; j++) {
      assert.ok(Math.abs(q.targets[r * 16 + j] - pb.features[q.patches[r] * 16 + j]) < 1e-3, `bank row ${r}`);
    }
  }
  pixel.dispose();
  const partial = new IJEPA("tiny", { parts: ["target_encoder"] });
  await assert.rejects(
    () => predictBlocks(partial, ds, 0, masks, { mean, std }),
    /built without its (encoder|predictor)/,
  );
  partial.dispose();
  const two = createMasker({ rows: 4, cols: 4, nTargets: 2, minKeep: 2 }).sample(new Rng(5), 2);
  await assert.rejects(
    () => predictBlocks(pixel, ds, 0, two, { mean, std }),
    /expected masks for a batch of 1 image, got 2/,
  );
  assert.throws(
    () => denormalizePixels(new Float32Array(3), cutPatch(ds, 0, 0, 4)),
    /expected 4x4x1 = 16 predicted values, got 3/,
  );
});
