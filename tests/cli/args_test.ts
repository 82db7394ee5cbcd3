// Tests of lib/cli/args.ts: the shared --backend and --data flags, and usage errors from lib checks.
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { BACKEND_NAMES } from "../../lib/engine/backend.ts";
import {
  asUsage,
  BACKEND_FLAG,
  type CliSpec,
  DATA_FLAG,
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
