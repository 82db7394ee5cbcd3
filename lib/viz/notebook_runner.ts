/**
 * Running notebooks headlessly with the Deno Jupyter kernel, the engine of `deno task notebooks`:
 * type-check a notebook's code cells as one module ({@link checkNotebook}), then run it cell by cell
 * through run_notebook.py beside this file (jupyter_client under Debian's `/usr/bin/python3`; it
 * works around a Deno 2.9.6 kernel bug that drops late display outputs) and write the outputs back
 * ({@link runNotebook}).
 *
 * @example
 * ```ts
 * import { notebookCode } from "./notebook_runner.ts";
 * const nb = { cells: [
 *   { cell_type: "markdown", source: "# Title" },
 *   { cell_type: "code", source: ["const a = 1;\n", "a"] },
 *   { cell_type: "code", source: "console.log(a + 1);" },
 * ] };
 * const { code, cellAt } = notebookCode(nb);
 * const line = code.split("\n").indexOf("console.log(a + 1);") + 1;
 * if (cellAt(line)?.cell !== 3) throw new Error("line should map to notebook cell 3");
 * ```
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The commands that install what the runner needs (Debian/Ubuntu). */
export const INSTALL_HINT =
  "apt-get install -y --no-install-recommends jupyter-nbconvert python3-nbclient jupyter-client && deno jupyter --install";

/** The Python that has Debian's Jupyter modules (a pyenv `python3` first on PATH does not). */
export const DEFAULT_PYTHON = "/usr/bin/python3";

/** The Jupyter kernel the notebooks run on (registered by `deno jupyter --install`). */
export const DEFAULT_KERNEL = "deno";

const HELPER = fileURLToPath(new URL("./run_notebook.py", import.meta.url));

/** What {@link jupyterStatus} found. */
export interface JupyterStatus {
  ok: boolean;
  /** What is missing: "python", "jupyter_client", "nbformat", "kernelspec deno". */
  missing: string[];
  /** Where the kernelspec lives, when found. */
  kernelspec?: string;
  /** One line: what is there, or what is missing and how to install it. */
  message: string;
}

/**
 * Whether notebooks can run here: the Python, its Jupyter modules and the Deno kernelspec.
 *
 * @example
 * ```ts
 * import { jupyterStatus } from "./notebook_runner.ts";
 * const s = await jupyterStatus({ python: "/no/such/python3" });
 * if (s.ok || !s.message.includes("apt-get install")) throw new Error(s.message);
 * ```
 */
export async function jupyterStatus(
  opts: { python?: string; kernel?: string } = {},
): Promise<JupyterStatus> {
  const python = opts.python ?? DEFAULT_PYTHON;
  const kernel = opts.kernel ?? DEFAULT_KERNEL;
  const missingMessage = (missing: string[]) =>
    `Jupyter is not ready (missing ${missing.join(", ")}); install it with: ${INSTALL_HINT}`;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(python, {
      args: [HELPER, "probe", "--kernel", kernel],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { ok: false, missing: [`python (${python})`], message: missingMessage([`python (${python})`]) };
    }
    throw e;
  }
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  let probe: { ok: boolean; missing: string[]; kernelspec: string | null };
  try {
    probe = JSON.parse(text);
  } catch {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
    const missing = [`a working ${python} (${err ?? "no output"})`];
    return { ok: false, missing, message: missingMessage(missing) };
  }
  if (!probe.ok) return { ok: false, missing: probe.missing, message: missingMessage(probe.missing) };
  return {
    ok: true,
    missing: [],
    kernelspec: probe.kernelspec ?? undefined,
    message: `Jupyter ready: ${python}, kernel "${kernel}" at ${probe.kernelspec}`,
  };
}

/** The parts of an .ipynb file the runner reads. */
export interface NotebookJson {
  cells: { cell_type: string; source: string | string[] }[];
}

function sourceOf(cell: { source: string | string[] }): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

/**
 * The code cells of a notebook joined into one TypeScript module (what the kernel runs, cell after
 * cell, in one scope), and a map from a line of that module back to the notebook cell (1-based,
 * counting markdown cells) and the line inside it. Relative import specifiers are made absolute
 * against `baseUrl` (the notebook's folder) so the module type-checks from anywhere.
 */
