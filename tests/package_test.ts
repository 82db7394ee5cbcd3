// The package as JSR would take it: every entry of deno.json's "exports" passes `deno doc --lint`,
// and `deno publish --dry-run` passes (no slow types) with the files the library needs and none of
// the development ones. Both tools run as subprocesses, as a user would run them.
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { ROOT } from "./_source.ts";
import type * as tf from "@tensorflow/tfjs";
import type * as Plot from "@observablehq/plot";
import type * as pkg from "../mod.ts";

/**
 * The dependencies' types the public API names, each exported by the package under the same name as
 * a documented alias (lib/engine/tensor_types.ts, lib/viz/render.ts), so `deno doc` finds no private
 * type in our signatures. Re-exporting tfjs's own declarations instead would drag dozens of them,
 * without JSDoc, into the lint.
 */
const ALIASES = {
  Tensor: "tf.Tensor",
  Scalar: "tf.Scalar",
  Tensor1D: "tf.Tensor1D",
  Tensor2D: "tf.Tensor2D",
  Tensor3D: "tf.Tensor3D",
  Tensor4D: "tf.Tensor4D",
  Variable: "tf.Variable",
  NamedTensorMap: "tf.NamedTensorMap",
  PlotOptions: "Plot.PlotOptions",
} as const;

// Compile-time: each alias is exactly the dependency's type, both ways, so values pass between this
// package and tfjs (or Plot) unchanged. `deno test` type-checks this file; a drift fails it.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same: Record<keyof typeof ALIASES, true> = {
  Tensor: true satisfies Same<pkg.Tensor, tf.Tensor>,
  Scalar: true satisfies Same<pkg.Scalar, tf.Scalar>,
  Tensor1D: true satisfies Same<pkg.Tensor1D, tf.Tensor1D>,
  Tensor2D: true satisfies Same<pkg.Tensor2D, tf.Tensor2D>,
  Tensor3D: true satisfies Same<pkg.Tensor3D, tf.Tensor3D>,
  Tensor4D: true satisfies Same<pkg.Tensor4D, tf.Tensor4D>,
  Variable: true satisfies Same<pkg.Variable, tf.Variable>,
  NamedTensorMap: true satisfies Same<pkg.NamedTensorMap, tf.NamedTensorMap>,
  PlotOptions: true satisfies Same<pkg.PlotOptions, Plot.PlotOptions>,
};

const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));

async function run(args: string[]): Promise<{ code: number; output: string; stdout: string }> {
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
  return { code: out.code, output, stdout: dec.decode(out.stdout) };
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

Deno.test("package: deno doc --lint finds nothing in any exported entry", async () => {
  for (const [entry, path] of Object.entries(config.exports) as [string, string][]) {
    const { code: rc, output } = await run(["doc", "--lint", path]);
    const errors = [...output.matchAll(/^error\[([\w-]+)\]: (.*)$/gm)].map((m) => `${m[1]}: ${m[2]}`);
    assertEquals(errors, [], `deno doc --lint ${path} (export "${entry}"):\n${output}`);
    assert(
      !/documentation lint error/.test(output),
      `deno doc --lint ${path} reports errors it did not list:\n${output}`,
    );
    assertEquals(rc, 0, `deno doc --lint ${path} exited ${rc}:\n${output}`);
  }
});

Deno.test("package: the dependencies' types in our signatures are exported, documented aliases", async () => {
  assertEquals(Object.keys(same).sort(), Object.keys(ALIASES).sort());
  const { code: rc, output, stdout } = await run(["doc", "--json", "mod.ts"]);
  assertEquals(rc, 0, `deno doc --json mod.ts exited ${rc}:\n${output.slice(0, 2000)}`);
  const doc = JSON.parse(stdout);
  type Decl = { kind: string; jsDoc?: { doc?: string }; def?: { tsType?: { repr?: string } } };
  const symbols: { name: string; declarations: Decl[] }[] = Object.values(
    doc.nodes as Record<string, { symbols: { name: string; declarations: Decl[] }[] }>,
  )[0].symbols;
  for (const [name, repr] of Object.entries(ALIASES)) {
    const decls = symbols.filter((s) => s.name === name).flatMap((s) => s.declarations);
    assertEquals(decls.length, 1, `mod.ts should export one declaration named ${name}`);
    const [d] = decls;
    assertEquals([d.kind, d.def?.tsType?.repr], ["typeAlias", repr], `${name} should alias ${repr}`);
    assert((d.jsDoc?.doc ?? "").length > 20, `${name} has no JSDoc worth the name: ${d.jsDoc?.doc}`);
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
