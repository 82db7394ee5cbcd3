// Tests for the mask statistics task (lib/cli/masks.ts): its figures and its command line.

import assert from "node:assert/strict";
import { createMasker } from "../../lib/masks/masker.ts";
import { maskStatistics } from "../../lib/masks/statistics.ts";

Deno.test("maskStatistics: exact figures where the answer is known", () => {
  const m = createMasker({ rows: 10, cols: 10, strategy: "random", maskRatio: 0.6 });
  const s = maskStatistics(m, { batch: 8, batches: 5, seed: 0 });
  assert.equal(s.examples, 40);
  assert.deepEqual(s.contextSize, { mean: 40, std: 0, min: 40, max: 40 });
  assert.deepEqual(s.targetSize, { mean: 60, std: 0, min: 60, max: 60 });
  assert.equal(s.truncateDrops, 0);
  assert.equal(s.padWaste, 0);
  const r = maskStatistics(createMasker({ rows: 7, cols: 7, strategy: "rasterized", minKeep: 4 }), {
    batch: 16,
    batches: 20,
    seed: 0,
  });
  assert.equal(r.contextLenTruncate.min, 9, "the smallest quadrant of a 7x7 grid is 3x3");
  assert.equal(r.contextLenPad.max, 16, "the largest is 4x4");
  assert.ok(r.targetDrops > 0.1, "rasterized targets on 7x7 are cut to the shortest quadrant");
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "lib/cli/masks.ts", ...args],
    cwd: new URL("../..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await cmd.output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

Deno.test("cli: --json statistics, the table, --help, and errors for bad flags and settings", async () => {
  const j = await cli("--grid", "7", "--batch", "32", "--batches", "50", "--seed", "0", "--json");
  assert.equal(j.code, 0, j.err);
  const s = JSON.parse(j.out);
  assert.equal(s.options.rows, 7);
  assert.equal(s.examples, 1600);
  assert.ok(s.contextSize.min >= 10 && s.contextLenPad.mean > s.contextLenTruncate.mean);
  assert.equal(s.fallbackRate, 0);
  const t = await cli(
    "--grid",
    "8",
    "--batches",
    "5",
    "--strategy",
    "rasterized",
    "--min-keep",
    "4",
  );
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /rasterized on a 8x8 grid/);
  assert.match(t.out, /collated context, truncate\s+16\.00/);
  assert.match(t.out, /fallback rate/);
  const h = await cli("--help");
  assert.equal(h.code, 0);
  for (const flag of ["--min-keep", "--strategy", "--targets", "--collate", "--png", "--json"]) {
    assert.ok(h.out.includes(flag), `--help lacks ${flag}`);
  }
  const u = await cli("--gird", "7");
  assert.equal(u.code, 2);
  assert.match(u.err, /unknown flag --gird/);
  const bad = await cli("--grid", "7", "--min-keep", "45");
  assert.equal(bad.code, 2);
  assert.match(bad.err, /minKeep 45/);
  const r = await cli("--grid", "7", "--target-scale", "0.2");
  assert.equal(r.code, 2);
  assert.match(r.err, /--target-scale expects LO,HI/);
});
