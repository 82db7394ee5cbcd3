// Tests for the masker's determinism (lib/masks/masker.ts) and its collation (lib/masks/collate.ts).

import assert from "node:assert/strict";
import { createMasker } from "../../lib/masks/masker.ts";
import type { MaskerOptions } from "../../lib/masks/options.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { checkCollation, fingerprint } from "./_masks.ts";

Deno.test("determinism: the same seed gives the same masks, whatever ran before", () => {
  for (const strategy of ["multiblock", "rasterized", "block", "random"] as const) {
    const opts: MaskerOptions = { rows: 7, cols: 7, strategy, minKeep: 4 };
    const a = createMasker(opts), b = createMasker(opts);
    b.sample(new Rng(99), 40); // history must not matter
    const x = a.sample(new Rng(5), 16), y = b.sample(new Rng(5), 16);
    assert.deepEqual(x, y, strategy);
    assert.notDeepEqual(
      x.examples,
      a.sample(new Rng(6), 16).examples,
      `${strategy}: seeds 5 and 6 agree`,
    );
  }
  // Resuming from a saved RNG state continues the same sequence.
  const m = createMasker({ rows: 14, cols: 14 });
  const r = new Rng(0);
  m.sample(r, 8);
  const saved = r.state();
  const next = m.sample(r, 8);
  assert.deepEqual(m.sample(Rng.fromState(saved), 8), next);
});

Deno.test("determinism: golden fingerprints (same masks on every machine and run)", () => {
  // If one of these changes, the masks for a given seed changed: say so in the changelog.
  const cases: [MaskerOptions, string][] = [
    [{ rows: 14, cols: 14 }, "e10f6804"],
    [{ rows: 7, cols: 7, collate: "pad" }, "3eb7b237"],
    [{ rows: 7, cols: 7, strategy: "rasterized", minKeep: 4 }, "142fb981"],
    [{ rows: 8, cols: 8, strategy: "random", minKeep: 4 }, "e295fa9d"],
    [{ rows: 8, cols: 8, strategy: "block", minKeep: 4 }, "119934e5"],
  ];
  const got = cases.map(([o]) => fingerprint(createMasker(o).sample(new Rng(0), 16)));
  assert.deepEqual(got, cases.map(([, f]) => f));
});

Deno.test("collation: truncate and pad see the same masks; their lengths are the batch's min and max", () => {
  const t = createMasker({ rows: 14, cols: 14, collate: "truncate" });
  const p = createMasker({ rows: 14, cols: 14, collate: "pad" });
  for (let s = 0; s < 20; s++) {
    const a = t.sample(new Rng(s), 32), b = p.sample(new Rng(s), 32);
    assert.deepEqual(a.examples, b.examples);
    checkCollation(t, a);
    checkCollation(p, b);
    assert.ok(a.contextLen < b.contextLen, "contexts of one batch should differ in length");
    const valid = b.contextValid!.reduce((x, y) => x + y, 0);
    assert.equal(valid, b.examples.reduce((x, e) => x + e.context.length, 0));
  }
  // Truncation keeps a random subset, not the first indices: over many batches, the last patches of
  // long contexts survive truncation about as often as the first ones.
  let first = 0, last = 0;
  const rng = new Rng(4);
  for (let i = 0; i < 200; i++) {
    const b = t.sample(rng, 16);
    b.examples.forEach((e, k) => {
      const row = new Set(b.contextIdx.subarray(k * b.contextLen, (k + 1) * b.contextLen));
      if (row.has(e.context[0])) first++;
      if (row.has(e.context[e.context.length - 1])) last++;
    });
  }
  assert.ok(last > 0.8 * first && last < 1.25 * first, `first kept ${first}, last kept ${last}`);
});
