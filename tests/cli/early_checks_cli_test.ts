// Input and output checked before any work: figure files take the format of their extension, a
// destination that cannot be written is refused up front, flag typos get a suggestion, and the
// help texts and errors say each thing once.
import { assert, assertEquals } from "../_assert.ts";
import { runCli } from "../_cli.ts";

/** Nothing heavy started: no backend line, no data line. */
function noWork(stderr: string): boolean {
  return !/^(backend|data): /m.test(stderr);
}

Deno.test("cli masks: the figure's format follows the extension; a bad name or a missing folder is refused before sampling", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa-figfile-" });
  try {
    const base = ["--grid", "4", "--batch", "4", "--batches", "2", "--png-count", "4"];
    const svg = await runCli("masks", [...base, "--png", `${dir}/m.svg`]);
    assertEquals(svg.code, 0, svg.stderr);
    assert((await Deno.readTextFile(`${dir}/m.svg`)).startsWith("<svg"), "not SVG text");
    const png = await runCli("masks", [...base, "--png", `${dir}/m.PNG`]);
    assertEquals(png.code, 0, png.stderr);
    assertEquals([...(await Deno.readFile(`${dir}/m.PNG`)).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);

    const bad = await runCli("masks", [...base, "--png", `${dir}/m.jpg`]);
    assertEquals(bad.code, 2, bad.stderr);
    assert(
      /--png .*m\.jpg: expected a file name ending in \.svg or \.png .*got "\.jpg"/.test(bad.stderr),
      bad.stderr,
    );
    const missing = await runCli("masks", [...base, "--png", `${dir}/no-dir/m.png`]);
    assertEquals(missing.code, 2, missing.stderr);
    assert(/the folder .*no-dir does not exist; create it first/.test(missing.stderr), missing.stderr);
    assertEquals(missing.stdout, "", "the statistics ran before the check");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: destinations and inputs of the training tasks are checked before the backend starts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa-early-" });
  try {
    await Deno.writeTextFile(`${dir}/a-file`, "x");
    const cases: [string, string[], RegExp][] = [
      ["pretrain", ["--out", `${dir}/a-file`], /pretrain: --out .*a-file is a file; expected a folder/],
      ["pretrain", ["--out", `${dir}/a-file/run`], /a-file is a file, so the folder cannot be made/],
      [
        "pretrain",
        ["--resume", "--out", `${dir}/none`],
        /--resume: no checkpoint at .*none\/checkpoint\.safetensors/,
      ],
      [
        "pretrain",
        ["--data", `${dir}/no-data`],
        /--data .*no-data: no such folder; expected a dataset folder/,
      ],
      [
        "probe",
        ["--pretrained=false", "--png", `${dir}/p.gif`],
        /expected a file name ending in \.svg or \.png/,
      ],
      ["probe", ["--weights", `${dir}/w.safetensors`], /weights file .*w\.safetensors not found/],
      ["ablate", ["--png", `${dir}/no-dir/a.svg`], /the folder .*no-dir does not exist/],
      ["ablate", ["--model", "depth=x"], /depth/],
      ["ablate", ["--model", "sigregWeight=-1"], /sigregWeight must be a finite number >= 0/],
      ["ablate", ["--ema", "0.9999"], /--ema expects START,END, two momenta in \[0, 1\]/],
      ["ablate", ["--arms", "pixels,rand"], /no arm "rand" in the targets study: expected names among/],
      ["ablate", ["--arms", " , "], /no arm " , " in the targets study/],
      ["recipe", ["--data", `${dir}/a-file`], /--data .*a-file is a file; expected a dataset folder/],
      [
        "embed",
        ["--weights", `${dir}/w.pth.tar`, "--data", dir, "--out", `${dir}/f.npy`],
        /--weights .*: no such file/,
      ],
      [
        "embed",
        ["--weights", `${dir}/a-file`, "--data", dir, "--out", `${dir}/f.txt`],
        /ending in \.safetensors or \.npy/,
      ],
      ["make_pretrained", ["--run", dir], /expected .*final\.safetensors, not found/],
      ["make_subset", ["--data", `${dir}/none`], /make-subset: --data .*none: no such folder/],
    ];
    for (const [task, args, says] of cases) {
      const r = await runCli(task, args);
      assertEquals(r.code, 2, `${task} ${args.join(" ")}: ${r.stderr}`);
      assert(says.test(r.stderr), `${task}: ${r.stderr}`);
      assert(noWork(r.stderr), `${task}: work started: ${r.stderr}`);
      assert(!/os error/.test(r.stderr), `${task}: raw error: ${r.stderr}`);
    }
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a-file"], "something was created");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a mistyped flag gets the closest known one, in every task", async () => {
  const typos: [string, string, string][] = [
    ["pretrain", "--stpes", "--steps"],
    ["probe", "--seesd", "--seeds"],
    ["ablate", "--studdy", "--study"],
    ["recipe", "--config", "--configs"],
    ["masks", "--gird", "--grid"],
    ["inspect", "--hedas", "--heads"],
    ["embed", "--weight", "--weights"],
    ["make_pretrained", "--rnu", "--run"],
    ["make_subset", "--seeed", "--seed"],
    ["plot", "--otu", "--out"],
  ];
  for (const [task, typo, want] of typos) {
    const r = await runCli(task, [typo, "1"]);
    assertEquals(r.code, 2, `${task}: ${r.stderr}`);
    assert(r.stderr.includes(`unknown flag ${typo}; did you mean ${want}?`), `${task}: ${r.stderr}`);
  }
});

Deno.test("cli: help and errors say each thing once and name the task as it is run", async () => {
  const readout = await runCli("probe", ["--readout", "foo"]);
  assertEquals(readout.code, 2, readout.stderr);
  assertEquals(
    readout.stderr.trim(),
    'error: probe: --readout expects avgpool, last4, pool2x2 or a comma list of them, got "foo"',
  );
  const subset = await runCli("make_subset", ["--help"]);
  assertEquals(subset.code, 0, subset.stderr);
  assert(subset.stdout.startsWith("deno task make-subset "), subset.stdout);
  assert(!subset.stdout.includes("make_subset"), subset.stdout);
  const recipe = await runCli("recipe", ["--help"]);
  assertEquals(recipe.code, 0, recipe.stderr);
  const data = recipe.stdout.split("\n  --").find((entry) => entry.startsWith("data "))!;
  assertEquals((data.match(/default/g) ?? []).length, 1, data);
  const plot = await runCli("plot", ["--help"]);
  assertEquals(plot.code, 0, plot.stderr);
  assert(plot.stdout.startsWith("deno task plot RUN [flags]"), plot.stdout);
});
