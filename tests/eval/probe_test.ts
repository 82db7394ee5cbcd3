// Tests of the probe task: lib/eval/probe_task.ts (its flags, and the short probe after pretraining)
// and lib/cli/probe.ts (`deno task probe`). Run: deno test -A tests/eval/probe_test.ts
import assert from "node:assert/strict";
import { modelConfig } from "../../lib/model/config.ts";
import { IJEPA } from "../../lib/model/ijepa.ts";
import { runCli } from "../_cli.ts";
import {
  checkPresetMatches,
  parseReadouts,
  parseShots,
  runAfterPretrain,
} from "../../lib/eval/probe_task.ts";
import { bandImages, onCpu } from "./_fixtures.ts";

// ---------------------------------------------------------------------------------------------
// The CLI

const cli = (args: string[]) => runCli("probe", args);

const SMALL = [
  "--data",
  "fashion-mnist-subset",
  "--pool",
  "400",
  "--test-size",
  "200",
  "--shots",
  "1,5",
  "--seeds",
  "2",
  "--backend",
  "cpu",
];

Deno.test("cli probe: flags parse and check", () => {
  assert.deepEqual(parseShots("10, 1,5,5"), [1, 5, 10]);
  assert.deepEqual(parseShots(""), []);
  assert.throws(() => parseShots("1,x"), /--shots expects positive integers/);
  assert.deepEqual(parseReadouts("avgpool,pool2x2"), ["avgpool", "pool2x2"]);
  assert.throws(() => parseReadouts("avgpool,cls"), /unknown readout "cls"/);
  checkPresetMatches("tiny", modelConfig("tiny"), "w.safetensors");
  assert.throws(
    () => checkPresetMatches("quick", modelConfig("tiny"), "w.safetensors", "tiny"),
    /--preset quick does not match the weights in w\.safetensors \(saved from preset tiny\): imageSize 16 in the file, 28 in quick; .*width 32 in the file, 192 in quick/,
  );
});

Deno.test("cli probe: a tiny end-to-end run with --json, then with --weights", async () => {
  const r = await cli(["--preset", "tiny", "--json", ...SMALL]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.settings.map((s: { name: string }) => s.name), ["1-shot", "5-shot", "1%", "full"]);
  assert.deepEqual(out.rows.map((x: { method: string }) => x.method), ["random init", "raw pixels"]);
  assert.equal(out.pool, 400);
  assert.equal(out.test, 200);
  assert.equal(out.weights, null);
  for (const row of out.rows) {
    for (const c of row.probe) assert.ok(c.mean > 0.1 && c.mean <= 1, JSON.stringify(c)); // above chance (10%)
  }
  assert.match(r.stderr, /resized from 28x28 to the model's 16x16/);

  // Weights saved from the tiny preset: an I-JEPA row joins; --preset quick with them is an error.
  const dir = await Deno.makeTempDir();
  try {
    await onCpu();
    const { saveModel } = await import("../../lib/io/weights.ts");
    const model = new IJEPA("tiny", { seed: 5 });
    const path = `${dir}/w.safetensors`;
    await saveModel(model, path, { preset: "tiny", mean: [0.3], std: [0.35] });
    model.dispose();
    const w = await cli(["--weights", path, "--json", "--k", "0", ...SMALL]);
    assert.equal(w.code, 0, w.stderr);
    const o = JSON.parse(w.stdout);
    assert.deepEqual(o.rows.map((x: { method: string }) => x.method), [
      "I-JEPA",
      "random init",
      "raw pixels",
    ]);
    assert.equal(o.rows[0].knn, null);
    assert.match(w.stderr, /mean 0\.3000 std 0\.3500 \(from the weights file\)/);
    const bad = await cli(["--weights", path, "--preset", "quick", ...SMALL]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--preset quick does not match the weights .* \(saved from preset tiny\)/);
    await Deno.mkdir(`${dir}/run`);
    await Deno.copyFile(path, `${dir}/run/final.safetensors`);
    const png = `${dir}/bars.png`;
    const run = await cli([
      "--run",
      `${dir}/run`,
      "--png",
      png,
      "--k",
      "0",
      "--seeds",
      "1",
      ...SMALL.slice(0, -4),
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /I-JEPA\s+32 /);
    assert.ok((await Deno.stat(png)).size > 1000, "the bar chart was written");
    const none = await cli(["--run", `${dir}/nothing`]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /expected .*nothing\/final\.safetensors/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli probe: runAfterPretrain probes a trained model without the all-labels column", async () => {
  await onCpu();
  const model = new IJEPA("tiny", { seed: 1 });
  try {
    const data = { train: bandImages(40, 4, 7), test: bandImages(20, 4, 8), source: "bands", full: true };
    const table = await runAfterPretrain({ weights: "w.safetensors", model, data, json: true });
    assert.deepEqual(table.settings.map((s) => s.name), ["1-shot", "5-shot", "10-shot", "1%"]);
    assert.deepEqual(table.rows.map((r) => r.method), ["I-JEPA", "random init", "raw pixels"]);
    await assert.rejects(() => runAfterPretrain({ model }), /expected \{ weights: string/);
  } finally {
    model.dispose();
  }
});
