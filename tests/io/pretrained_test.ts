// The shipped pretrained weights (lib/io/pretrained.ts, `deno task make-pretrained`) and the recipe
// scaling the long run uses. Run: deno test -A tests/pretrained_test.ts
import { assert, assertEquals } from "../_assert.ts";
import { cardMarkdown, trainingSeconds } from "../../lib/io/pretrained_card.ts";
import { helpText } from "../../lib/cli/args.ts";
import { pretrainedCard, pretrainedLine, pretrainedWeights } from "../../lib/io/pretrained.ts";
import { recipe } from "../../lib/train/recipes.ts";
import { runCli } from "../_cli.ts";

const run = runCli;

Deno.test("recipe: a longer run keeps the warm-up's share of the run", () => {
  const base = recipe("quick");
  assertEquals(base.steps, 300);
  assertEquals(base.lr.warmup, 30);
  const long = recipe("quick", 4000);
  assertEquals([long.steps, long.lr.warmup], [4000, 400]);
  assertEquals(long.lr.ref, base.lr.ref);
  assertEquals(recipe("quick", 3).lr.warmup, 0); // 10% of 3 rounds to 0
  assertEquals(recipe("quick", 300), base);
  const tiny = recipe("tiny", 100);
  assert(tiny.lr.warmup === 10 && tiny.batchSize === 16, JSON.stringify(tiny));
});

Deno.test("make-pretrained: training seconds add up resumed segments", () => {
  const line = (step: number, elapsed: number) => JSON.stringify({ step, elapsed });
  assertEquals(trainingSeconds([line(1, 1), line(2, 2.5), ""].join("\n")), 2.5);
  // killed after 2.5 s, resumed: elapsed restarts
  assertEquals(trainingSeconds([line(1, 1), line(2, 2.5), line(3, 0.5), line(4, 2)].join("\n")), 4.5);
  assertEquals(trainingSeconds(""), 0);
});

Deno.test("make-pretrained: the card's table in Markdown", () => {
  const md = cardMarkdown({
    data: "subset",
    settings: ["10-shot", "1%"],
    rows: [
      { method: "I-JEPA", dim: 192, linear: [[60.25, 1.5], [70, 0]], knn: [[55, 2], [65, 1]] },
      { method: "raw pixels", dim: 784, linear: [[68.3, 2.5], [79.3, 0]] },
    ],
  });
  assertEquals(md.split("\n"), [
    "| subset | dim | 10-shot | 1% |",
    "| --- | --- | --- | --- |",
    "| I-JEPA | 192 | 60.3 ± 1.5 (kNN 55.0) | 70.0 (kNN 65.0) |",
    "| raw pixels | 784 | 68.3 ± 2.5 | 79.3 |",
  ]);
});

