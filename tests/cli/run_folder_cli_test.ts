// A run folder you can look into, from the command line: pretrain writes config.json (how the run
// was started) and rows with wall-clock time; Ctrl-C then --resume appends a resume record and
// `elapsed` keeps counting; `deno task plot` draws the run (SVG or PNG by the extension) and says
// clearly what is wrong with a folder it cannot draw.
import { assert, assertEquals } from "../_assert.ts";
import { runCli } from "../_cli.ts";
import { writeImageFolder } from "./_image_folder.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function spawnPretrain(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}lib/cli/pretrain.ts`, ...args],
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Wait until the run has `n` rows, then send `signal`; the process's exit code and stderr. */
async function stopAfter(child: Deno.ChildProcess, run: string, n: number, signal: Deno.Signal) {
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      if ((await rows(run)).length >= n) break;
    } catch { /* not written yet */ }
  }
  child.kill(signal);
  const out = await child.output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

async function rows(dir: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(`${dir}/metrics.jsonl`);
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

Deno.test("cli pretrain: config.json and timed rows; Ctrl-C, --resume appends a record and elapsed keeps counting; plot draws it", async () => {
  const root = await Deno.makeTempDir({ prefix: "ijepa-runfolder-" });
  try {
    const run = `${root}/run`;
    const args = [
      "--preset",
      "tiny",
      "--steps",
      "60",
      "--batch",
      "8",
      "--checkpoint-every",
      "0",
      "--probe=false",
      "--data",
      "fashion-mnist-subset",
      "--backend",
      "cpu",
      "--out",
      run,
    ];
    const before = Date.now();
    // interrupt as a user would (Ctrl-C) once a few steps are in
    const first = await stopAfter(spawnPretrain(args), run, 3, "SIGINT");
    const firstErr = first.stderr;
    assertEquals(first.code, 130, firstErr);
    // the hint to continue keeps --probe=false; the data needs no flag (the run's is reused)
    assert(
      firstErr.includes(`Continue with: deno task pretrain --resume --out ${run} --probe=false`),
      firstErr,
    );
    // the progress line's ETA is in the notebooks' format (1.2s, 42s, 3m05s), not raw seconds
    assert(/ETA (\d\.\ds|\d{2}s|\d+m\d{2}s|\d+h\d{2}m)/.test(firstErr), firstErr);

    const config = JSON.parse(await Deno.readTextFile(`${run}/config.json`));
    assertEquals(config.argv, args);
    assertEquals([config.preset, config.seed, config.trainer.steps, config.trainer.batchSize], [
      "tiny",
      0,
      60,
      8,
    ]);
    assertEquals([config.model.width, config.model.imageSize], [32, 16]);
    assertEquals(config.versions.deno, Deno.version.deno);
    assert(/^\d+\.\d+\.\d+/.test(config.versions.tfjs), config.versions.tfjs);
    assert(config.backend.startsWith("backend: cpu"), config.backend);
    assert(config.data.startsWith("Fashion-MNIST, shipped subset"), config.data);
    const started = Date.parse(config.started);
    assert(started >= before - 1000 && started <= Date.now(), config.started);
    assertEquals(config.resumes, []);

    const partial = await rows(run);
    const k = partial.length;
    assert(k >= 3 && k < 60, `interrupted after ${k} steps`);
    for (const r of partial) assert(Number.isFinite(Date.parse(r.time as string)), `row without time: ${r}`);

    // a resume keeps the run's settings: another value is refused before the backend starts, the same passes
    const clash = await runCli("pretrain", [
      "--resume",
      "--out",
      run,
      "--steps",
      "9",
      "--preset",
      "tiny",
      "--seed=0",
      "--backend",
      "cpu",
    ]);
    assertEquals(clash.code, 2, clash.stderr);
    assert(
      /--resume continues the run .*; --steps 9 \(the run: 60\) would change them/.test(clash.stderr),
      clash.stderr,
    );
    assert(!/--preset|--seed|^(backend|data): /m.test(clash.stderr), clash.stderr); // checked from config.json
    assertEquals((await rows(run)).length, k, "the refused resume trained");

    // the data as the run recorded it: a spec that reads the same from anywhere, and its split sizes
    assertEquals([config.dataSpec, config.dataCounts], ["fashion-mnist-subset", {
      train: 10000,
      test: 2000,
    }]);
    // other data than the run trained on is refused before the backend starts, and leaves no resume record
    await writeImageFolder(`${root}/imgs`, 3);
    const otherData = await runCli("pretrain", [
      "--resume",
      "--out",
      run,
      "--data",
      `${root}/imgs`,
      "--backend",
      "cpu",
    ]);
    assertEquals(otherData.code, 2, otherData.stderr);
    assert(
      otherData.stderr.includes(
        `--resume: the run trained on fashion-mnist-subset; --data ${root}/imgs is ${await Deno.realPath(
          `${root}/imgs`,
        )}; ` +
          "resume without --data, or start a new run",
      ),
      otherData.stderr,
    );
    assert(!/^(backend|data): /m.test(otherData.stderr), otherData.stderr);
    // the same data by another name passes the check (the shipped subset's folder, spelled as a path)
    const sameData = await runCli("pretrain", [
      "--resume",
      "--out",
      run,
      "--data",
      `${ROOT}data/fashion-mnist/`,
      "--steps",
      "9",
    ]);
    assertEquals(sameData.code, 2, sameData.stderr);
    assert(sameData.stderr.includes("--steps 9 (the run: 60) would change them"), sameData.stderr); // not the data
    assertEquals(JSON.parse(await Deno.readTextFile(`${run}/config.json`)).resumes, []);

    // without --data the run's own data set is used, whatever the default would be now (IJEPA_DATA
    // points elsewhere); a SIGTERM (a scheduler's stop) saves a checkpoint too
    const resumeArgs = ["--resume", "--out", run, "--backend", "cpu", "--probe=false"];
    const termed = await stopAfter(
      spawnPretrain(resumeArgs, { IJEPA_DATA: `${root}/imgs` }),
      run,
      k + 3,
      "SIGTERM",
    );
    assertEquals(termed.code, 143, termed.stderr); // the shell's code for SIGTERM
    assert(termed.stderr.includes("SIGTERM: saving a checkpoint before exiting"), termed.stderr);
    assert(termed.stderr.includes("data: Fashion-MNIST, shipped subset"), termed.stderr);
    const k2 = (await rows(run)).length;
    assert(k2 >= k + 3 && k2 < 60, `stopped after ${k2} steps`);
    assert(termed.stderr.includes(`stopped at step ${k2};`), termed.stderr);
    const resumed = await runCli("pretrain", resumeArgs);
    assertEquals(resumed.code, 0, resumed.stderr);
    assert(
      resumed.stderr.includes(`resuming ${run}/checkpoint.safetensors at step ${k2}/60`),
      resumed.stderr,
    );
    const again = JSON.parse(await Deno.readTextFile(`${run}/config.json`));
    assertEquals(again.started, config.started, "the start record is kept");
    assertEquals(again.argv, args);
    assertEquals(again.resumes.map((r: { argv: string[]; step: number }) => [r.argv, r.step]), [
      [resumeArgs, k],
      [resumeArgs, k2],
    ]);
    assert(Date.parse(again.resumes[0].time) >= started, again.resumes[0].time);

    const all = await rows(run);
    assertEquals(all.map((r) => r.step), Array.from({ length: 60 }, (_, i) => i + 1));
    for (let i = 1; i < all.length; i++) {
      assert(
        (all[i].elapsed as number) > (all[i - 1].elapsed as number),
        `elapsed went back at step ${all[i].step}: ${all[i - 1].elapsed} -> ${all[i].elapsed}`,
      );
      assert(Date.parse(all[i].time as string) >= Date.parse(all[i - 1].time as string), "time went back");
    }

    // the plot: default RUN/plot.svg, and PNG when the name asks for it
    const svgRun = await runCli("plot", [run]);
    assertEquals(svgRun.code, 0, svgRun.stderr);
    const svg = await Deno.readTextFile(`${run}/plot.svg`);
    assert(svg.startsWith("<svg"), svg.slice(0, 80));
    for (
      const text of [
        "Training loss",
        "Target-feature spread",
        "Throughput",
        "images / s",
        "target std",
        "step",
      ]
    ) {
      assert(svg.includes(`>${text}`) || svg.includes(`${text}<`), `no "${text}" in the figure`);
    }
    // the figure's words, tags removed (a long subtitle wraps onto several <text> lines)
    const words = svg.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ");
    assert(
      words.includes(`resumed at step ${k}, ${k2}`),
      `the resumes are not named: ${words.slice(0, 300)}`,
    );
    assertEquals((svg.match(/stroke-dasharray="4,3"/g) ?? []).length, 6, "a marker per resume and panel");
    const pngRun = await runCli("plot", [run, "--out", `${root}/run.png`]);
    assertEquals(pngRun.code, 0, pngRun.stderr);
    const png = await Deno.readFile(`${root}/run.png`);
    assertEquals([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
    assert(png.length > 20000, `PNG of ${png.length} bytes`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("cli plot: an old run (rows without time, no config.json) draws; clear errors for what it cannot draw", async () => {
  const root = await Deno.makeTempDir({ prefix: "ijepa-plot-" });
  try {
    // rows as pretrain wrote them before: no `time`, `elapsed` restarting at a resume, no std measured
    const old = `${root}/old`;
    await Deno.mkdir(old);
    const lines = Array.from(
      { length: 12 },
      (_, i) =>
        JSON.stringify({
          step: i + 1,
          steps: 12,
          loss: 0.5 - 0.02 * i,
          imgPerSec: 30 + i,
          elapsed: (i % 6) + 1,
        }),
    );
    await Deno.writeTextFile(`${old}/metrics.jsonl`, lines.join("\n") + "\n");
    const ok = await runCli("plot", [old, "--out", `${root}/old.svg`]);
    assertEquals(ok.code, 0, ok.stderr);
    const svg = await Deno.readTextFile(`${root}/old.svg`);
    assert(svg.includes("Training loss") && svg.includes("Throughput"), "panels missing");
    assert(svg.includes("not measured in this run"), "the spread panel does not say why it is empty");
    assert(svg.includes("12s of training"), "the restarted segments are not added up (6 s + 6 s)");

    const empty = `${root}/empty`;
    await Deno.mkdir(empty);
    const cases: [string[], RegExp][] = [
      [[`${root}/nope`], /plot: .*nope: no such folder; expected a pretrain run folder/],
      [[empty], /plot: .*empty holds no metrics\.jsonl; expected a pretrain run folder/],
      [[old, "--out", `${root}/old.jpg`], /--out .*old\.jpg: expected a file name ending in \.svg or \.png/],
      [[old, "--out", `${root}/no-dir/old.png`], /the folder .*no-dir does not exist/],
    ];
    for (const [args, says] of cases) {
      const r = await runCli("plot", args);
      assertEquals(r.code, 2, r.stderr);
      assert(says.test(r.stderr), r.stderr);
    }
    await Deno.writeTextFile(`${empty}/metrics.jsonl`, "");
    const e = await runCli("plot", [empty]);
    assertEquals(e.code, 2, e.stderr);
    assert(/metrics\.jsonl is empty: the run has not finished a step yet/.test(e.stderr), e.stderr);
    assert(!/os error/.test(e.stderr), e.stderr);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("cli pretrain: a batch larger than the training split is refused before the run folder is made", async () => {
  const root = await Deno.makeTempDir({ prefix: "ijepa-runfolder-" });
  try {
    await writeImageFolder(`${root}/imgs`, 3);
    const r = await runCli("pretrain", [
      ...[
        "--preset",
        "tiny",
        "--batch",
        "64",
        "--data",
        `${root}/imgs`,
        "--backend",
        "cpu",
        "--out",
        `${root}/run`,
      ],
    ]);
    assertEquals(r.code, 2, r.stderr);
    assert(
      /a batch of 64 images needs at least that many training images; the data's training split has (\d+) \(image folder .*\): pass --batch \1 or less/
        .test(r.stderr),
      r.stderr,
    );
    assert(!(await Deno.stat(`${root}/run`).then(() => true, () => false)), "the run folder was made");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
