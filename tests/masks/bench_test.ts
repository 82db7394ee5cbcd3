// Tests for the masker's speed (lib/masks/bench.ts).

import assert from "node:assert/strict";
import { benchMasker } from "../../lib/masks/bench.ts";
import { createMasker } from "../../lib/masks/masker.ts";
import { maskPreset } from "../../lib/masks/options.ts";

Deno.test("speed: a batch of 64 takes well under 1% of a 0.5 s train step", () => {
  for (const g of [7, 14]) {
    const r = benchMasker(createMasker(maskPreset(g, g)), 64, 0.3);
    console.log(
      `${g}x${g} batch 64: ${Math.round(r.masksPerSecond)} masks/s, ${r.msPerBatch.toFixed(3)} ms/batch`,
    );
    assert.ok(r.msPerBatch < 5, `${g}x${g}: ${r.msPerBatch} ms per batch`);
  }
});