Deno.test("cli help: a long flag head puts its help on the next line", () => {
  const text = helpText({
    name: "x",
    summary: "s",
    flags: {
      preset: { type: "string", choices: ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"], help: "the preset" },
      k: { type: "int", help: "neighbours" },
    },
  });
  assert(/--preset aaaaaaaaaa\|bbbbbbbbbb\|cccccccccc\n {34}the preset/.test(text), text);
  assert(/\n {2}--k INT {25}neighbours\n/.test(text), text); // short heads keep one line
});

Deno.test("pretrained: a preset without shipped weights has none", () => {
  assertEquals(pretrainedWeights("no-such-preset"), undefined);
  assertEquals(pretrainedCard("no-such-preset"), undefined);
  assertEquals(pretrainedLine("no-such-preset"), "no shipped pretrained weights for preset no-such-preset");
});

const SHIPPED = pretrainedWeights("quick");

Deno.test({
  name: "pretrained: the shipped file matches its card and beats random init on a 10-shot probe",
  ignore: SHIPPED === undefined,
  fn: async () => {
    const card = pretrainedCard("quick")!;
    const bytes = await Deno.readFile(SHIPPED!);
    assertEquals(bytes.length, card.bytes);
    assert(bytes.length <= 12.5 * 2 ** 20, `${bytes.length} bytes: over the ~12 MB the issue allows`);
    const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    assertEquals(digest, card.sha256);
    // notebooks 03 and 04 quote the card's result on the data they ran on, wherever it lives
    const { shippedReference } = await import("../../lib/io/pretrained.ts");
    const sub = card.probes.find((p) => p.data.startsWith("Fashion-MNIST, shipped subset"))!;
    const ref = shippedReference("quick", `${sub.data} from /somewhere/else`);
    const [m, sd] = sub.rows[0].linear[sub.settings.indexOf("1%")];
    assert(ref?.includes(`${m.toFixed(1)} ± ${sd.toFixed(1)}% at 1%`), String(ref));
    // `deno task probe` with no weights picks the shipped file and says so
    const r = await run("probe", [
      "--data",
      "fashion-mnist-subset",
      "--shots",
      "10",
      "--seeds",
      "2",
      "--test-size",
      "1000",
      "--k",
      "0",
      "--all-labels=false",
      "--backend",
      "wasm",
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    assert(r.stderr.includes("no --weights: shipped pretrained weights:"), r.stderr);
    const t = JSON.parse(r.stdout);
    assertEquals(t.rows.map((x: { method: string }) => x.method), [
      "I-JEPA (shipped)",
      "random init",
      "raw pixels",
    ]);
    const tenShot = (i: number) => 100 * t.rows[i].probe[0].mean;
    assert(tenShot(0) > tenShot(1) + 5, `10-shot: shipped ${tenShot(0)} vs random init ${tenShot(1)}`);
    const none = await run("probe", ["--pretrained=false", "--preset", "tiny", "--help"]);
    assertEquals(none.code, 0);
    assert(none.stdout.includes("--pretrained"), none.stdout);
  },
});

Deno.test("cli make-pretrained: a tiny run exported at half precision, probed, with its card", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = await run("make_pretrained", ["--run", `${dir}/none`]);
    assertEquals(missing.code, 2);
    assert(missing.stderr.includes(`expected ${dir}/none/final.safetensors`), missing.stderr);
    const p = await run("pretrain", [
      "--preset",
      "tiny",
      "--steps",
      "3",
      "--data",
      "fashion-mnist-subset",
      "--out",
      `${dir}/run`,
      "--probe=false",
      "--backend",
      "wasm",
    ]);
    assertEquals(p.code, 0, p.stderr);
    // a small labelled set for the probe: 100 train / 20 test images per class from the subset
    const { encodeIdx } = await import("../../lib/data/idx.ts");
    const { loadDataset } = await import("../../lib/data/load.ts");
    const { subset } = await import("../../lib/data/stats.ts");
    const { sampleLabelSubset } = await import("../../lib/eval/label_draws.ts");
    const { Rng } = await import("../../lib/engine/rng.ts");
    const d = await loadDataset("fashion-mnist-subset");
    await Deno.mkdir(`${dir}/small`);
    for (const [split, ds, n] of [["train", d.train, 100], ["t10k", d.test, 20]] as const) {
      const s = subset(ds, sampleLabelSubset(ds.labels, n, new Rng(0)));
      const gz = (b: Uint8Array) =>
        new Response(
          new Blob([b as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip")),
        );
      await Deno.writeFile(
        `${dir}/small/${split}-images-idx3-ubyte.gz`,
        new Uint8Array(await gz(encodeIdx(s.images, [s.n, 28, 28])).arrayBuffer()),
      );
      await Deno.writeFile(
        `${dir}/small/${split}-labels-idx1-ubyte.gz`,
        new Uint8Array(await gz(encodeIdx(Uint8Array.from(s.labels), [s.n])).arrayBuffer()),
      );
    }
    const r = await run("make_pretrained", [
      "--run",
      `${dir}/run`,
      "--out",
      `${dir}/out`,
      "--data",
      `${dir}/small`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const card = JSON.parse(await Deno.readTextFile(`${dir}/out/tiny.json`));
    assertEquals([card.preset, card.steps, card.batchSize, card.dtype], ["tiny", 3, 16, "F16"]);
    assertEquals(card.bytes, (await Deno.stat(`${dir}/out/tiny.safetensors`)).size);
    assertEquals(card.probes.length, 1);
    assertEquals(card.probes[0].settings, ["10-shot", "1%", "full"]);
    assertEquals(card.probes[0].rows.map((x: { method: string }) => x.method), [
      "I-JEPA (shipped)",
      "random init",
      "raw pixels",
    ]);
    assert(card.trainSeconds >= 0 && card.commands[0].includes("--steps 3"), JSON.stringify(card));
    const md = await Deno.readTextFile(`${dir}/out/tiny.md`);
    assert(md.includes("| I-JEPA (shipped) | 32 |"), md);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: presetOf names a preset's shape and nothing else", async () => {
  const { modelConfig, presetOf } = await import("../../lib/model/config.ts");
  assertEquals(presetOf(modelConfig("quick")), "quick");
  assertEquals(presetOf(modelConfig("vit_huge14")), "vit_huge14");
  assertEquals(presetOf(modelConfig("quick", { predictorDepth: 2 })), undefined);
});

Deno.test("pretrained: cards name data without the folder it was read from", async () => {
  const { dataName } = await import("../../lib/io/pretrained.ts");
  assertEquals(
    dataName(
      "Fashion-MNIST, shipped subset (10000 train / 2000 test) from /home/me/ijepa-deno/data/fashion-mnist",
    ),
    "Fashion-MNIST, shipped subset (10000 train / 2000 test)",
  );
  assertEquals(dataName("bands"), "bands");
});
