// Tests of lib/cli/args.ts: the shared --backend and --data flags, usage errors from lib checks, flag
// typos, and the up-front checks of output files, output folders and --data.
import { assert, assertEquals, assertRejects, assertThrows } from "../_assert.ts";
import { BACKEND_NAMES, parseBackendName } from "../../lib/engine/backend.ts";
import {
  asUsage,
  BACKEND_FLAG,
  checkDataFlag,
  checkOutputFile,
  checkOutputFolder,
  type CliSpec,
  closestFlag,
  DATA_FLAG,
  editDistance,
  flagGiven,
  helpText,
  parseFlags,
  UsageError,
} from "../../lib/cli/args.ts";

const SPEC: CliSpec = {
  name: "demo",
  summary: "a demo task",
  flags: {
    backend: BACKEND_FLAG,
    data: DATA_FLAG,
    recipe: { ...DATA_FLAG, default: "fashion-mnist-subset" },
  },
};

Deno.test("args: --backend takes every backend name and nothing else", () => {
  for (const name of BACKEND_NAMES) assertEquals(parseFlags(["--backend", name], SPEC).backend, name);
  assertEquals(parseFlags([], SPEC).backend, undefined, "unset: setBackend reads IJEPA_BACKEND, else auto");
  assertThrows(
    () => parseFlags(["--backend", "tpu"], SPEC),
    UsageError,
    `demo: --backend expects one of ${BACKEND_NAMES.join(", ")}, got "tpu"`,
  );
  const help = helpText(SPEC);
  assert(help.includes(`--backend ${BACKEND_NAMES.join("|")}`), help);
});

// The variable's value is passed in, not set: tests run in parallel in one process, and the
// environment is the process's.
Deno.test("args: a bad IJEPA_BACKEND is named as it came, and from where", () => {
  assertThrows(
    () => parseBackendName(undefined, "TPU "),
    Error,
    `unknown backend "TPU" (from IJEPA_BACKEND): expected one of`,
  );
  assertEquals(parseBackendName("cpu", "TPU"), "cpu", "the flag wins over the variable");
  assertThrows(() => parseBackendName("gpu", undefined), Error, `unknown backend "gpu": expected one of`);
  assertEquals(parseBackendName(undefined, " WebGPU"), "webgpu");
  assertEquals(parseBackendName(undefined, " "), "auto", "empty counts as unset");
  assertEquals(parseBackendName(undefined, undefined), "auto");
});

Deno.test("args: --data is free text, unset unless a task sets its own default", () => {
  assertEquals(parseFlags(["--data", "some/dir"], SPEC).data, "some/dir");
  assertEquals(parseFlags([], SPEC).data, undefined);
  assertEquals(parseFlags([], SPEC).recipe, "fashion-mnist-subset");
});

Deno.test("args: asUsage turns a lib check's error into a usage error with the same message", () => {
  assertEquals(asUsage(() => 3), 3);
  assertThrows(
    () =>
      asUsage(() => {
        throw new Error("probe: --shots expects positive integers");
      }),
    UsageError,
    "probe: --shots expects positive integers",
  );
  const mine = new UsageError("already one");
  assertThrows(
    () =>
      asUsage(() => {
        throw mine;
      }),
    UsageError,
    "already one",
  );
});

Deno.test("args: number flags with a minimum are refused at parse time, naming the flag", () => {
  const spec: CliSpec = {
    name: "demo",
    summary: "a demo task",
    flags: {
      steps: { type: "int", min: 1, help: "steps" },
      lr: { type: "float", min: 0, exclusiveMin: true, help: "learning rate" },
    },
  };
  assertEquals(parseFlags(["--steps", "1", "--lr", "0.5"], spec).steps, 1);
  assertThrows(
    () => parseFlags(["--steps", "0"], spec),
    UsageError,
    "--steps expects an integer >= 1, got 0",
  );
  assertThrows(
    () => parseFlags(["--steps", "-4"], spec),
    UsageError,
    "--steps expects an integer >= 1, got -4",
  );
  assertThrows(() => parseFlags(["--lr", "0"], spec), UsageError, "--lr expects a number > 0, got 0");
});

Deno.test("args: a mistyped flag names the closest known one; a far one lists them all", () => {
  const spec: CliSpec = {
    name: "demo",
    summary: "a demo task",
    flags: {
      steps: { type: "int", help: "steps" },
      seed: { type: "int", help: "seed" },
      "batch-size": { type: "int", help: "batch" },
    },
  };
  assertEquals(editDistance("stpes", "steps"), 1, "a swap of neighbours is one edit");
  assertEquals(editDistance("seed", "steps"), 3);
  assertEquals(closestFlag("stpes", ["seed", "steps"]), "steps");
  assertEquals(closestFlag("batchsize", ["batch-size"]), "batch-size");
  assertEquals(closestFlag("x", ["steps"]), undefined, "one letter suggests nothing");
  assertEquals(closestFlag("hepl", []), "help");
  assertThrows(
    () => parseFlags(["--stpes", "3"], spec),
    UsageError,
    "unknown flag --stpes; did you mean --steps?",
  );
  assertThrows(
    () => parseFlags(["--learning-rate=3"], spec),
    UsageError,
    "unknown flag --learning-rate; expected one of --steps, --seed, --batch-size (see --help)",
  );
});

Deno.test("args: output files and folders are checked up front, naming what is wrong", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa-args-out-" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "x");
    const exts = [".svg", ".png"];
    assertEquals(await checkOutputFile("demo", "png", `${dir}/a.SVG`, exts), ".svg");
    assertEquals(await checkOutputFile("demo", "png", `${dir}/a.png`, exts), ".png");
    const refused: [string, string][] = [
      [`${dir}/a.jpg`, `demo: --png ${dir}/a.jpg: expected a file name ending in .svg or .png`],
      [`${dir}/a`, "got no extension"],
      [`${dir}/none/a.png`, `the folder ${dir}/none does not exist; create it first`],
      [`${dir}/file/a.png`, `${dir}/file is not a folder`],
    ];
    for (const [path, says] of refused) {
      await assertRejects(() => checkOutputFile("demo", "png", path, exts), UsageError, says);
    }
    await Deno.mkdir(`${dir}/d.png`);
    await assertRejects(
      () => checkOutputFile("demo", "png", `${dir}/d.png`, exts),
      UsageError,
      "is a folder",
    );

    await checkOutputFolder("demo", "out", `${dir}/new/deeper`); // made later by the task, with parents
    await checkOutputFolder("demo", "out", dir);
    await assertRejects(
      () => checkOutputFolder("demo", "out", `${dir}/file`),
      UsageError,
      "is a file; expected a folder",
    );
    await assertRejects(
      () => checkOutputFolder("demo", "out", `${dir}/file/run`),
      UsageError,
      `${dir}/file is a file, so the folder cannot be made`,
    );
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["d.png", "file"],
      "the checks left files",
    );

    await checkDataFlag("demo", undefined);
    await checkDataFlag("demo", "fashion-mnist-subset");
    await checkDataFlag("demo", dir);
    await assertRejects(() => checkDataFlag("demo", `${dir}/none`), UsageError, "no such folder");
    await assertRejects(
      () => checkDataFlag("demo", `${dir}/file`),
      UsageError,
      "is a file; expected a dataset folder",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("args: flagGiven tells a given flag (either form) from a default", () => {
  const args = ["--shots", "5", "--data=my/imgs", "--probe=false", "--stepsx", "3"];
  assertEquals(["shots", "data", "probe", "steps", "seed"].map((n) => flagGiven(args, n)), [
    true,
    true,
    true,
    false,
    false,
  ]);
});
