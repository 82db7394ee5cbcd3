// Tests of lib/eval/label_draws.ts: label subsets and probe settings. Run: deno test -A tests/eval/label_draws_test.ts
import assert from "node:assert/strict";
import { probeSettings, sampleLabelSubset } from "../../lib/eval/label_draws.ts";
import { Rng } from "../../lib/engine/rng.ts";

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
