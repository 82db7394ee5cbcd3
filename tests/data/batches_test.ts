// Tests of lib/data/batches.ts: resuming a BatchStream, unshuffled passes, and Fashion-MNIST batches.

import assert from "node:assert/strict";
import { Rng } from "../../lib/engine/rng.ts";
import { batches, BatchStream } from "../../lib/data/batches.ts";
import { loadFashionMnist, shippedFashionMnistDir } from "../../lib/data/load.ts";
import { channelStats } from "../../lib/data/stats.ts";
import { tinyDataset } from "./_helpers.ts";

Deno.test("BatchStream: a resumed stream yields exactly what the uninterrupted one does", () => {
  const ds = tinyDataset(23, 6, 6, 1);
  const opts = { batchSize: 5, augment: true, stats: { mean: [0.5], std: [0.25] } };
  const whole = new BatchStream(ds, { ...opts, rng: new Rng(42) });
  const want = Array.from({ length: 12 }, () => whole.next()); // 4 per epoch: 3 epochs
  for (const cut of [1, 4, 7]) {
    const a = new BatchStream(ds, { ...opts, rng: new Rng(42) });
    for (let i = 0; i < cut; i++) a.next();
    const saved = JSON.parse(JSON.stringify(a.state()));
    const b = BatchStream.fromState(ds, opts, saved);
    for (let i = cut; i < 12; i++) {
      const got = b.next();
      assert.deepEqual(
        Array.from(got.indices),
        Array.from(want[i].indices),
        `indices at ${i} (cut ${cut})`,
      );
      assert.deepEqual(
        Array.from(got.images),
        Array.from(want[i].images),
        `images at ${i} (cut ${cut})`,
      );
      assert.equal(got.epoch, want[i].epoch);
    }
  }
  // Epoch structure: dropLast gives 4 batches of 5 from 23, each epoch a permutation.
  assert.deepEqual(want.map((b) => b.epoch), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
  assert.deepEqual(want.map((b) => b.lastInEpoch), [
    false,
    false,
    false,
    true,
    false,
    false,
    false,
    true,
    false,
    false,
    false,
    true,
  ]);
  const seen = new Set(want.slice(0, 4).flatMap((b) => Array.from(b.indices)));
  assert.equal(seen.size, 20);
  assert.notDeepEqual(Array.from(want[0].indices), Array.from(want[4].indices));
  assert.throws(
    () => BatchStream.fromState(ds, { ...opts, batchSize: 4 }, whole.state()),
    /state was saved with batchSize 5, got 4/,
  );
});

Deno.test("batches: unshuffled full pass, labels follow indices, normalised values, size option", () => {
  const ds = tinyDataset(7, 4, 4, 2);
  const stats = channelStats(ds);
  const stream = batches(ds, { batchSize: 3, shuffle: false, dropLast: false, stats });
  assert.equal(stream.stepsPerEpoch, 3);
  const got = [];
  for (const b of stream) {
    got.push(b);
    if (b.lastInEpoch) break;
  }
  assert.deepEqual(got.map((b) => b.shape), [[3, 4, 4, 2], [3, 4, 4, 2], [1, 4, 4, 2]]);
  assert.deepEqual(got.flatMap((b) => Array.from(b.indices)), [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(got.flatMap((b) => Array.from(b.labels)), Array.from(ds.labels));
  const expect0 = (ds.images[0] / 255 - stats.mean[0]) / stats.std[0];
  assert.ok(Math.abs(got[0].images[0] - expect0) < 1e-5);
  const big = batches(ds, { batchSize: 2, size: 8, stats }).next();
  assert.deepEqual(big.shape, [2, 8, 8, 2]);
  assert.equal(big.images.length, 2 * 8 * 8 * 2);
  assert.throws(() => batches(ds, { batchSize: 8 }), /batchSize 8 exceeds the dataset size 7/);
});

Deno.test("Fashion-MNIST batches: augmented, normalised with the train stats, stable shape", async () => {
  const { train } = await loadFashionMnist({ dir: shippedFashionMnistDir() });
  const stats = channelStats(train);
  const stream = new BatchStream(train, { batchSize: 64, rng: new Rng(0), augment: true, stats });
  const t0 = performance.now();
  let s = 0, s2 = 0, k = 0;
  for (let i = 0; i < 20; i++) {
    const b = stream.next();
    assert.deepEqual(b.shape, [64, 28, 28, 1]);
    for (const v of b.images) {
      s += v;
      s2 += v * v;
      k++;
    }
  }
  const ms = (performance.now() - t0) / 20;
  const m = s / k, sd = Math.sqrt(s2 / k - m * m);
  console.log(
    `  augmented batch of 64 (28x28): ${ms.toFixed(1)} ms; mean ${m.toFixed(3)} std ${sd.toFixed(3)}`,
  );
  // Crops zoom into the garment, so the mean rises a little above 0; it stays near 0 / 1.
  assert.ok(Math.abs(m) < 0.25 && Math.abs(sd - 1) < 0.15, `mean ${m}, std ${sd}`);
});