export function notebookCode(
  nb: NotebookJson,
  baseUrl?: URL,
): { code: string; cellAt: (line: number) => { cell: number; line: number } | undefined } {
  const lines: string[] = ["// Code cells of a notebook, joined for `deno check` (generated)."];
  const starts: { from: number; cell: number }[] = [];
  nb.cells.forEach((cell, i) => {
    if (cell.cell_type !== "code") return;
    let src = sourceOf(cell);
    if (baseUrl) {
      src = src.replace(
        /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']*)\2/g,
        (_m, pre: string, q: string, spec: string) => `${pre}${q}${new URL(spec, baseUrl).href}${q}`,
      );
    }
    lines.push(`// --- cell ${i + 1} ---`);
    starts.push({ from: lines.length + 1, cell: i + 1 });
    lines.push(...src.split("\n"));
  });
  lines.push("export {};", "");
  return {
    code: lines.join("\n"),
    cellAt(line: number) {
      const s = starts.findLast((s) => s.from <= line);
      return s ? { cell: s.cell, line: line - s.from + 1 } : undefined;
    },
  };
}

/** The nearest deno.json walking up from `dir` (as the Deno kernel finds it). */
function findConfig(dir: string): string | undefined {
  for (let d = resolve(dir);; d = dirname(d)) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      try {
        if (Deno.statSync(join(d, name)).isFile) return join(d, name);
      } catch { /* keep walking */ }
    }
    if (dirname(d) === d) return undefined;
  }
}

/** A notebook that failed to type-check or to run. */
export class NotebookError extends Error {
  constructor(
    message: string,
    readonly notebook: string,
    /** 1-based notebook cell index (markdown cells counted), when a cell is to blame. */
    readonly cell?: number,
  ) {
    super(message);
    this.name = "NotebookError";
  }
}

/** Read and parse a notebook file, with the path in any error. */
export function readNotebook(path: string): NotebookJson {
  let nb: NotebookJson;
  try {
    nb = JSON.parse(Deno.readTextFileSync(path));
  } catch (e) {
    throw new NotebookError(
      `${path}: expected a Jupyter notebook (.ipynb JSON), got ${(e as Error).message}`,
      path,
    );
  }
  if (!Array.isArray(nb?.cells)) {
    throw new NotebookError(`${path}: expected a notebook with "cells", got none`, path);
  }
  return nb;
}

/**
 * Type-check a notebook's code cells with `deno check` (the Deno kernel runs code without checking
 * types). Throws a {@link NotebookError} whose message maps each error to its notebook cell and line.
 */
