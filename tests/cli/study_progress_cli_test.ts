// Progress in ablate and recipe: a line per arm at its first and last step (throttled in between),
// with the arm's place, step, loss, speed and the whole study's ETA on stderr; none with --json.
import { assert, assertEquals } from "../_assert.ts";
import { runCli } from "../_cli.ts";
import { writeImageFolder } from "./_image_folder.ts";

// arm i/n NAME: step s/S loss 0.1234 [std 0.123] 12.3 img/s; study ETA [>= ]1.2s
const LINE =
  /^arm (\d+)\/(\d+) (.+?): step (\d+)\/(\d+) loss \d\.\d{4}( std \d\.\d{3})? [\d.]+ img\/s; study ETA (>= )?(\d\.\ds|\d{2}s|\d+m\d{2}s|\d+h\d{2}m)$/;

function progressLines(stderr: string): RegExpMatchArray[] {
  return stderr.split("\n").map((l) => LINE.exec(l)).filter((m): m is RegExpExecArray => m !== null);
}

Deno.test("cli ablate and recipe: per-arm progress with a study ETA, throttled; quiet with --json", async () => {
  const root = await Deno.makeTempDir({ prefix: "ijepa-progress-" });
  try {
    // 64 per class: enough for recipe's 50-shot setting after the 20% test split
    await writeImageFolder(`${root}/imgs`, 64);
    const common = ["--preset", "tiny", "--data", `${root}/imgs`, "--backend", "cpu"];
    const ablate = await runCli("ablate", [
      ...common,
      "--steps",
      "3",
      "--probe-seeds",
      "1",
      "--out",
      `${root}/abl`,
    ]);
    assertEquals(ablate.code, 0, ablate.stderr);
    const lines = progressLines(ablate.stderr);
    // two arms (targets study, one seed), each with its first and last step; step 2 is throttled away
    assertEquals(
      lines.map((m) => [m[1], m[2], m[3], m[4], m[5]].join(" ")),
      [
        "1 2 representation (I-JEPA) / seed 0 1 3",
        "1 2 representation (I-JEPA) / seed 0 3 3",
        "2 2 pixels / seed 0 1 3",
        "2 2 pixels / seed 0 3 3",
      ],
      ablate.stderr,
    );
    // before the first arm is finished, later arms are counted by their training alone: a lower bound
    assertEquals(lines[0][7], ">= ", lines[0][0]);
    assertEquals(lines[3][8], "0.0s", lines[3][0]);

    const quiet = await runCli("ablate", [
      ...common,
      "--steps",
      "3",
      "--probe-seeds",
      "1",
      "--out",
      `${root}/abl-json`,
      "--json",
    ]);
    assertEquals(quiet.code, 0, quiet.stderr);
    assertEquals(progressLines(quiet.stderr), []);

    const recipe = await runCli("recipe", [...common, "--steps", "2", "--configs", "official,variance"]);
    assertEquals(recipe.code, 0, recipe.stderr);
    assertEquals(
      progressLines(recipe.stderr).map((m) => [m[1], m[2], m[3], m[4], m[5]].join(" ")),
      [
        "1 2 official / seed 0 1 2",
        "1 2 official / seed 0 2 2",
        "2 2 variance / seed 0 1 2",
        "2 2 variance / seed 0 2 2",
      ],
      recipe.stderr,
    );
    assert(recipe.stdout.includes("tiny preset, 2 steps"), recipe.stdout);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
