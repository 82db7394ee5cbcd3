// Tests of lib/data/cifar.ts: CHW to HWC, CIFAR-100 fine and coarse labels, meta names, bad files.

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCifar } from "../../lib/data/cifar.ts";
import { FIXTURES, rejectsWith, tempDir } from "./_helpers.ts";

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
