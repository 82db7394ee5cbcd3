/**
 * Command-line flags for every task: `--help`, unknown flags as errors, typed values.
 *
 * Each task declares its flags once; the same table prints the help text and checks the input, so
 * the two cannot drift apart.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./args.ts";
 * const f = parseFlags(["--steps", "10", "--json"], {
 *   name: "demo",
 *   summary: "a demo task",
 *   flags: {
 *     steps: { type: "int", default: 5, help: "training steps" },
 *     json: { type: "bool", help: "one JSON line" },
 *   },
 * });
 * if (f.steps !== 10 || f.json !== true) throw new Error("parse failed");
 * ```
 * @module
 */
import { BACKEND_NAMES } from "../engine/backend.ts";

/** One flag's declaration. */
export interface FlagSpec {
  type: "string" | "int" | "float" | "bool";
  help: string;
  default?: string | number | boolean;
  /** Allowed values for a string flag. */
  choices?: readonly string[];
  /** Smallest allowed value of a number flag (checked at parse time, before any work starts). */
  min?: number;
  /** With `min`: the value must be strictly greater than `min`. */
  exclusiveMin?: boolean;
}

/** A task's command-line interface. */
export interface CliSpec {
  name: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  /** Names of positional arguments, shown in the usage line; none allowed if absent. */
  positionals?: string[];
}

/** Thrown for bad command-line input; `main` wrappers print its message without a stack. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Thrown when `--help` is given; carries the help text. */
export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super(text);
    this.name = "HelpRequested";
  }
}

type Value = string | number | boolean | undefined;

/**
 * `--backend`, the same in every task that runs tensors: one of {@link BACKEND_NAMES}; a wrong name
 * is a usage error that lists them. Unset, `setBackend` reads `IJEPA_BACKEND`, else chooses `auto`.
 */
export const BACKEND_FLAG: FlagSpec = {
  type: "string",
  choices: BACKEND_NAMES,
  help: "tfjs backend (default IJEPA_BACKEND, else auto: the fastest that starts here)",
};

/** What `--data` accepts, in every task that loads a dataset (lib/data/load.ts `loadDataset`). */
export const DATA_HELP = "dataset: a folder of IDX, CIFAR binary or image folders (read at the model's " +
  "size and channels), fashion-mnist or fashion-mnist-subset";

/**
 * `--data`, the same in every task that loads a dataset. Unset, `loadDataset` reads `IJEPA_DATA`,
 * else the installed Fashion-MNIST, else the shipped subset; a task with another default spreads
 * this and sets `default` (the help prints it).
 */
export const DATA_FLAG: FlagSpec = {
  type: "string",
  help: `${DATA_HELP} (default: IJEPA_DATA, else the installed Fashion-MNIST, else the shipped subset)`,
};

/** The help text of a task. */
export function helpText(spec: CliSpec): string {
  const pos = (spec.positionals ?? []).map((p) => ` ${p.toUpperCase()}`).join("");
  const lines = [`deno task ${spec.name}${pos} [flags]`, "", spec.summary, "", "Flags:"];
  const names = Object.keys(spec.flags).sort();
  for (const n of names) {
    const f = spec.flags[n];
    const arg = f.type === "bool" ? "" : ` ${f.choices ? f.choices.join("|") : f.type.toUpperCase()}`;
    const def = f.default !== undefined && f.type !== "bool" ? ` (default ${f.default})` : "";
    const head = `  --${n}${arg}`;
    // a long choice list gets the help on its own line instead of running into it
    lines.push(
      head.length < 34 ? head.padEnd(34) + f.help + def : `${head}\n${" ".repeat(34)}${f.help}${def}`,
    );
  }
  lines.push("  --help".padEnd(34) + "print this text");
  return lines.join("\n");
}

/** Whether `--name` was given on the command line (as `--name VALUE` or `--name=VALUE`), not defaulted. */
export function flagGiven(args: readonly string[], name: string): boolean {
  return args.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
}

/**
 * Parse `args` against `spec`. Returns the flag values (defaults filled in) plus `_` for the
 * positionals. Throws {@link UsageError} on unknown flags or bad values and {@link HelpRequested}
 * for `--help`.
 */
