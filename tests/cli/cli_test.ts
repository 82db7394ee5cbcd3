// Every task: --help works, unknown flags are errors; inspect and embed on the official fixture.
import { assert, assertEquals } from "../_assert.ts";
import { runCli } from "../_cli.ts";
import { BACKEND_NAMES } from "../../lib/engine/backend.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const FIXTURE = `${ROOT}tests/fixtures/official-ijepa-tiny/checkpoint.pth.tar`;

const run = runCli;

const TASKS = ["pretrain", "probe", "ablate", "recipe", "masks", "inspect", "embed", "plot"];

for (const task of TASKS) {
  Deno.test(`cli ${task}: --help prints usage; an unknown flag is an error`, async () => {
    const help = await run(task, ["--help"]);
    assertEquals(help.code, 0, help.stderr);
    assert(help.stdout.includes(`deno task ${task}`), help.stdout);
    const bad = await run(task, ["--no-such-flag"]);
    assertEquals(bad.code, 2);
    assert(bad.stderr.includes("unknown flag --no-such-flag"), bad.stderr);
  });
}

// Every task that runs tensors takes the same --backend flag (lib/cli/args.ts BACKEND_FLAG).
Deno.test("cli: one --backend flag, the same help everywhere, a wrong name a usage error", async () => {
  const lines = new Set<string>();
  for (const script of ["pretrain", "probe", "ablate", "recipe", "embed", "make_pretrained"]) {
    const help = await run(script, ["--help"]);
    assertEquals(help.code, 0, help.stderr);
    const at = help.stdout.indexOf("--backend ");
    assert(at >= 0, `${script}: no --backend in the help`);
    lines.add(help.stdout.slice(at).split("\n").slice(0, 2).join(" ").replace(/\s+/g, " "));
    const bad = await run(script, ["--backend", "tpu"]);
    assertEquals(bad.code, 2, `${script}: ${bad.stderr}`);
    assert(bad.stderr.includes(`--backend expects one of ${BACKEND_NAMES.join(", ")}`), bad.stderr);
  }
  assertEquals(lines.size, 1, [...lines].join("\n"));
  for (const name of BACKEND_NAMES) assert([...lines][0].includes(name), [...lines][0]);
});