export async function checkNotebook(path: string): Promise<void> {
  const nb = readNotebook(path);
  const { code, cellAt } = notebookCode(nb, pathToFileURL(dirname(resolve(path)) + "/"));
  const dir = await Deno.makeTempDir({ prefix: "ijepa-nbcheck-" });
  const file = join(dir, basename(path).replace(/\.ipynb$/, "") + ".ts");
  try {
    await Deno.writeTextFile(file, code);
    const config = findConfig(dirname(resolve(path)));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", ...(config ? ["--config", config] : []), file],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.success) return;
    const fileUrl = pathToFileURL(file).href;
    let first: number | undefined;
    const text = (new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout))
      .replaceAll(
        new RegExp(`${fileUrl.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:(\\d+):(\\d+)`, "g"),
        (_m, l, c) => {
          const at = cellAt(Number(l));
          first ??= at?.cell;
          return at
            ? `${path} cell ${at.cell}, line ${at.line}:${c}`
            : `${path} (joined code line ${l}:${c})`;
        },
      )
      .replace(/\n*Stack backtrace:[\s\S]*$/, "")
      .trim();
    throw new NotebookError(
      `${path}: type check failed${first ? ` (first error in cell ${first})` : ""}:\n${text}\n` +
        `(the code cells are checked as one module, in order; a name declared twice across cells is an error)`,
      path,
      first,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Options of {@link runNotebook}. */
export interface RunOptions {
  /** Folder for the executed copy; default: rewrite the notebook in place. */
  outDir?: string;
  /** CI-sized settings: sets `IJEPA_NOTEBOOK_CI=1` for the kernel. */
  ci?: boolean;
  /** Seconds a cell may run (default 3600). */
  timeout?: number;
  /** Seconds of iopub silence after a cell's idle that end it (default 0.25). */
  silence?: number;
  python?: string;
  kernel?: string;
  /** Type-check the code cells first (default true). */
  typecheck?: boolean;
  /** Print the helper's per-cell progress (default true); otherwise it is kept for the error. */
  progress?: boolean;
  /** More environment for the kernel, e.g. `{ IJEPA_BACKEND: "webgpu" }` (the notebooks' `setBackend()`). */
  env?: Record<string, string>;
}

/** What one notebook run did. */
export interface NotebookRun {
  notebook: string;
  /** The .ipynb written with the outputs. */
  written: string;
  /** Wall time of the run (kernel start to shutdown), seconds. */
  seconds: number;
  /** Seconds per code cell, in order. */
  cellSeconds: number[];
  /** Outputs per code cell, in order. */
  outputs: number[];
}

/**
 * Execute one notebook with the Deno kernel and write its outputs (in place, or into `outDir`).
 * The kernel runs in the notebook's own folder (as in Jupyter), also with `outDir`, so relative
 * imports and paths resolve the same way. Throws a {@link NotebookError} naming the notebook, the
 * cell and the error when a cell fails, times out or the kernel dies.
 */
export async function runNotebook(path: string, opts: RunOptions = {}): Promise<NotebookRun> {
  readNotebook(path);
  if (opts.typecheck ?? true) await checkNotebook(path);
  const out = opts.outDir ? join(opts.outDir, basename(path)) : path;
  const args = [
    HELPER,
    "run",
    resolve(path),
    "--out",
    resolve(out),
    "--kernel",
    opts.kernel ?? DEFAULT_KERNEL,
    "--timeout",
    String(opts.timeout ?? 3600),
    "--silence",
    String(opts.silence ?? 0.25),
  ];
  const env: Record<string, string> = { ...opts.env, ...(opts.ci ? { IJEPA_NOTEBOOK_CI: "1" } : {}) };
  const progress = opts.progress ?? true;
  const child = new Deno.Command(opts.python ?? DEFAULT_PYTHON, {
    args,
    env,
    stdout: "piped",
    stderr: progress ? "inherit" : "piped",
  }).spawn();
  const result = await child.output();
  const stdout = new TextDecoder().decode(result.stdout).trim();
  const stderr = progress ? "" : new TextDecoder().decode(result.stderr).trim();
  // deno-lint-ignore no-explicit-any
  let r: any;
  try {
    r = JSON.parse(stdout.split("\n").at(-1) ?? "");
  } catch {
    throw new NotebookError(
      `${path}: the runner (${
        opts.python ?? DEFAULT_PYTHON
      } ${HELPER}) exited ${result.code} without a result` +
        `${stderr ? `:\n${stderr.split("\n").slice(-15).join("\n")}` : ""}`,
      path,
    );
  }
  if (!r.ok) {
    if (r.ename === "MissingJupyter") {
      throw new NotebookError(
        `${path}: Jupyter is not ready (missing ${r.evalue}); install it with: ${INSTALL_HINT}`,
        path,
      );
    }
    const where = r.cell ? `cell ${r.cell} (code cell ${r.codeCell})` : "the kernel";
    const src = r.source
      ? `\n--- cell ${r.cell} source ---\n${String(r.source).split("\n").slice(0, 12).join("\n")}`
      : "";
    const partial = r.written ? `\nOutputs up to the failure: ${r.written}` : "";
    throw new NotebookError(
      `${path}: ${where} failed: ${r.ename}: ${r.evalue}${
        r.traceback ? `\n${r.traceback}` : ""
      }${src}${partial}`,
      path,
      r.cell ?? undefined,
    );
  }
  return {
    notebook: path,
    written: r.written,
    seconds: r.seconds,
    cellSeconds: r.cellSeconds,
    outputs: r.outputs,
  };
}

/**
 * The notebooks in a folder (`*.ipynb`, sorted; sub-folders such as `.ipynb_checkpoints` skipped).
 *
 * @example
 * ```ts
 * import { listNotebooks } from "./notebook_runner.ts";
 * const dir = await Deno.makeTempDir();
 * for (const name of ["b.ipynb", "a.ipynb", "notes.md"]) await Deno.writeTextFile(`${dir}/${name}`, "{}");
 * const found = listNotebooks(dir).map((p) => p.slice(dir.length + 1));
 * if (found.join() !== "a.ipynb,b.ipynb") throw new Error(found.join());
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function listNotebooks(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.isFile && e.name.endsWith(".ipynb")) out.push(join(dir, e.name));
  }
  return out.sort();
}
