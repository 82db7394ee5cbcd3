// `auto` takes a WebGPU adapter only where a timed probe finds it faster than the CPU path, and
// remembers the verdict per adapter (lib/engine/backend_probe.ts). Lavapipe is a software adapter,
// which `auto` skips without a probe; IJEPA_GPU_PROBE=software makes it probe lavapipe the way it
// probes a hardware GPU, so the whole path runs here. Each run is a fresh process, as a user's is.
import { assert, assertEquals } from "../_assert.ts";
import { IN_CI, probeBackend } from "../_backends.ts";
import { probeWorkload } from "../../lib/engine/backend_probe.ts";
import { setBackend } from "../../lib/engine/backend.ts";

const why = await probeBackend({ label: "webgpu", name: "webgpu" });
if (why) console.warn(`backend_probe_test: webgpu tests ignored: ${why}`);

const SCRIPT = `
import { setBackend } from "${new URL("../../lib/engine/backend.ts", import.meta.url).href}";
const info = await setBackend("auto", { quiet: true });
console.log(JSON.stringify({ name: info.name, line: info.line }));
`;

async function autoInFreshProcess(cache: string): Promise<{ name: string; line: string }> {
  const script = `${cache}/auto.ts`;
  await Deno.writeTextFile(script, SCRIPT);
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", config, script],
    env: { IJEPA_GPU_PROBE: "software", XDG_CACHE_HOME: cache },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout).trim().split("\n").pop() ?? "";
  assert(r.success, `auto failed: ${new TextDecoder().decode(r.stderr).slice(-800)}`);
  return JSON.parse(out);
}

Deno.test({
  name: `auto: a WebGPU adapter is probed once, the faster side is taken and the verdict remembered${
    why && !IN_CI ? ` (ignored: ${why})` : ""
  }`,
  ignore: why !== undefined && !IN_CI,
  async fn() {
    const cache = await Deno.makeTempDir({ prefix: "ijepa-probe-" });
    try {
      const first = await autoInFreshProcess(cache);
      const file = `${cache}/ijepa-deno/gpu-probe.json`;
      const saved = JSON.parse(await Deno.readTextFile(file));
      const verdicts = Object.values(saved) as { gpuMs: number; cpuMs: number; cpuLabel: string }[];
      assertEquals(verdicts.length, 1, `one adapter, one verdict: ${JSON.stringify(saved)}`);
      const v = verdicts[0];
      assert(v.gpuMs > 0 && v.cpuMs > 0, `probe times must be positive: ${JSON.stringify(v)}`);
      // the choice follows the measured numbers, and the line says so
      assertEquals(first.name, v.gpuMs < v.cpuMs ? "webgpu" : "wasm", first.line);
      assert(first.line.includes("in a timed probe"), first.line);
      assert(!first.line.includes("remembered"), first.line);
      const second = await autoInFreshProcess(cache);
      assertEquals(second.name, first.name, "the remembered verdict gives the same choice");
      assert(second.line.includes("remembered"), second.line);
    } finally {
      await Deno.remove(cache, { recursive: true });
    }
  },
});

Deno.test("probe workload: none on cpu, where the model takes the autodiff path", async () => {
  await setBackend("cpu", { quiet: true });
  assertEquals(await probeWorkload(), undefined);
});
