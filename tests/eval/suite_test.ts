// Tests of lib/eval/suite.ts and lib/eval/report.ts. Run: deno test -A tests/eval/suite_test.ts
import assert from "node:assert/strict";
import { modelConfig } from "../../lib/model/config.ts";
import { formatProbeTable, probeBars } from "../../lib/eval/report.ts";
import { runProbeSuite } from "../../lib/eval/suite.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { VisionTransformer } from "../../lib/model/vit.ts";
import { bandImages, onCpu } from "./_fixtures.ts";

Deno.test("suite: every method on the same draws, a cell per setting, kNN beside the probe", async () => {
  await onCpu();
  const train = bandImages(80, 4, 3), test = bandImages(40, 4, 4);
  const enc = new VisionTransformer(modelConfig("tiny"), new Rng(0));
  try {
    const table = await runProbeSuite({
      encoders: [{ name: "random init", encoder: enc }],
      train,
      test,
      shots: [1, 5],
      seeds: 2,
      k: 5,
    });
    assert.deepEqual(table.settings.map((s) => s.name), ["1-shot", "5-shot", "1%", "full"]);
    assert.deepEqual(table.rows.map((r) => r.method), ["random init", "raw pixels"]);
    assert.deepEqual(table.rows.map((r) => r.dim), [32, 256]);
    for (const r of table.rows) {
      assert.equal(r.probe.length, 4);
      assert.equal(r.knn?.length, 4);
      assert.equal(r.probe[0].runs.length, 2);
      assert.equal(r.probe[3].runs.length, 1);
      for (const c of r.probe) assert.ok(c.mean >= 0 && c.mean <= 1 && c.std >= 0);
      assert.equal(r.confusion.flat().reduce((a, b) => a + b, 0), 40);
    }
    // 1% of 20 per class rounds to 1 per class: the same draws as 1-shot, so the same accuracies.
    for (const r of table.rows) assert.deepEqual(r.probe[2].runs, r.probe[0].runs);
    // The band images are linearly separable in pixels: all labels must be near 100%.
    assert.ok(table.rows[1].probe[3].mean >= 0.95, `pixels, full: ${table.rows[1].probe[3].mean}`);
    const text = formatProbeTable(table);
    assert.match(text, /random init\s+32 /);
    assert.match(text, /raw pixels\s+256 /);
    assert.match(text, /kNN \(cosine, k=5\)/);
    assert.match(text, /full \(80\)/);
    const bars = probeBars(table);
    assert.equal(bars.length, 8);
    assert.ok(bars.every((b) => b.mean >= 0 && b.mean <= 100));
  } finally {
    enc.dispose();
  }
});

Deno.test("suite: without 'full' only the labelled pool images are encoded", async () => {
  await onCpu();
  const train = bandImages(200, 4, 5), test = bandImages(20, 4, 6);
  const enc = new VisionTransformer(modelConfig("tiny"), new Rng(0));
  const lines: string[] = [];
  try {
    const table = await runProbeSuite({
      encoders: [{ name: "enc", encoder: enc }],
      pixels: false,
      train,
      test,
      shots: [2],
      onePercent: false,
      full: false,
      seeds: 1,
      k: 0,
      log: (s) => lines.push(s),
    });
    assert.equal(table.rows.length, 1);
    assert.equal(table.rows[0].knn, null);
    assert.ok(lines.some((l) => l.includes("features of 8 pool and 20 test images")), lines.join("\n"));
  } finally {
    enc.dispose();
  }
});
