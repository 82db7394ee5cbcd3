// Tests of lib/data/load.ts: the shipped Fashion-MNIST subset, the resolution order, loadDataset's
// layout detection and conversion to the model's shape, and splitHoldout.

import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { FASHION_MNIST_CLASSES } from "../../lib/data/dataset.ts";
import { encodeIdx } from "../../lib/data/idx.ts";
import {
  loadDataset,
  loadFashionMnist,
  shippedFashionMnistDir,
  splitHoldout,
  SYSTEM_FASHION_MNIST_DIR,
} from "../../lib/data/load.ts";
import { channelStats, subset } from "../../lib/data/stats.ts";
import { subsetIndices } from "../../lib/data/subset_draw.ts";
import { rejectsWith, systemSetInstalled, tempDir, tinyDataset } from "./_helpers.ts";

// ---------------------------------------------------------------------------------------------
// Fashion-MNIST: the shipped subset and the resolution order

Deno.test("shipped subset: 10000 / 2000, balanced, MIT notice, stats near Fashion-MNIST's", async () => {
  const dir = shippedFashionMnistDir();
  const t0 = performance.now();
  const fm = await loadFashionMnist({ dir });
  const ms = performance.now() - t0;
  assert.equal(fm.full, false);
  assert.match(fm.source, /^Fashion-MNIST, shipped subset \(10000 train \/ 2000 test\) from /);
  for (const [ds, n, per] of [[fm.train, 10000, 1000], [fm.test, 2000, 200]] as const) {
    assert.deepEqual([ds.n, ds.height, ds.width, ds.channels], [n, 28, 28, 1]);
    assert.equal(ds.images.length, n * 784);
    const counts = new Array(10).fill(0);
    for (const y of ds.labels) counts[y]++;
    assert.deepEqual(counts, new Array(10).fill(per));
    assert.deepEqual(ds.classNames, FASHION_MNIST_CLASSES);
  }
  const { mean, std } = channelStats(fm.train);
  // Full-set values are 0.2860 / 0.3530; a random 1/6 of it lands close.
  assert.ok(
    Math.abs(mean[0] - 0.286) < 0.005 && Math.abs(std[0] - 0.353) < 0.005,
    `${mean} ${std}`,
  );
  const licence = await Deno.readTextFile(join(dir, "LICENSE"));
  assert.match(licence, /Copyright \(c\) 2017 Zalando SE/);
  assert.match(licence, /Permission is hereby granted, free of charge/);
  let bytes = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(".gz")) bytes += (await Deno.stat(join(dir, e.name))).size;
  }
  console.log(
    `  shipped subset: ${(bytes / 1e6).toFixed(2)} MB of .gz on disk, loaded in ${ms.toFixed(0)} ms`,
  );
  assert.ok(bytes < 6e6, `subset should stay small, is ${bytes} bytes`);
});

Deno.test("shipped subset equals a fresh draw from the full set (make_subset is reproducible)", async (t) => {
  if (!systemSetInstalled()) {
    await t.step({ name: "full set not installed: skipped", ignore: true, fn: () => {} });
    return;
  }
  const t0 = performance.now();
  const full = await loadFashionMnist({ dir: SYSTEM_FASHION_MNIST_DIR });
  const ms = performance.now() - t0;
  console.log(`  full set: ${full.source}, loaded in ${ms.toFixed(0)} ms`);
  assert.equal(full.full, true);
  assert.equal(
    full.source,
    `Fashion-MNIST, full set (60000 train / 10000 test) from ${SYSTEM_FASHION_MNIST_DIR}`,
  );
  const shipped = await loadFashionMnist({ dir: shippedFashionMnistDir() });
  const picked = subsetIndices(full.train, full.test, 0);
  for (const split of ["train", "test"] as const) {
    const want = subset(full[split], picked[split]);
    assert.ok(
      want.images.every((v, i) => v === shipped[split].images[i]),
      `${split} images differ`,
    );
    assert.deepEqual(Array.from(want.labels), Array.from(shipped[split].labels));
  }
  const { mean, std } = channelStats(full.train);
  assert.ok(
    Math.abs(mean[0] - 0.2860) < 5e-4 && Math.abs(std[0] - 0.3530) < 5e-4,
    `${mean} ${std}`,
  );
});

