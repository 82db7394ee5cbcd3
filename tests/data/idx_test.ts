// Tests of lib/data/idx.ts: IDX round trips (gz and raw, 3-D and 4-D) and the errors on bad files.

import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { encodeIdx, loadIdx } from "../../lib/data/idx.ts";
import { FIXTURES, rejectsWith, tempDir } from "./_helpers.ts";

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
