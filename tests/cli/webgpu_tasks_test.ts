// The main job's path on the webgpu backend, through the CLI as a user runs it: pretrain (tiny preset,
// a few steps, checkpoints and final weights) and then probe. Before the trainer and the checkpoint
// writer read tensors asynchronously, the first step died on webgpu: "Cannot read properties of null
// (reading 'clearRect')" from a dataSync. In CI this runs on Mesa's software Vulkan (lavapipe).
import { assert, assertEquals } from "../_assert.ts";
import { runCli } from "../_cli.ts";
import { probeBackend } from "../_backends.ts";

const why = await probeBackend({ label: "webgpu", name: "webgpu" });
if (why) console.warn(`webgpu_tasks_test: ignored: ${why}`);

Deno.test({
  name: "cli: pretrain and probe run on --backend webgpu (tiny preset), checkpoints included",
  ignore: why !== undefined,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "ijepa-webgpu-" });
    try {
      const common = ["--backend", "webgpu", "--data", "fashion-mnist-subset"];
      const r = await runCli("pretrain", [
        ...common,
        "--preset",
        "tiny",
        "--steps",
        "4",
        "--checkpoint-every",
        "2",
        "--out",
        `${out}/run`,
        "--probe=false",
      ]);
      assertEquals(r.code, 0, r.stderr);
      assert(r.stderr.includes("backend: webgpu"), r.stderr);
      assert(/trained 4 steps in .* on webgpu\); loss [\d.]+ -> [\d.]+/.test(r.stdout), r.stdout);
      for (const f of ["final.safetensors", "checkpoint.safetensors", "metrics.jsonl"]) {
        assert(Deno.statSync(`${out}/run/${f}`).size > 0, f);
      }
      // the collapse watch was read on webgpu too
      const rows = Deno.readTextFileSync(`${out}/run/metrics.jsonl`).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      assert(rows.some((x) => typeof x.targetStd === "number" && x.targetStd > 0), JSON.stringify(rows));
      const p = await runCli("probe", [
        ...common,
        "--run",
        `${out}/run`,
        "--shots",
        "10",
        "--seeds",
        "1",
        "--pool",
        "300",
        "--test-size",
        "100",
        "--all-labels=false",
        "--json",
      ]);
      assertEquals(p.code, 0, p.stderr);
      const t = JSON.parse(p.stdout.trim().split("\n").at(-1)!);
      assertEquals(t.rows.map((x: { method: string }) => x.method), ["I-JEPA", "random init", "raw pixels"]);
      for (const row of t.rows) {
        assert(row.probe.every((c: { mean: number }) => c.mean > 0.05), JSON.stringify(row));
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