export function parseFlags(
  args: readonly string[],
  spec: CliSpec,
): Record<string, Value> & { _: string[] } {
  const out: Record<string, Value> = {};
  const positionals: string[] = [];
  for (const [n, f] of Object.entries(spec.flags)) out[n] = f.default;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") throw new HelpRequested(helpText(spec));
    if (!a.startsWith("--")) {
      positionals.push(a);
      continue;
    }
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const f = spec.flags[name];
    if (!f) {
      const near = closestFlag(name, Object.keys(spec.flags));
      throw new UsageError(
        near !== undefined
          ? `${spec.name}: unknown flag --${name}; did you mean --${near}? (see --help)`
          : `${spec.name}: unknown flag --${name}; expected one of ${
            Object.keys(spec.flags).map((k) => "--" + k).join(", ")
          } (see --help)`,
      );
    }
    if (f.type === "bool") {
      if (value === undefined) out[name] = true;
      else if (value === "true" || value === "false") out[name] = value === "true";
      else throw new UsageError(`${spec.name}: --${name} takes no value or true|false, got "${value}"`);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= args.length) throw new UsageError(`${spec.name}: --${name} expects a value`);
      value = args[++i];
    }
    out[name] = convert(spec.name, name, f, value);
  }
  const allowed = spec.positionals?.length ?? 0;
  if (positionals.length > allowed) {
    throw new UsageError(
      `${spec.name}: expected at most ${allowed} positional argument(s), got ${JSON.stringify(positionals)}`,
    );
  }
  return Object.assign(out, { _: positionals });
}

/**
 * Edit distance between two strings where swapping two neighbouring letters counts as one edit
 * (optimal string alignment), so `stpes` is one edit from `steps`.
 */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The known flag closest to a mistyped one, if one is close enough to be a typo: at most 2 edits,
 * and fewer than half the typed name's letters (so `--x` suggests nothing); `--help` included.
 */
export function closestFlag(typed: string, known: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const k of [...known, "help"]) {
    const d = editDistance(typed.toLowerCase(), k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= 2 && bestD < typed.length / 2 ? best : undefined;
}

function convert(task: string, name: string, f: FlagSpec, v: string): Value {
  if (f.type === "string") {
    if (f.choices && !f.choices.includes(v)) {
      throw new UsageError(`${task}: --${name} expects one of ${f.choices.join(", ")}, got "${v}"`);
    }
    return v;
  }
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || (f.type === "int" && !Number.isInteger(n))) {
    throw new UsageError(
      `${task}: --${name} expects ${f.type === "int" ? "an integer" : "a number"}, got "${v}"`,
    );
  }
  if (f.min !== undefined && (f.exclusiveMin ? !(n > f.min) : !(n >= f.min))) {
    throw new UsageError(
      `${task}: --${name} expects ${f.type === "int" ? "an integer" : "a number"} ${
        f.exclusiveMin ? ">" : ">="
      } ${f.min}, got ${v}`,
    );
  }
  return n;
}

/** The extension of a path (`.png`), lower case; "" when it has none. */
function extensionOf(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot).toLowerCase() : "";
}

/**
 * `Deno.stat`, or undefined where nothing is at `path`: not found, or a file stands where a
 * folder of the path should be (`a-file/x`: ENOTDIR).
 */
export async function statIfAny(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return undefined;
    throw e;
  }
}

/** Whether the folder takes new files: a test file made and removed (Deno has no access(2)). */
async function writable(dir: string): Promise<boolean> {
  try {
    const probe = await Deno.makeTempFile({ dir, prefix: ".ijepa-write-check-" });
    await Deno.remove(probe);
    return true;
  } catch {
    return false;
  }
}

/** The folder part of a path ("." for a bare name). */
function folderOf(path: string): string {
  const cut = path.replace(/\/+$/, "").lastIndexOf("/");
  return cut < 0 ? "." : cut === 0 ? "/" : path.slice(0, cut);
}

/**
 * Check an output file before any work starts: its extension is one of `extensions` (the format
 * follows the extension), it is not a folder, and its folder exists and takes new files. Output
 * files never create folders (a mistyped folder would otherwise appear silently); run folders do,
 * see {@link checkOutputFolder}. Returns the extension, lower case.
 */
