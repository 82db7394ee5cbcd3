// Tests that impossible settings fail at construction (lib/masks/options.ts, masker.ts) and that
// sampling always ends (the multi-block fallback, lib/masks/strategies.ts).

import assert from "node:assert/strict";
import { createMasker } from "../../lib/masks/masker.ts";
import type { MaskerOptions } from "../../lib/masks/options.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { assertThrowsWith, checkBatch } from "./_masks.ts";

Deno.test("construction rejects impossible settings with the numbers in the message", () => {
  // minKeep above the largest context: a 5x5 context block (scale <= 0.6 of 49) cannot keep 30.
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, contextScale: [0.5, 0.6], minKeep: 30 }),
    "minKeep 30 exceeds the largest possible context (25 patches on a 7x7 grid",
  );
  // minKeep that the largest target block can squeeze out: 49 - 4x3 = 37 < 40.
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, minKeep: 40 }),
    "minKeep 40 cannot always be met",
    "= 12 patches",
    "at most 37 of the 49 patches",
  );
  // Both bounds broken: the tighter one is named (49 - 12 = 37, not the 43 the context block allows),
  // so the number in the message is one that passes.
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, minKeep: 60 }),
    "minKeep 60 cannot always be met",
    "at most 37 of the 49 patches",
  );
  createMasker({ rows: 7, cols: 7, minKeep: 37 });
  // More target area than the grid: a full-grid target leaves no context at all.
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, targetScale: [0.9, 1], minKeep: 1 }),
    "minKeep 1",
    "7x7 = 49 patches",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, targetScale: [0.1, 1.2] }),
    "targetScale",
    "1.2",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, contextScale: [0, 1] }),
    "contextScale",
    "[0, 1]",
  );
  assertThrowsWith(() => createMasker({ rows: 7, cols: 7, targetScale: [0.3, 0.2] }), "[0.3, 0.2]");
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, targetAspect: [-1, 2] }),
    "targetAspect",
    "-1",
  );
  assertThrowsWith(() => createMasker({ rows: 7.5, cols: 7 }), "rows", "7.5");
  assertThrowsWith(() => createMasker({ rows: 0, cols: 7 }), "rows", "got 0");
  assertThrowsWith(
    () => createMasker({ rows: 1, cols: 1, minKeep: 1 }),
    "at least 2 patches",
    "1x1",
  );
  assertThrowsWith(() => createMasker({ rows: 7, cols: 7, nTargets: 0 }), "nTargets", "got 0");
  assertThrowsWith(() => createMasker({ rows: 7, cols: 7, minKeep: 2.5 }), "minKeep", "2.5");
  assertThrowsWith(() => createMasker({ rows: 7, cols: 7, maxTries: 0 }), "maxTries", "got 0");
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, minkeep: 4 } as unknown as MaskerOptions),
    'unknown option "minkeep"',
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "grid" as unknown as "block" }),
    'got "grid"',
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, collate: "zip" as unknown as "pad" }),
    'got "zip"',
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "rasterized", nTargets: 4 }),
    "3 target block(s), got nTargets 4",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "rasterized" }),
    "minKeep 10 exceeds the smallest quadrant context (9 patches on a 7x7 grid)",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "random", maskRatio: 0.9 }),
    "maskRatio 0.9",
    "masks 44 of 49",
    "leaving 5",
    "minKeep 10",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "random", maskRatio: 1.5 }),
    "1.5",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "block", minKeep: 25 }),
    "minKeep 25 cannot always be met",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7 }).sample(new Rng(0), 0),
    "batchSize",
    "got 0",
  );
});

Deno.test("the official's never-ending settings (min_keep 10 on 7x7 and 8x8) sample without a fallback", () => {
  for (const g of [7, 8]) {
    const m = createMasker({ rows: g, cols: g, minKeep: 10 });
    const rng = new Rng(g);
    let fallbacks = 0;
    for (let i = 0; i < 100; i++) {
      const b = m.sample(rng, 64);
      checkBatch(m, b);
      fallbacks += b.fallbacks;
    }
    assert.equal(fallbacks, 0);
  }
});

Deno.test("fallback: bounded tries, then a widened context, then stacked targets; never overlapping", () => {
  // Level 1: a 5x5 context block can rarely keep 20 patches beside four targets, the whole grid can.
  const m1 = createMasker({ rows: 7, cols: 7, contextScale: [0.5, 0.5], minKeep: 20, maxTries: 5 });
  const rng = new Rng(1);
  const levels = [0, 0, 0];
  for (let i = 0; i < 100; i++) {
    const b = m1.sample(rng, 32);
    checkBatch(m1, b);
    for (const l of b.fallbackLevel) levels[l]++;
    b.examples.forEach((e, k) => {
      if (b.fallbackLevel[k] === 1) {
        // Widened: the context is every patch that is not a target.
        const t = new Set(e.targets.flatMap((x) => [...x]));
        assert.equal(e.context.length, 49 - t.size);
      }
    });
  }
  assert.ok(levels[1] > 100, `level-1 fallbacks: ${levels[1]}`);
  // Level 2: on 4x4 with four 2x2 targets, keeping 12 patches needs all four targets on one spot.
  const m2 = createMasker({
    rows: 4,
    cols: 4,
    targetScale: [0.25, 0.25],
    targetAspect: [1, 1],
    contextScale: [1, 1],
    minKeep: 12,
    maxTries: 3,
  });
  let stacked = 0;
  for (let i = 0; i < 50; i++) {
    const b = m2.sample(rng, 16);
    checkBatch(m2, b);
    for (const l of b.fallbackLevel) if (l === 2) stacked++;
    for (const e of b.examples) assert.equal(e.context.length, 12);
  }
  assert.ok(stacked > 600, `level-2 fallbacks: ${stacked} of 800`);
});
