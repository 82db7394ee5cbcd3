// The package as JSR would take it: every entry of deno.json's "exports" passes `deno doc --lint`,
// and `deno publish --dry-run` passes (no slow types) with the files the library needs and none of
// the development ones. Both tools run as subprocesses, as a user would run them.
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { code, ROOT, tsFiles } from "./_source.ts";

/**
 * The one kind of doc-lint error allowed: a public signature naming a type of an npm dependency
 * (tfjs tensors, Observable Plot's options). deno doc counts those as private because the package
 * does not re-export them; re-exporting them drags in tfjs's own declarations, dozens of them
 * without JSDoc, which we cannot fix. Every other problem, in any entry, fails the test.
 */
const NPM_TYPES = new Set([
  "Tensor",
  "Tensor1D",
  "Tensor2D",
  "Tensor3D",
  "Tensor4D",
  "Scalar",
  "Variable",
  "NamedTensorMap",
  "PlotOptions",
]);

const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));

async function run(args: string[]): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  // Warnings about @types/node's own references are noise from a dependency; keep the rest.
  const output = (dec.decode(out.stdout) + dec.decode(out.stderr)).split("\n")
    .filter((l) => !/^Warning Failed resolving types|^ {4}at file:.*node_modules/.test(l)).join("\n");
  return { code: out.code, output };
}

Deno.test("package: deno.json names the package, its version, licence and entries", () => {
  assert(
    /^@[a-z0-9-]+\/[a-z0-9-]+$/.test(config.name),
    `expected a JSR name @scope/name, got ${config.name}`,
  );
  assert(/^\d+\.\d+\.\d+$/.test(config.version), `expected a semver version, got ${config.version}`);
  assertEquals(config.license, "MIT");
  assertEquals(config.exports["."], "./mod.ts");
  for (const [entry, path] of Object.entries(config.exports) as [string, string][]) {
    assert(Deno.statSync(join(ROOT, path)).isFile, `export "${entry}": ${path} is not a file`);
  }
});

Deno.test("package: deno doc --lint finds nothing but npm types in every exported entry", async () => {
  // The allowance must not hide a type of ours with the same name: any such type (io's safetensors
  // `Tensor`) must be exported by its folder's mod.ts, so references to it are never private.
  const hidden = tsFiles("lib").flatMap((f) =>
    [...NPM_TYPES].filter((t) => new RegExp(`^export (type|interface|class) ${t}\\b`, "m").test(code(f)))
      .filter((t) => {
        const [, folder, ...rest] = f.split("/");
        const from = `from "./${rest.join("/")}"`;
        return !code(`lib/${folder}/mod.ts`).split(";")
          .some((s) => s.includes(from) && new RegExp(`\\btype ${t}\\b`).test(s));
      })
      .map((t) => `${f}: ${t}`)
  );
  assertEquals(hidden, [], "lib types named like an allowed npm type but not exported");
  for (const [entry, path] of Object.entries(config.exports) as [string, string][]) {
    const { code: rc, output } = await run(["doc", "--lint", path]);
    const errors = [...output.matchAll(/^error\[([\w-]+)\]: (.*)$/gm)].map((m) => ({
      kind: m[1],
      text: m[2],
    }));
    const found = Number(/Found (\d+) documentation lint errors?/.exec(output)?.[1] ?? 0);
    assertEquals(
      errors.length,
      found,
      `${entry}: parsed ${errors.length} errors, deno doc says ${found}\n${output}`,
    );
    const bad = errors.filter((e) =>
      e.kind !== "private-type-ref" ||
      !NPM_TYPES.has(/references private type '([^']+)'/.exec(e.text)?.[1] ?? "")
    );
    assertEquals(bad, [], `deno doc --lint ${path} (export "${entry}"):\n${output}`);
    if (errors.length === 0) assertEquals(rc, 0, `deno doc --lint ${path} exited ${rc}:\n${output}`);
  }
});

Deno.test("package: deno publish --dry-run passes with the runtime files and no development ones", async () => {
  const { code: rc, output } = await run(["publish", "--dry-run", "--allow-dirty"]);
  assertEquals(rc, 0, `deno publish --dry-run exited ${rc}:\n${output}`);
  const root = ROOT.endsWith("/") ? ROOT : `${ROOT}/`;
  const files = [...output.matchAll(/^\s+file:\/\/(\S+) \(/gm)].map((m) => m[1].slice(root.length));
  assert(files.length > 50, `expected the publish file list, got ${files.length} files:\n${output}`);
  const dev = files.filter((f) => /^(tests|notebooks|runs|\.bench|\.ci|node_modules|lib\/cli)\//.test(f));
  assertEquals(dev, [], "development files in the package");
  // Files the library reads at run time beside its modules (import.meta.url).
  for (
    const need of [
      "mod.ts",
      "LICENSE",
      "data/fonts/DejaVuSans.ttf",
      "data/fashion-mnist/train-images-idx3-ubyte.gz",
      "data/pretrained/quick.safetensors",
      "lib/engine/gemm_worker.ts",
      "lib/viz/run_notebook.py",
    ]
  ) assert(files.includes(need), `${need} missing from the package`);
});
