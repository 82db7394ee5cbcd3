// Reading the repository's own source, for the tests that check rules on it (layout, sync reads).
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, as a file-system path. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Every .ts file under `dir` (a repo-relative folder), as sorted repo-relative paths. */
export function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(join(ROOT, dir))) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...tsFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

/** A file's text without comments (JSDoc examples run on the cpu backend in doc tests; comments are not code). */
export function code(file: string): string {
  return Deno.readTextFileSync(join(ROOT, file)).replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
}