Deno.test("cli inspect: the official fixture's config, parts and training state", async () => {
  const r = await run("inspect", [FIXTURE, "--heads", "2", "--json"]);
  assertEquals(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  const c = info.config;
  assertEquals([c.imageSize, c.patchSize, c.channels, c.width, c.depth, c.heads, c.mlpHidden], [
    16,
    4,
    3,
    24,
    2,
    2,
    96,
  ]);
  assertEquals([c.predictorWidth, c.predictorDepth], [12, 1]);
  assertEquals(info.training.epoch, 1);
  assertEquals(info.training.optimizer.paramGroups, 4);
  assertEquals(info.notUnderstood, []);
  assertEquals(info.parts.target_encoder.tensors, 29);
  const text = await run("inspect", [FIXTURE]);
  assert(text.stdout.includes("pass --heads N"), text.stdout); // width 24 is outside the official table
});

Deno.test("cli embed: features of a folder match the target encoder read directly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { PNG } = await import("pngjs");
    await Deno.mkdir(`${dir}/imgs/sub`, { recursive: true });
    for (const [name, v] of [["imgs/a.png", 30], ["imgs/sub/b.png", 220]] as const) {
      const png = new PNG({ width: 16, height: 16 });
      for (let i = 0; i < png.data.length; i++) png.data[i] = i % 4 === 3 ? 255 : (v + i) % 256;
      await Deno.writeFile(`${dir}/${name}`, PNG.sync.write(png));
    }
    const r = await run("embed", [
      "--weights",
      FIXTURE,
      "--heads",
      "2",
      "--data",
      `${dir}/imgs`,
      "--out",
      `${dir}/f.npy`,
      "--backend",
      "cpu",
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const bytes = await Deno.readFile(`${dir}/f.npy`);
    const hlen = new DataView(bytes.buffer).getUint16(8, true);
    const header = new TextDecoder().decode(bytes.subarray(10, 10 + hlen));
    assert(header.includes("'shape': (2, 24)"), header);
    const feats = new Float32Array(bytes.slice(10 + hlen).buffer);
    assertEquals(
      (await Deno.readTextFile(`${dir}/f.npy.files.txt`)).trim().split("\n").map((p) => p.slice(dir.length)),
      [
        "/imgs/a.png",
        "/imgs/sub/b.png",
      ],
    );
    // the same numbers computed in-process
    const tf = await import("@tensorflow/tfjs");
    const { setBackend } = await import("../../lib/engine/backend.ts");
    const { loadOfficialCheckpoint } = await import("../../lib/io/official.ts");
    const { loadImageFiles } = await import("../../lib/data/image_folder.ts");
    const { normalize } = await import("../../lib/data/augment.ts");
    await setBackend("cpu", { quiet: true, blas: false });
    const { model } = await loadOfficialCheckpoint(FIXTURE, { heads: 2, parts: ["target_encoder"] });
    const { dataset } = await loadImageFiles(`${dir}/imgs`, { size: 16, channels: 3 });
    const x = normalize(dataset.images, 3, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    const want = tf.tidy(() => model.targetEncoder.forward(tf.tensor4d(x, [2, 16, 16, 3])).mean(1))
      .dataSync();
    for (let i = 0; i < want.length; i++) {
      assert(Math.abs(feats[i] - want[i]) < 1e-5, `feature ${i}: ${feats[i]} vs ${want[i]}`);
    }
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: pretrain refuses --steps 0 and --batch -4 before loading anything, and makes no run folder", async () => {
  const out = await Deno.makeTempDir({ prefix: "ijepa-badflags-" });
  try {
    for (
      const [flag, value, says] of [
        ["--steps", "0", "--steps expects an integer >= 1, got 0"],
        ["--batch", "-4", "--batch expects an integer >= 1, got -4"],
      ]
    ) {
      const r = await runCli("pretrain", [flag, value, "--out", `${out}/run`]);
      assertEquals(r.code, 2, r.stderr);
      assert(r.stderr.includes(says), r.stderr);
      assert(!r.stderr.includes("backend:") && !r.stderr.includes("data:"), `work started: ${r.stderr}`);
    }
    assertEquals([...Deno.readDirSync(out)].length, 0, "a run folder was created");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("cli: inspect names what it expected for a missing file, a folder and a file of another kind", async () => {
  const cases: [string, RegExp][] = [
    [
      "no-such-file.safetensors",
      /no-such-file\.safetensors: no such file; expected a \.safetensors weights file/,
    ],
    [
      `${ROOT}lib`,
      /lib is a folder: expected a \.safetensors weights file or an official \.pth\.tar checkpoint/,
    ],
    [
      `${ROOT}README.md`,
      /README\.md is neither a safetensors file nor a \.pth\.tar checkpoint \(it starts with "# ijepa-"/,
    ],
  ];
  for (const [file, says] of cases) {
    const r = await runCli("inspect", [file]);
    assertEquals(r.code, 2, r.stderr);
    assert(says.test(r.stderr), r.stderr);
    assert(!/os error|is larger than the file/.test(r.stderr), `raw error: ${r.stderr}`);
  }
});

Deno.test("cli probe --heads and recipe --shots: an official checkpoint outside the official widths, a small folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa-heads-shots-" });
  try {
    const { writeImageFolder } = await import("./_image_folder.ts");
    await writeImageFolder(`${dir}/imgs`, 10); // 8 a class after the 20% test split
    const base = ["--data", `${dir}/imgs`, "--backend", "cpu", "--seeds", "1"];
    const noHeads = await run("probe", ["--weights", FIXTURE, ...base, "--shots", "1"]);
    assertEquals(noHeads.code, 1, noHeads.stderr);
    assert(/width 24 is not in the official family.*--heads N/.test(noHeads.stderr), noHeads.stderr);
    const probe = await run("probe", [
      "--weights",
      FIXTURE,
      "--heads",
      "2",
      ...base,
      "--shots",
      "1",
      "--json",
    ]);
    assertEquals(probe.code, 0, probe.stderr);
    const summary = JSON.parse(probe.stdout.trim().split("\n").at(-1)!);
    assert(JSON.stringify(summary).includes("1-shot"), probe.stdout);

    // recipe: settings the pool cannot give are refused before training when asked for, left out otherwise
    const common = ["--preset", "tiny", "--steps", "2", "--configs", "official", ...base];
    const asked = await run("recipe", [
      ...common.filter((a) => a !== "--seeds" && a !== "1"),
      "--shots",
      "5,50",
    ]);
    assertEquals(asked.code, 2, asked.stderr);
    assert(
      asked.stderr.includes(
        "recipe: --shots 5,50 asks for 50-shot: the pool's smallest class has 8 images; " +
          "choose settings up to 8",
      ),
      asked.stderr,
    );
    assert(!/step \d+\/2/.test(asked.stderr), "it trained before refusing");
    const left = await run("recipe", common);
    assertEquals(left.code, 0, left.stderr);
    assert(
      left.stderr.includes("shots: 10-shot, 50-shot: the pool's smallest class has 8 images, so left out"),
      left.stderr,
    );
    assert(left.stdout.includes("| configuration | 1% | full | kNN 1% | training time |"), left.stdout);

    // what the folder cannot give at all is refused before anything trains: recipe's batch, ablate's 10-shot
    const bigBatch = await run("recipe", [
      ...["--steps", "2", "--configs", "official", ...base],
      "--preset",
      "quick",
    ]);
    assertEquals(bigBatch.code, 2, bigBatch.stderr);
    assert(
      bigBatch.stderr.includes("recipe: the quick recipe's batch of 64 images needs at least that many"),
      bigBatch.stderr,
    );
    assert(!/step \d+\/2/.test(bigBatch.stderr), "it trained before refusing");
    const ablate = await run("ablate", [
      "--preset",
      "tiny",
      "--steps",
      "2",
      "--data",
      `${dir}/imgs`,
      "--backend",
      "cpu",
      "--out",
      `${dir}/study`,
    ]);
    assertEquals(ablate.code, 1, ablate.stderr);
    assert(
      /the 10-shot probe need at least 16 training images and 10 of every class; .* has 24, 8 in its smallest class/
        .test(ablate.stderr),
      ablate.stderr,
    );
    assert(!(await Deno.stat(`${dir}/study`).then(() => true, () => false)), "the study folder was made");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
