// Runs a task's script (lib/cli/<script>.ts) in a child Deno, as `deno task` would, and returns its
// exit code and output. XDG_RUNTIME_DIR is set so the Vulkan loader stays quiet on headless Linux.
const ROOT = new URL("../", import.meta.url).pathname;

export async function runCli(script: string, args: string[], opts: { cwd?: string } = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}lib/cli/${script}.ts`, ...args],
    cwd: opts.cwd,
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
