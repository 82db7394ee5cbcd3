// `deno task make-pretrained` from a finished run: the weights, the card and its Markdown land
// together, and a run stopped while it probes leaves the files that were there untouched (they are
// written under temporary names and put in place at the end).
import { assert, assertEquals } from "../_assert.ts";
import { runCli } from "../_cli.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("cli make-pretrained: weights and card appear together; stopped while probing, the old ones stay", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa-make-pretrained-" });
  try {
    const common = ["--backend", "wasm"]; // cpu would take a minute to probe
    // two runs of different seeds: the second export would write other weights
    for (const seed of [0, 1]) {
      const train = await runCli("pretrain", [
        ...common,
        ...["--preset", "tiny", "--steps", "2", "--batch", "8", "--seed", String(seed), "--probe=false"],
        ...["--data", "fashion-mnist-subset", "--out", `${dir}/run${seed}`],
      ]);
      assertEquals(train.code, 0, train.stderr);
    }
    const args = (
      run: string,
    ) => [...common, "--run", run, "--out", `${dir}/out`, "--data", "fashion-mnist-subset"];
    // a temporary file that a run killed outright (SIGKILL) left behind
    await Deno.mkdir(`${dir}/out`);
    await Deno.writeTextFile(`${dir}/out/.tiny.safetensors.partial-99999`, "cut short");
    const made = await runCli("make_pretrained", args(`${dir}/run0`));
    assertEquals(made.code, 0, made.stderr);
    const names = (await Array.fromAsync(Deno.readDir(`${dir}/out`))).map((e) => e.name).sort();
    assertEquals(names, ["tiny.json", "tiny.md", "tiny.safetensors"], "temporary files left behind");
    const card = JSON.parse(await Deno.readTextFile(`${dir}/out/tiny.json`));
    const weights = await Deno.readFile(`${dir}/out/tiny.safetensors`);
    assertEquals(card.bytes, weights.length);
    assert(made.stderr.includes(`wrote ${dir}/out/tiny.safetensors`), made.stderr);

    // the other run, stopped once it probes: the files from the first export are as they were
    const before = await Promise.all(names.map((n) => Deno.readFile(`${dir}/out/${n}`)));
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}lib/cli/make_pretrained.ts`, ...args(`${dir}/run1`)],
      env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let seen = "";
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    while (!seen.includes("probing on")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert(seen.includes("probing on"), seen);
    child.kill("SIGTERM");
    await reader.cancel();
    assertEquals((await child.status).success, false, "it finished before the stop");
    const left = (await Array.fromAsync(Deno.readDir(`${dir}/out`))).map((e) => e.name).sort();
    assertEquals(left, names, "the stopped run left temporary files");
    const after = await Promise.all(names.map((n) => Deno.readFile(`${dir}/out/${n}`)));
    names.forEach((n, i) => assertEquals(after[i], before[i], `${n} changed`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
