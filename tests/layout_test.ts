// The layout's rules (README "Layout"), checked on the source: lib/ folders import only downward
// (no circles), no hand-written file over 400 lines, CLI files export no logic, and tests import
// no CLI task file.
import { assert, assertEquals } from "./_assert.ts";
import { dirname, join, normalize } from "node:path";
import { code, ROOT, tsFiles } from "./_source.ts";

/** Lower folders first; a folder may import only from folders of a lower rank. */
const RANK: Record<string, number> = {
  engine: 0,
  data: 1,
  masks: 1,
  model: 2,
  io: 3,
  train: 4,
  eval: 5,
  inside: 5,
  viz: 6,
  cli: 7,
};
const GENERATED = new Set(["lib/engine/simd/kernels_wasm.ts"]);

/** Relative imports of a file's code (JSDoc examples left out), as repo paths. */
function imports(file: string): string[] {
  // `import x from "./a.ts"`, `export { x } from "./a.ts"`, `import "./a.ts"`, `await import("./a.ts")`
  const re =
    /^\s*(?:import|export)\b[^;]*?from\s+"(\.[^"]+)"|^\s*import\s+"(\.[^"]+)"|import\(\s*"(\.[^"]+)"\s*\)/gm;
  return [...code(file).matchAll(re)].map((m) => normalize(join(dirname(file), m[1] ?? m[2] ?? m[3])));
}

const LIB = tsFiles("lib");

Deno.test("layout: lib folders import only from lower folders, and nothing imports in a circle", () => {
  const upward: string[] = [];
  const graph = new Map<string, string[]>();
  for (const f of LIB) {
    const deps = imports(f).filter((d) => d.startsWith("lib/"));
    graph.set(f, deps);
    const from = f.split("/")[1];
    for (const d of deps) {
      const to = d.split("/")[1];
      assert(to in RANK && from in RANK, `${f}: folder "${from}" or "${to}" has no rank`);
      if (to !== from && RANK[to] >= RANK[from]) upward.push(`${f} -> ${d}`);
    }
  }
  assertEquals(upward, [], "imports that go up or sideways");
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    state.set(f, "open");
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === "open") cycles.push([...path, f, d].slice(path.indexOf(d) + 1).join(" -> "));
      else if (!state.has(d)) visit(d, [...path, f]);
    }
    state.set(f, "done");
  };
  for (const f of LIB) if (!state.has(f)) visit(f, []);
  assertEquals(cycles, [], "import circles");
});

Deno.test("layout: no hand-written lib file is over 400 lines; every folder has a mod.ts", () => {
  const long = LIB.filter((f) => !GENERATED.has(f))
    .map((f) => [f, Deno.readTextFileSync(join(ROOT, f)).split("\n").length - 1] as const)
    .filter(([, n]) => n > 400);
  assertEquals(long, []);
  for (const folder of Object.keys(RANK).filter((f) => f !== "cli")) {
    assert(LIB.includes(`lib/${folder}/mod.ts`), `lib/${folder}/mod.ts is missing`);
  }
  const top = Deno.readTextFileSync(join(ROOT, "mod.ts")).split("\n").length;
  assert(top < 60, `mod.ts has ${top} lines`);
});

Deno.test("layout: CLI files export no logic, and tests import no CLI task file", () => {
  const exporting = LIB.filter((f) => f.startsWith("lib/cli/") && f !== "lib/cli/args.ts")
    .filter((f) => /^export /m.test(code(f)));
  assertEquals(exporting, []);
  const tests = tsFiles("tests");
  const reaching = tests.flatMap((t) =>
    imports(t).filter((d) => d.startsWith("lib/cli/") && d !== "lib/cli/args.ts").map((d) => `${t} -> ${d}`)
  );
  assertEquals(reaching, []);
});
