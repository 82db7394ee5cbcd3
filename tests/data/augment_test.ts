// Tests of lib/data/augment.ts: RandomResizedCrop, resizeCrop and normalize.

import assert from "node:assert/strict";
import { Rng } from "../../lib/engine/rng.ts";
import { normalize, randomResizedCrop, resizeCrop, sampleCropBox } from "../../lib/data/augment.ts";
import { channelStats } from "../../lib/data/stats.ts";
import { tinyDataset } from "./_helpers.ts";

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
