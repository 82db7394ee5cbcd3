// Tests for the ablation strategies of the paper's Table 6 (lib/masks/strategies.ts): rasterized,
// block and random.

import assert from "node:assert/strict";
import { createMasker } from "../../lib/masks/masker.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { bbox, checkBatch, sizeWithinBounds } from "./_masks.ts";

Deno.test("rasterized: one quadrant is the context, the other three the targets", () => {
  for (const [rows, cols] of [[8, 8], [7, 7], [6, 9]]) {
    const m = createMasker({ rows, cols, strategy: "rasterized", minKeep: 4 });
    const rng = new Rng(2);
    const splits = new Set<number>();
    const contextQuadrants = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const b = m.sample(rng, 16);
      checkBatch(m, b);
      assert.equal(b.nTargets, 3);
      for (const e of b.examples) {
        const all = [e.context, ...e.targets];
        assert.equal(all.reduce((s, a) => s + a.length, 0), rows * cols, "quadrants tile the grid");
        for (const q of all) {
          const [top, left, h, w] = bbox(q, cols);
          assert.equal(q.length, h * w, "a quadrant is a rectangle");
          assert.ok(top === 0 || top + h === rows);
          assert.ok(left === 0 || left + w === cols);
        }
        const [top, left, h] = bbox(e.context, cols);
        contextQuadrants.add(`${top === 0 ? "top" : "bottom"} ${left === 0 ? "left" : "right"}`);
        splits.add(top === 0 ? h : rows - h);
      }
    }
    assert.equal(contextQuadrants.size, 4, "every quadrant serves as the context");
    assert.equal(
      splits.size,
      rows % 2 === 1 ? 2 : 1,
      "odd sides split on either side of the middle",
    );
  }
  // On 7x7 quadrants differ in size, so targets are cut to the batch's shortest (9 = 3x3).
  const m = createMasker({ rows: 7, cols: 7, strategy: "rasterized", minKeep: 4 });
  const b = m.sample(new Rng(0), 32);
  assert.equal(b.targetLen, 9);
});

Deno.test("block: one target block of Block(0.6); the context is the rest", () => {
  const m = createMasker({ rows: 14, cols: 14, strategy: "block" });
  assert.deepEqual(m.options.targetScale, [0.6, 0.6]);
  const rng = new Rng(8);
  for (let i = 0; i < 50; i++) {
    const b = m.sample(rng, 16);
    checkBatch(m, b);
    const [h, w] = b.targetBlock!;
    assert.ok(sizeWithinBounds([h, w], 14, 14, [0.6, 0.6], m.options.targetAspect));
    for (const e of b.examples) {
      assert.equal(e.targets[0].length, h * w);
      assert.equal(e.context.length, 196 - h * w);
    }
  }
});

Deno.test("random: round(maskRatio * N) random target patches; every patch masked about that often", () => {
  const m = createMasker({ rows: 10, cols: 10, strategy: "random", maskRatio: 0.6 });
  const counts = new Float64Array(100);
  const rng = new Rng(11);
  const draws = 100 * 32;
  for (let i = 0; i < 100; i++) {
    const b = m.sample(rng, 32);
    checkBatch(m, b);
    assert.equal(b.targetLen, 60);
    assert.equal(b.contextLen, 40);
    for (const e of b.examples) for (const p of e.targets[0]) counts[p]++;
  }
  for (let p = 0; p < 100; p++) {
    const f = counts[p] / draws; // binomial: std 0.009
    assert.ok(Math.abs(f - 0.6) < 0.05, `patch ${p} masked ${f.toFixed(3)} of the time`);
  }
});
