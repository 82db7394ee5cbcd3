// ablate --nuisance: the study's images get the backgrounds (said on the data line, kept in the study
// folder's name), and a bad spec is refused before anything loads.
import { assert, assertEquals } from "../_assert.ts";
import { runCli } from "../_cli.ts";
import { writeImageFolder } from "./_image_folder.ts";

Deno.test("cli ablate --nuisance: backgrounds behind the objects, named; a bad spec exits 2", async () => {
  const root = await Deno.makeTempDir({ prefix: "ijepa-nuisance-" });
  try {
    await writeImageFolder(`${root}/imgs`, 24);
    const bad = await runCli("ablate", ["--nuisance", "fog:0.5", "--data", `${root}/imgs`]);
    assertEquals(bad.code, 2, bad.stderr);
    assert(
      bad.stderr.includes("KIND one of noise, texture, clutter") && bad.stderr.includes('"fog:0.5"'),
      bad.stderr,
    );
    const r = await runCli("ablate", [
      "--preset",
      "tiny",
      "--data",
      `${root}/imgs`,
      "--backend",
      "cpu",
      "--steps",
      "2",
      "--probe-seeds",
      "1",
      "--nuisance",
      "noise:0.5",
    ], { cwd: root });
    assertEquals(r.code, 0, r.stderr);
    assert(r.stderr.includes("with noise backgrounds at strength 0.5"), r.stderr);
    const saved = JSON.parse(
      await Deno.readTextFile(`${root}/runs/ablate-targets-tiny-noise0.5/results.json`),
    );
    assert(saved !== null && typeof saved === "object", "results.json");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
