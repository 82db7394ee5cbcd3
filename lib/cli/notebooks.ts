/**
 * `deno task notebooks [--ci] [--out DIR] [FILES...]`: execute the notebooks headlessly with the Deno
 * Jupyter kernel and write their outputs back (in place, or into `--out DIR`).
 *
 * Each notebook is first type-checked (the kernel does not type-check: its code cells are joined into
 * one temporary module and given to `deno check`), then run cell by cell through
 * `lib/viz/run_notebook.py` (jupyter_client under Debian's `/usr/bin/python3`). That helper exists
 * because of a Deno 2.9.6 kernel bug: some display outputs arrive after the kernel reports a cell
 * idle, so `jupyter nbconvert --execute` drops outputs in about 5-15% of runs; the helper keeps
 * reading until 0.25 s of silence (lib/viz/notebook_runner.ts). The first failing cell stops the run with the notebook, the cell
 * index and the error; a failed run never rewrites a notebook in place.
 *
 * `--ci` (or `IJEPA_NOTEBOOK_CI=1`) asks the notebooks for CI-sized settings: each reads
 * `Deno.env.get("IJEPA_NOTEBOOK_CI")` in its parameter cell. `--check` only type-checks (part of
 * `deno task check`).
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type CliSpec, parseFlags, runMain, UsageError } from "./args.ts";
import {
  checkNotebook,
  DEFAULT_PYTHON,
  INSTALL_HINT,
  jupyterStatus,
  listNotebooks,
  type NotebookRun,
  readNotebook,
  runNotebook,
} from "../viz/notebook_runner.ts";

/** The repository root (notebooks/ is the default folder). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

const SPEC: CliSpec = {
  name: "notebooks",
  summary:
    "Execute the notebooks (default: every notebooks/*.ipynb) with the Deno Jupyter kernel and write\n" +
    "their outputs back in place, printing each notebook's wall time. Needs Jupyter: " + INSTALL_HINT,
  positionals: ["[files...]"],
  flags: {
    ci: { type: "bool", help: "CI-sized settings (sets IJEPA_NOTEBOOK_CI=1; also on when that is set)" },
    out: { type: "string", help: "write the executed copies into this folder instead of in place" },
    check: { type: "bool", help: "only type-check the notebooks' code cells (no kernel)" },
    typecheck: { type: "bool", default: true, help: "type-check before running (--typecheck=false to skip)" },
    timeout: { type: "float", min: 0, exclusiveMin: true, default: 3600, help: "seconds a cell may run" },
    python: { type: "string", default: DEFAULT_PYTHON, help: "the Python with jupyter_client and nbformat" },
    json: { type: "bool", help: "print one JSON line with the summary at the end" },
  },
};

/** Split positionals (FILES...) from flags: args.ts takes a fixed number of positionals. */
function splitArgs(args: string[]): { flags: string[]; files: string[] } {
  const flags: string[] = [], files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("-")) {
      files.push(a);
      continue;
    }
    flags.push(a);
    const f = SPEC.flags[a.replace(/^--/, "")];
    if (f && f.type !== "bool" && !a.includes("=") && i + 1 < args.length) flags.push(args[++i]);
  }
  return { flags, files };
}

async function main(args: string[]) {
  const { flags, files } = splitArgs(args);
  const f = parseFlags(flags, SPEC);
  const ci = Boolean(f.ci) || Deno.env.get("IJEPA_NOTEBOOK_CI") === "1";
  const json = Boolean(f.json);
  const paths = files.length > 0 ? files : listNotebooks(join(ROOT, "notebooks"));
  if (paths.length === 0) throw new UsageError("notebooks: no notebooks given and none in notebooks/");
  for (const p of paths) {
    if (!p.endsWith(".ipynb")) throw new UsageError(`notebooks: expected .ipynb files, got "${p}"`);
    readNotebook(p);
  }
  if (f.check) {
    for (const p of paths) {
      const t0 = performance.now();
      await checkNotebook(p);
      if (!json) console.log(`${p}: types ok (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
    if (json) console.log(JSON.stringify({ checked: paths }));
    return;
  }
  const status = await jupyterStatus({ python: f.python as string });
  if (!status.ok) throw new Error(status.message);
  const outDir = f.out as string | undefined;
  if (outDir) await Deno.mkdir(outDir, { recursive: true });
  const runs: NotebookRun[] = [];
  for (const p of paths) {
    if (!json) console.log(`${p}: running${ci ? " (CI settings)" : ""} ...`);
    const r = await runNotebook(p, {
      outDir,
      ci,
      timeout: f.timeout as number,
      python: f.python as string,
      typecheck: f.typecheck as boolean,
      progress: !json,
    });
    runs.push(r);
    if (!json) {
      const slow = r.cellSeconds.indexOf(Math.max(...r.cellSeconds));
      console.log(
        `${p}: ${r.cellSeconds.length} code cells in ${r.seconds.toFixed(1)} s ` +
          `(slowest: code cell ${slow + 1}, ${r.cellSeconds[slow].toFixed(1)} s) -> ${r.written}`,
      );
    }
  }
  if (json) {
    console.log(JSON.stringify({
      ci,
      notebooks: runs.map((r) => ({ notebook: r.notebook, seconds: r.seconds, written: r.written })),
    }));
  }
}

if (import.meta.main) runMain(main);
