// Tests of lib/data/data.ts (loaders, stats, batches) and lib/data/augment.ts (RandomResizedCrop, normalize).
// Run: deno test -A tests/data_test.ts

import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PNG } from "pngjs";
import { encode as encodeJpeg } from "jpeg-js";
import { Rng } from "../../lib/engine/rng.ts";
import {
  batches,
  BatchStream,
  channelStats,
  DataError,
  encodeIdx,
  FASHION_MNIST_CLASSES,
  type ImageDataset,
  loadCifar,
  loadDataset,
  loadFashionMnist,
  loadIdx,
  loadImageFolder,
  shippedFashionMnistDir,
  splitHoldout,
  subset,
  SYSTEM_FASHION_MNIST_DIR,
} from "../../lib/data/data.ts";
import { normalize, randomResizedCrop, resizeCrop, sampleCropBox } from "../../lib/data/augment.ts";
import { subsetIndices } from "../../lib/cli/make_subset.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/data/", import.meta.url));

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "ijepa_data_test_" });
}

async function rejectsWith(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    for (const part of parts) {
      if (typeof part === "string") {
        assert.ok(e.message.includes(part), `message "${e.message}" lacks "${part}"`);
      } else assert.match(e.message, part);
    }
    return e.message;
  }
  throw new Error(`expected an error with ${parts.join(", ")}, got none`);
}

