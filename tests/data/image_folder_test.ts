// Tests of lib/data/image_folder.ts and lib/data/image_decode.ts: PNG and JPEG class folders, their
// errors, train/ and test/ through loadDataset, and conversion to the model's size and channels.

import assert from "node:assert/strict";
import { join } from "node:path";
import { PNG } from "pngjs";
import { encode as encodeJpeg } from "jpeg-js";
import type { ImageDataset } from "../../lib/data/dataset.ts";
import { loadImageFolder } from "../../lib/data/image_folder.ts";
import { loadDataset } from "../../lib/data/load.ts";
import { FIXTURES, rejectsWith, tempDir } from "./_helpers.ts";

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