export async function checkOutputFile(
  task: string,
  flag: string,
  path: string,
  extensions: readonly string[],
): Promise<string> {
  const ext = extensionOf(path);
  if (!extensions.includes(ext)) {
    throw new UsageError(
      `${task}: --${flag} ${path}: expected a file name ending in ${extensions.join(" or ")} ` +
        `(the format follows the extension), got ${ext === "" ? "no extension" : `"${ext}"`}`,
    );
  }
  if ((await statIfAny(path))?.isDirectory) {
    throw new UsageError(`${task}: --${flag} ${path} is a folder; expected a file name`);
  }
  const dir = folderOf(path);
  const info = await statIfAny(dir);
  if (!info) {
    throw new UsageError(`${task}: --${flag} ${path}: the folder ${dir} does not exist; create it first`);
  }
  if (!info.isDirectory) throw new UsageError(`${task}: --${flag} ${path}: ${dir} is not a folder`);
  if (!(await writable(dir))) {
    throw new UsageError(`${task}: --${flag} ${path}: cannot write in the folder ${dir}`);
  }
  return ext;
}

/**
 * Check an output folder before any work starts: it is a folder or does not exist yet (the task
 * creates it, with any missing parents, as run folders always were), and the folder that will hold
 * it takes new files.
 */
export async function checkOutputFolder(task: string, flag: string, path: string): Promise<void> {
  let dir = path.replace(/\/+$/, "") || "/";
  for (;;) {
    const info = await statIfAny(dir);
    if (info) {
      if (!info.isDirectory) {
        throw new UsageError(
          dir === path.replace(/\/+$/, "")
            ? `${task}: --${flag} ${path} is a file; expected a folder`
            : `${task}: --${flag} ${path}: ${dir} is a file, so the folder cannot be made`,
        );
      }
      if (!(await writable(dir))) throw new UsageError(`${task}: --${flag} ${path}: cannot write in ${dir}`);
      return;
    }
    const up = folderOf(dir);
    if (up === dir) return;
    dir = up;
  }
}

/** The dataset names `--data` takes besides a folder (lib/data/load.ts `loadDataset`). */
const DATA_NAMES = ["fashion-mnist", "fashion-mnist-subset"];

/**
 * Check `--data` before the backend starts: a dataset name, or a folder that exists (what the
 * folder holds is checked when it loads). Unset passes (the default is found at load time).
 */
export async function checkDataFlag(task: string, value: string | undefined, flag = "data"): Promise<void> {
  if (value === undefined || DATA_NAMES.includes(value)) return;
  const info = await statIfAny(value);
  if (!info) {
    throw new UsageError(
      `${task}: --${flag} ${value}: no such folder; expected a dataset folder, ${
        DATA_NAMES.map((n) => `"${n}"`).join(" or ")
      }`,
    );
  }
  if (!info.isDirectory) {
    throw new UsageError(
      `${task}: --${flag} ${value} is a file; expected a dataset folder (IDX files, CIFAR binary batches or ` +
        `an image folder), ${DATA_NAMES.map((n) => `"${n}"`).join(" or ")}`,
    );
  }
}

/**
 * Run `fn`, turning any error it throws into a {@link UsageError} with the same message: for lib
 * functions that check what came from the command line (they throw plain errors, not knowing about
 * flags' exit codes).
 */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UsageError || !(e instanceof Error)) throw e;
    throw new UsageError(e.message);
  }
}

/**
 * Run a task's main function with uniform error handling: help goes to stdout with exit 0, usage
 * and input errors print one line to stderr with exit 2, anything else prints the error and exits 1.
 */
export async function runMain(main: (args: string[]) => Promise<void> | void): Promise<void> {
  try {
    await main(Deno.args);
  } catch (e) {
    if (e instanceof HelpRequested) {
      console.log(e.text);
      Deno.exit(0);
    }
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    console.error(e instanceof Error ? `error: ${e.message}` : `error: ${String(e)}`);
    if (Deno.env.get("IJEPA_DEBUG")) console.error(e);
    Deno.exit(1);
  }
}