function systemSetInstalled(): boolean {
  try {
    return Deno.statSync(join(SYSTEM_FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")).isFile;
  } catch {
    return false;
  }
}

/** A tiny dataset with a pattern that makes every pixel distinct-ish. */
function tinyDataset(n: number, h: number, w: number, c: number): ImageDataset {
  const images = new Uint8Array(n * h * w * c).map((_, i) => (i * 37 + (i >> 5)) % 256);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  return {
    images,
    labels,
    n,
    height: h,
    width: w,
    channels: c,
    classNames: ["a", "b", "c"],
    source: "tiny",
  };
}

// ---------------------------------------------------------------------------------------------
// IDX

Deno.test("IDX round trip: gz and raw files give the same bytes and labels", async () => {
  const dir = await tempDir();
  const n = 5, h = 3, w = 4;
  const pixels = Uint8Array.from({ length: n * h * w }, (_, i) => (i * 7) % 256);
  const labels = new Uint8Array([0, 2, 1, 2, 0]);
  await Deno.writeFile(join(dir, "img.idx3"), encodeIdx(pixels, [n, h, w]));
  await Deno.writeFile(join(dir, "lab.idx1"), encodeIdx(labels, [n]));
  await Deno.writeFile(join(dir, "img.idx3.gz"), gzipSync(encodeIdx(pixels, [n, h, w])));
  await Deno.writeFile(join(dir, "lab.idx1.gz"), gzipSync(encodeIdx(labels, [n])));
  const raw = await loadIdx(join(dir, "img.idx3"), join(dir, "lab.idx1"));
  const gz = await loadIdx(join(dir, "img.idx3.gz"), join(dir, "lab.idx1.gz"), {
    classNames: ["x", "y", "z"],
  });
  for (const ds of [raw, gz]) {
    assert.deepEqual([ds.n, ds.height, ds.width, ds.channels], [5, 3, 4, 1]);
    assert.deepEqual(Array.from(ds.images), Array.from(pixels));
    assert.deepEqual(Array.from(ds.labels), [0, 2, 1, 2, 0]);
  }
  assert.deepEqual(raw.classNames, ["0", "1", "2"]);
  assert.deepEqual(gz.classNames, ["x", "y", "z"]);
  // 4-D IDX [N, H, W, C] keeps its channels.
  await Deno.writeFile(
    join(dir, "rgb.idx"),
    encodeIdx(new Uint8Array(5 * 2 * 2 * 3).fill(9), [5, 2, 2, 3]),
  );
  const rgb = await loadIdx(join(dir, "rgb.idx"), join(dir, "lab.idx1"));
  assert.equal(rgb.channels, 3);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("IDX errors: truncated gz, wrong magic, short data, count mismatch, label range", async () => {
  const dir = await tempDir();
  const lab = join(dir, "lab.idx1");
  await Deno.writeFile(lab, encodeIdx(new Uint8Array([0, 1, 2]), [3]));
  const img = join(dir, "img.idx3");
  await Deno.writeFile(img, encodeIdx(new Uint8Array(3 * 4), [3, 2, 2]));

  const trunc = join(FIXTURES, "truncated-t10k-images-idx3-ubyte.gz");
  await rejectsWith(loadIdx(trunc, lab), trunc, "corrupt gzip data", "truncated");

  const le = join(FIXTURES, "little-endian-labels-idx1-ubyte");
  await rejectsWith(loadIdx(img, le), le, "bad magic number 0x01080000");

  const short = join(dir, "short.idx3");
  await Deno.writeFile(short, encodeIdx(new Uint8Array(3 * 4), [3, 2, 2]).subarray(0, 20));
  await rejectsWith(loadIdx(short, lab), short, "expected 28 bytes", "got 20", "truncated");

  const fourLabels = join(dir, "four.idx1");
  await Deno.writeFile(fourLabels, encodeIdx(new Uint8Array([0, 1, 2, 3]), [4]));
  await rejectsWith(loadIdx(img, fourLabels), "label count 4 != image count 3");

  await rejectsWith(
    loadIdx(img, lab, { classNames: ["a", "b"] }),
    lab,
    "label 2 at index 2 is out of range: expected 0..1 (2 classes)",
  );

  const notGz = join(dir, "plain.idx3.gz");
  await Deno.writeFile(notGz, encodeIdx(new Uint8Array(12), [3, 2, 2]));
  await rejectsWith(loadIdx(notGz, lab), notGz, "expected gzip data (magic 1f 8b)");

  await rejectsWith(loadIdx(join(dir, "nope.idx3"), lab), "nope.idx3: file not found");
  await Deno.remove(dir, { recursive: true });
});

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
    await rejectsWith(loadFashionMnist(), "/nonexistent/ijepa: directory not found");
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

// ---------------------------------------------------------------------------------------------
// CIFAR

Deno.test("CIFAR: CHW to HWC, CIFAR-100 fine/coarse labels, meta names, bad length", async () => {
  const dir = await tempDir();
  // One CIFAR-100 record: coarse 3, fine 42; pixel (0,0) = (10, 20, 30), pixel (31,31) = (1, 2, 3).
  const r = new Uint8Array(3074);
  r[0] = 3;
  r[1] = 42;
  [10, 20, 30].forEach((v, ch) => (r[2 + ch * 1024] = v));
  [1, 2, 3].forEach((v, ch) => (r[2 + ch * 1024 + 1023] = v));
  await Deno.writeFile(join(dir, "train.bin"), r);
  await Deno.writeTextFile(
    join(dir, "coarse_label_names.txt"),
    Array.from({ length: 20 }, (_, i) => `coarse${i}`).join("\n") + "\n",
  );
  const fine = await loadCifar(dir);
  assert.equal(fine.labels[0], 42);
  assert.equal(fine.classNames.length, 100);
  assert.deepEqual(Array.from(fine.images.subarray(0, 3)), [10, 20, 30]); // [0, 0, :]
  assert.deepEqual(Array.from(fine.images.subarray(3069, 3072)), [1, 2, 3]); // [31, 31, :]
  const coarse = await loadCifar(dir, { labels: "coarse" });
  assert.equal(coarse.labels[0], 3);
  assert.equal(coarse.classNames[3], "coarse3");

  const short = join(FIXTURES, "short_batch.bin");
  await rejectsWith(
    loadCifar([short], { variant: 10 }),
    short,
    "bad CIFAR-10 file length 3070: expected a positive multiple of 3073 bytes",
  );
  const bad = join(dir, "data_batch_1.bin");
  const b = new Uint8Array(3073);
  b[0] = 10;
  await Deno.writeFile(bad, b);
  await rejectsWith(loadCifar([bad]), bad, "label 10 at index 0 is out of range: expected 0..9");
  await rejectsWith(loadCifar(dir, { split: "test" }), "no CIFAR test files");
  await Deno.remove(dir, { recursive: true });
});

// ---------------------------------------------------------------------------------------------
// Image folders

async function writePng(
  path: string,
  w: number,
  h: number,
  rgb: [number, number, number],
): Promise<void> {
  const png = new PNG({ width: w, height: h });
  for (let p = 0; p < w * h; p++) png.data.set([...rgb, 255], p * 4);
  await Deno.writeFile(path, PNG.sync.write(png));
}

async function writeJpeg(
  path: string,
  w: number,
  h: number,
  rgb: [number, number, number],
): Promise<void> {
  const data = new Uint8Array(w * h * 4);
  for (let p = 0; p < w * h; p++) data.set([...rgb, 255], p * 4);
  await Deno.writeFile(path, encodeJpeg({ width: w, height: h, data }, 95).data);
}

Deno.test("image folder: 2 classes of PNG + JPEG, grey and RGB, resized", async () => {
  const dir = await tempDir();
  await Deno.mkdir(join(dir, "red"));
  await Deno.mkdir(join(dir, "blue"));
  await writePng(join(dir, "red", "a.png"), 10, 6, [200, 0, 0]);
  await writeJpeg(join(dir, "red", "b.JPG"), 16, 16, [200, 0, 0]);
  await writePng(join(dir, "blue", "c.png"), 5, 5, [0, 0, 250]);
  await writeJpeg(join(dir, "blue", "d.jpeg"), 9, 12, [0, 0, 250]);
  await Deno.writeTextFile(join(dir, "blue", "notes.txt"), "skipped");
  const rgb = await loadImageFolder(dir, { size: 8 });
  assert.deepEqual(rgb.classNames, ["blue", "red"]);
  assert.deepEqual([rgb.n, rgb.height, rgb.width, rgb.channels], [4, 8, 8, 3]);
  assert.deepEqual(Array.from(rgb.labels), [0, 0, 1, 1]);
  // First pixel of image i.
  const px = (ds: ImageDataset, i: number) => {
    const o = i * ds.height * ds.width * ds.channels;
    return Array.from(ds.images.subarray(o, o + ds.channels));
  };
  assert.deepEqual(px(rgb, 0), [0, 0, 250]); // PNG exact
  const jpegRed = px(rgb, 3);
  assert.ok(
    Math.abs(jpegRed[0] - 200) <= 4 && jpegRed[1] <= 4 && jpegRed[2] <= 4,
    `jpeg red ${jpegRed}`,
  );
  const grey = await loadImageFolder(dir, { size: 4, channels: 1 });
  assert.equal(grey.images.length, 4 * 16);
  assert.equal(px(grey, 2)[0], Math.round((200 * 299) / 1000)); // luma of the red PNG
  await Deno.remove(dir, { recursive: true });
});

Deno.test("image folder errors: undecodable PNG, not an image, empty folder, empty class", async () => {
  const dir = await tempDir();
  await rejectsWith(loadImageFolder(dir, { size: 8 }), dir, "empty folder", "found none");
  await Deno.mkdir(join(dir, "cls"));
  await rejectsWith(
    loadImageFolder(dir, { size: 8 }),
    join(dir, "cls"),
    "empty folder",
    'class "cls"',
  );
  await Deno.copyFile(join(FIXTURES, "broken.png"), join(dir, "cls", "broken.png"));
  await rejectsWith(
    loadImageFolder(dir, { size: 8 }),
    join(dir, "cls", "broken.png"),
    "undecodable PNG image",
  );
  await Deno.remove(join(dir, "cls", "broken.png"));
  await Deno.writeTextFile(join(dir, "cls", "fake.jpg"), "hello");
  await rejectsWith(
    loadImageFolder(dir, { size: 8 }),
    "fake.jpg: undecodable image: expected PNG (89 50 4e 47) or JPEG (ff d8 ff) magic bytes, got 68 65 6c 6c",
  );
  await Deno.writeFile(
    join(dir, "cls", "fake.jpg"),
    new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]),
  );
  await rejectsWith(loadImageFolder(dir, { size: 8 }), "fake.jpg: undecodable JPEG image");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("image folder with train/ and test/ through loadDataset", async () => {
  const dir = await tempDir();
  for (const split of ["train", "test"]) {
    for (const cls of ["a", "b"]) {
      await Deno.mkdir(join(dir, split, cls), { recursive: true });
      await writePng(
        join(dir, split, cls, "x.png"),
        4,
        4,
        cls === "a" ? [0, 0, 0] : [255, 255, 255],
      );
    }
  }
  const d = await loadDataset(dir, { imageSize: 6, channels: 1 });
  assert.deepEqual([d.train.n, d.test.n, d.train.height, d.train.channels], [2, 2, 6, 1]);
  assert.equal(d.test.images[36], 255);
  assert.match(d.source, /^image folder \(2 train \/ 2 test\)/);
  await Deno.remove(dir, { recursive: true });
});

/** A PNG whose pixels come from `pixel(x, y)`; colour type 0 (grey) or 2 (RGB) in the file. */
async function writePatternPng(
  path: string,
  w: number,
  h: number,
  pixel: (x: number, y: number) => [number, number, number],
  colorType: 0 | 2,
): Promise<void> {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) png.data.set([...pixel(x, y), 255], (y * w + x) * 4);
  }
  await Deno.writeFile(path, PNG.sync.write(png, { colorType }));
}

Deno.test("image folder at the model's shape: grey <-> RGB, centre crop, resize, said in source", async () => {
  const dir = await tempDir();
  await Deno.mkdir(join(dir, "a"));
  await Deno.mkdir(join(dir, "b"));
  // a/left.png: a grey file 31 wide, 45 tall, bright on its left half
  await writePatternPng(
    join(dir, "a", "left.png"),
    31,
    45,
    (x) => x < 16 ? [200, 200, 200] : [20, 20, 20],
    0,
  );
  // b/colour.png: one colour; b/greyish.png: an RGB file whose pixels are all grey (counts as grey)
  await writePatternPng(join(dir, "b", "colour.png"), 20, 20, () => [200, 40, 10], 2);
  await writePatternPng(join(dir, "b", "greyish.png"), 20, 20, (x, y) => {
    const v = (x * 13 + y * 7) % 256;
    return [v, v, v];
  }, 2);
  const px = (ds: ImageDataset, i: number, y: number, x: number) => {
    const o = ((i * ds.height + y) * ds.width + x) * ds.channels;
    return Array.from(ds.images.subarray(o, o + ds.channels));
  };

  const grey = await loadImageFolder(dir, { size: 8, channels: 1 });
  assert.deepEqual([grey.n, grey.height, grey.width, grey.channels], [3, 8, 8, 1]);
  // centre crop 31x31 keeps the whole width: bright left, dark right
  assert.ok(Math.abs(px(grey, 0, 4, 0)[0] - 200) <= 1, `left ${px(grey, 0, 4, 0)}`);
  assert.ok(Math.abs(px(grey, 0, 4, 7)[0] - 20) <= 1, `right ${px(grey, 0, 4, 7)}`);
  assert.deepEqual(px(grey, 1, 3, 3), [Math.round((200 * 299 + 40 * 587 + 10 * 114) / 1000)]); // luma 84
  const said = "3 images (2 grey, 1 RGB) of 20x20 and 31x45 px as 8x8 grey: 1 converted from RGB (luma), " +
    "1 centre-cropped, 3 resized";
  assert.equal(grey.source, `image folder ${dir} (3 images, 2 classes): ${said}`);

  const rgb = await loadImageFolder(dir, { size: 20, channels: 3 });
  assert.deepEqual([rgb.height, rgb.channels], [20, 3]);
  for (let p = 0; p < 20 * 20; p++) {
    const [r, g, b] = rgb.images.subarray(p * 3, p * 3 + 3);
    assert.ok(r === g && g === b, `grey repeated to RGB at pixel ${p}: ${r},${g},${b}`);
  }
  assert.deepEqual(px(rgb, 1, 5, 5), [200, 40, 10]); // 20x20 at 20: exact
  assert.deepEqual(px(rgb, 2, 3, 2), [
    (2 * 13 + 3 * 7) % 256,
    (2 * 13 + 3 * 7) % 256,
    (2 * 13 + 3 * 7) % 256,
  ]);
  assert.match(rgb.source, /as 20x20 RGB: 2 converted from grey \(repeated\), 1 centre-cropped, 1 resized$/);

  // the defaults come from the data: RGB when any image has colour, the median shorter side (20)
  const auto = await loadImageFolder(dir);
  assert.deepEqual([auto.height, auto.channels], [20, 3]);
  // and the folder through loadDataset, as the tasks read it (hold-out split, the same phrase)
  const d = await loadDataset(dir, { imageSize: 8, channels: 1 });
  assert.equal(d.train.channels, 1);
  assert.equal(d.test.height, 8);
  assert.ok(d.source.endsWith(`from ${dir}: ${said}`), d.source);

  // all grey: the defaults give grey; images already at the size are left unchanged
  await Deno.remove(join(dir, "b", "colour.png"));
  const plain = await loadImageFolder(join(dir), { size: 20, channels: 1 });
  assert.match(
    plain.source,
    /: 2 grey images of 20x20 and 31x45 px as 20x20 grey: 1 centre-cropped, 1 resized$/,
  );
  assert.equal((await loadImageFolder(dir)).channels, 1);
  await Deno.remove(join(dir, "a"), { recursive: true });
  await Deno.mkdir(join(dir, "a"));
  await Deno.copyFile(join(dir, "b", "greyish.png"), join(dir, "a", "copy.png"));
  const same = await loadImageFolder(dir, { size: 20, channels: 1 });
  assert.match(same.source, /: 2 grey images of 20x20 px as 20x20 grey, unchanged$/);
  await assert.rejects(
    loadImageFolder(dir, { size: 0 }),
    /loadImageFolder: expected a positive integer size/,
  );
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

// ---------------------------------------------------------------------------------------------
// Augmentation

Deno.test("RandomResizedCrop: same seed same output, shape, and a different seed differs", () => {
  const ds = tinyDataset(1, 28, 28, 1);
  const a = randomResizedCrop(ds.images, 28, 28, 1, new Rng(3));
  const b = randomResizedCrop(ds.images, 28, 28, 1, new Rng(3));
  const c = randomResizedCrop(ds.images, 28, 28, 1, new Rng(4));
  assert.equal(a.length, 28 * 28);
  assert.deepEqual(Array.from(a), Array.from(b));
  assert.notDeepEqual(Array.from(a), Array.from(c));
  const rgb = tinyDataset(1, 20, 30, 3);
  const small = randomResizedCrop(rgb.images, 20, 30, 3, new Rng(0), { outHeight: 7, outWidth: 9 });
  assert.equal(small.length, 7 * 9 * 3);
  for (const v of small) assert.ok(v >= 0 && v <= 255, `value ${v} outside the input range`);
});

Deno.test("RandomResizedCrop: scale 1 and ratio 1 on a square image is the identity", () => {
  const ds = tinyDataset(1, 28, 28, 3);
  const out = randomResizedCrop(ds.images, 28, 28, 3, new Rng(9), { scale: [1, 1], ratio: [1, 1] });
  assert.deepEqual(Array.from(out), Array.from(ds.images));
  // And a non-square image falls back to its centre crop: all 10 tries miss, then ratio is clamped.
  const box = sampleCropBox(10, 40, new Rng(0), [1, 1], [1, 1]);
  assert.deepEqual(box, { top: 0, left: 15, height: 10, width: 10 });
});

Deno.test("RandomResizedCrop: area fraction and ratio stay in bounds over many draws", () => {
  const rng = new Rng(123);
  const H = 224, W = 224;
  let sum = 0;
  let minF = 1, maxF = 0;
  const draws = 5000;
  for (let i = 0; i < draws; i++) {
    const b = sampleCropBox(H, W, rng, [0.3, 1.0], [3 / 4, 4 / 3]);
    assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= H && b.left + b.width <= W);
    const f = (b.height * b.width) / (H * W);
    const r = b.width / b.height;
    // Rounding each side to an integer moves the area by at most about 1%.
    assert.ok(f >= 0.3 * 0.99 && f <= 1, `area fraction ${f}`);
    assert.ok(r >= 0.75 * 0.99 && r <= (4 / 3) * 1.01, `ratio ${r}`);
    sum += f;
    minF = Math.min(minF, f);
    maxF = Math.max(maxF, f);
  }
  const mean = sum / draws;
  // Uniform on [0.3, 1] gives 0.65; boxes wider than the image are redrawn, so a bit less.
  assert.ok(mean > 0.58 && mean < 0.66, `mean area fraction ${mean}`);
  assert.ok(minF < 0.32 && maxF > 0.95, `range [${minF}, ${maxF}] should span the scale range`);
  // On the 28x28 Fashion-MNIST grid the rounding slack is larger but bounded.
  for (let i = 0; i < 2000; i++) {
    const b = sampleCropBox(28, 28, rng);
    const f = (b.height * b.width) / 784;
    assert.ok(f >= 0.26 && f <= 1, `28x28 area fraction ${f}`);
  }
});

Deno.test("resizeCrop: antialiased shrink averages, enlarge interpolates, bad box is an error", () => {
  // A 6x6 checkerboard of 0/255 shrunk 3x: the widened filter averages it to mid-grey, where
  // plain bilinear sampling would hit single pixels and return 0 or 255 (aliasing).
  const board = Uint8Array.from({ length: 36 }, (_, i) => ((Math.floor(i / 6) + i) % 2) * 255);
  const small = resizeCrop(board, 6, 6, 1, { top: 0, left: 0, height: 6, width: 6 }, 2, 2);
  for (const v of small) assert.ok(v > 100 && v < 155, `shrink gave ${v}`);
  // A flat image stays flat at any size.
  const flat = resizeCrop(
    new Uint8Array(35).fill(77),
    5,
    7,
    1,
    { top: 1, left: 2, height: 3, width: 4 },
    9,
    2,
  );
  for (const v of flat) assert.ok(Math.abs(v - 77) < 1e-4, `flat gave ${v}`);
  // A 1x2 ramp [0, 100] enlarged to 1x4: [0, 25, 75, 100] (half-pixel centres, edges clamped).
  const up = resizeCrop(
    new Uint8Array([0, 100]),
    1,
    2,
    1,
    { top: 0, left: 0, height: 1, width: 2 },
    1,
    4,
  );
  assert.deepEqual(Array.from(up), [0, 25, 75, 100]);
  assert.throws(
    () => resizeCrop(board, 6, 6, 1, { top: 4, left: 0, height: 3, width: 4 }, 2, 2),
    /expected an integer box inside the 6x6 image/,
  );
});

Deno.test("normalize: training-set stats give ~0 mean and ~1 std per channel", () => {
  const ds = tinyDataset(50, 8, 8, 3);
  const { mean, std } = channelStats(ds);
  const x = normalize(ds.images, 3, mean, std);
  for (let c = 0; c < 3; c++) {
    let s = 0, s2 = 0, k = 0;
    for (let i = c; i < x.length; i += 3, k++) {
      s += x[i];
      s2 += x[i] * x[i];
    }
    const m = s / k;
    const sd = Math.sqrt(s2 / k - m * m);
    assert.ok(Math.abs(m) < 1e-5, `channel ${c} mean ${m}`);
    assert.ok(Math.abs(sd - 1) < 1e-5, `channel ${c} std ${sd}`);
  }
  assert.throws(() => normalize(ds.images, 3, [0, 0], [1, 1]), /expected 3 mean and std values/);
});

// ---------------------------------------------------------------------------------------------
// Batches

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
