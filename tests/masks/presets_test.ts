// Tests for the mask presets (lib/masks/options.ts).

import assert from "node:assert/strict";
import { createMasker } from "../../lib/masks/masker.ts";
import { MASK_PRESETS, MASKER_DEFAULTS, maskPreset } from "../../lib/masks/options.ts";
import { maskStatistics } from "../../lib/masks/statistics.ts";
import { assertThrowsWith } from "./_masks.ts";

Deno.test("presets: build, never need the fallback, and keep the paper's context fraction", () => {
  for (const key of Object.keys(MASK_PRESETS)) {
    const [rows, cols] = key.split("x").map(Number);
    const m = createMasker(maskPreset(rows, cols));
    const s = maskStatistics(m, { batch: 64, batches: 100, seed: 0 });
    assert.equal(s.fallbackRate, 0, key);
    assert.ok(s.contextFraction > 0.4 && s.contextFraction < 0.55, `${key}: ${s.contextFraction}`);
    assert.ok(s.contextSize.min >= m.options.minKeep);
  }
  assert.deepEqual(maskPreset(20, 20), { rows: 20, cols: 20, ...MASKER_DEFAULTS });
  assertThrowsWith(() => maskPreset(9, 9), "no preset for a 9x9 grid");
});