Deno.test("resolution order: explicit dir, then IJEPA_DATA, then the system set, then shipped", async () => {
  const shipped = shippedFashionMnistDir();
  const prev = Deno.env.get("IJEPA_DATA");
  try {
    Deno.env.set("IJEPA_DATA", shipped);
    const viaEnv = await loadFashionMnist();
    assert.match(viaEnv.source, /shipped subset .*\(IJEPA_DATA\)$/);
    const viaSpec = await loadDataset(undefined);
    assert.equal(viaSpec.train.n, 10000);
    Deno.env.set("IJEPA_DATA", "/nonexistent/ijepa");
    // The explicit directory wins over IJEPA_DATA.
    const explicit = await loadFashionMnist({ dir: shipped });
    assert.equal(explicit.full, false);
    await rejectsWith(loadFashionMnist(), "/nonexistent/ijepa: directory not found (IJEPA_DATA)");
    await rejectsWith(loadDataset(undefined), "/nonexistent/ijepa: not found: expected a dataset directory");
    await rejectsWith(loadDataset(undefined), "(IJEPA_DATA)");
    Deno.env.delete("IJEPA_DATA");
    const dflt = await loadFashionMnist();
    if (systemSetInstalled()) {
      assert.equal(dflt.full, true);
      assert.ok(dflt.source.includes(SYSTEM_FASHION_MNIST_DIR));
    } else {
      assert.equal(dflt.full, false);
    }
    const forced = await loadDataset("fashion-mnist-subset");
    assert.equal(forced.full, false);
  } finally {
    if (prev === undefined) Deno.env.delete("IJEPA_DATA");
    else Deno.env.set("IJEPA_DATA", prev);
  }
});

Deno.test("loadDataset detects IDX, CIFAR and image folders; rejects a file and an empty dir", async () => {
  const dir = await tempDir();
  // IDX with no test files: a stratified hold-out split.
  const idxDir = join(dir, "digits");
  await Deno.mkdir(idxDir);
  const n = 30;
  await Deno.writeFile(
    join(idxDir, "train-images-idx3-ubyte"),
    encodeIdx(new Uint8Array(n * 4), [n, 2, 2]),
  );
  await Deno.writeFile(
    join(idxDir, "train-labels-idx1-ubyte.gz"),
    gzipSync(encodeIdx(Uint8Array.from({ length: n }, (_, i) => i % 3), [n])),
  );
  const idx = await loadDataset(idxDir, { testFraction: 0.2 });
  assert.equal(idx.train.n + idx.test.n, 30);
  assert.equal(idx.test.n, 6); // 2 of each of the 3 classes
  assert.match(idx.source, /^IDX 2x2x1 \(24 train \/ 6 test, test held out with seed 0\)/);
  // CIFAR-10 layout.
  const cifarDir = join(dir, "cifar-10-batches-bin");
  await Deno.mkdir(cifarDir);
  const rec = (label: number, k: number) => {
    const r = new Uint8Array(3073);
    r[0] = label;
    r.fill(k, 1);
    return r;
  };
  const batch = (labels: number[]) => {
    const b = new Uint8Array(labels.length * 3073);
    labels.forEach((y, i) => b.set(rec(y, i), i * 3073));
    return b;
  };
  await Deno.writeFile(join(cifarDir, "data_batch_1.bin"), batch([0, 1, 2]));
  await Deno.writeFile(join(cifarDir, "data_batch_2.bin"), batch([3, 4]));
  await Deno.writeFile(join(cifarDir, "test_batch.bin"), batch([9]));
  const cifar = await loadDataset(dir); // finds the extracted cifar-10-batches-bin/ inside
  assert.deepEqual(Array.from(cifar.train.labels), [0, 1, 2, 3, 4]);
  assert.equal(cifar.test.n, 1);
  assert.equal(cifar.train.classNames[9], "truck");
  assert.match(cifar.source, /^CIFAR-10 \(5 train \/ 1 test\)/);
  await rejectsWith(
    loadDataset(join(cifarDir, "test_batch.bin")),
    "expected a dataset directory",
    "got a file",
  );
  const empty = join(dir, "empty");
  await Deno.mkdir(empty);
  await rejectsWith(loadDataset(empty), empty, "found none of these");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("IDX and CIFAR at the model's shape: channels converted, size noted, others refused", async () => {
  const dir = await tempDir();
  const idxDir = join(dir, "digits");
  await Deno.mkdir(idxDir);
  const n = 10;
  const pixels = Uint8Array.from({ length: n * 4 }, (_, i) => i * 5);
  await Deno.writeFile(join(idxDir, "train-images-idx3-ubyte"), encodeIdx(pixels, [n, 2, 2]));
  await Deno.writeFile(
    join(idxDir, "train-labels-idx1-ubyte"),
    encodeIdx(Uint8Array.from({ length: n }, (_, i) => i % 2), [n]),
  );
  const plain = await loadDataset(idxDir, { imageSize: 2, channels: 1 });
  assert.match(plain.source, /^IDX 2x2x1 \(8 train \/ 2 test, test held out with seed 0\) from \S+$/);
  const rgb = await loadDataset(idxDir, { imageSize: 2, channels: 3 });
  assert.equal(rgb.train.channels, 3);
  assert.equal(rgb.test.channels, 3);
  assert.deepEqual(Array.from(rgb.train.images.subarray(0, 6)), [0, 0, 0, 5, 5, 5]);
  assert.ok(rgb.source.endsWith(`from ${idxDir}: 2x2 grey, converted to RGB (grey repeated)`), rgb.source);
  const big = await loadDataset(idxDir, { imageSize: 4, channels: 1 });
  assert.equal(big.train.height, 2); // stored size kept: batches are resized to the model's
  assert.ok(big.source.endsWith(": 2x2 grey, resized to the model's 4x4 batch by batch"), big.source);

  // CIFAR (RGB) for a grey model: luma
  const cifarDir = join(dir, "cifar-10-batches-bin");
  await Deno.mkdir(cifarDir);
  const rec = new Uint8Array(3073);
  [10, 20, 30].forEach((v, ch) => rec.fill(v, 1 + ch * 1024, 1 + (ch + 1) * 1024));
  await Deno.writeFile(join(cifarDir, "data_batch_1.bin"), rec);
  await Deno.writeFile(join(cifarDir, "test_batch.bin"), rec);
  const cifar = await loadDataset(cifarDir, { imageSize: 16, channels: 1 });
  assert.deepEqual([cifar.train.channels, cifar.train.height], [1, 32]);
  assert.equal(cifar.train.images[0], Math.round((10 * 299 + 20 * 587 + 30 * 114) / 1000));
  assert.ok(
    cifar.source.endsWith(
      ": 32x32 RGB, converted to grey (luma), resized to the model's 16x16 batch by batch",
    ),
    cifar.source,
  );

  // two channels convert to nothing: a clear error naming both
  const twoDir = join(dir, "two");
  await Deno.mkdir(twoDir);
  await Deno.writeFile(
    join(twoDir, "train-images-idx3-ubyte"),
    encodeIdx(new Uint8Array(n * 8), [n, 2, 2, 2]),
  );
  await Deno.copyFile(join(idxDir, "train-labels-idx1-ubyte"), join(twoDir, "train-labels-idx1-ubyte"));
  await rejectsWith(
    loadDataset(twoDir, { channels: 1 }),
    "the images have 2 channels and the model expects 1",
    "only grey (1) and RGB (3)",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("subset and splitHoldout copy the right images and keep classes stratified", () => {
  const ds = tinyDataset(30, 2, 2, 1);
  const s = subset(ds, [4, 1]);
  assert.deepEqual(
    Array.from(s.images),
    Array.from(ds.images.subarray(16, 20)).concat(Array.from(ds.images.subarray(4, 8))),
  );
  assert.throws(() => subset(ds, [30]), /index 30 at position 0 is out of range 0..29/);
  const { train, test } = splitHoldout(ds, 0.2, 1);
  assert.equal(test.n, 6);
  assert.deepEqual(Array.from(test.labels).sort(), [0, 0, 1, 1, 2, 2]);
  assert.equal(train.n, 24);
});
