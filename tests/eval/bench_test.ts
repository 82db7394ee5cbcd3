// Tests of the bench's options (lib/eval/bench_options.ts) and its PyTorch setups
// (lib/eval/bench_torch.ts); tests/cli/bench_test.ts runs the task itself.
import { assert, assertEquals, assertRejects, assertThrows } from "../_assert.ts";
import { benchOptions } from "../../lib/eval/bench_options.ts";
import { childEnv, torchAvailable, torchSetups } from "../../lib/eval/bench_torch.ts";
import { torchRatio } from "../../lib/eval/bench.ts";
import { formatReport } from "../../lib/eval/bench_report.ts";

Deno.test("bench: unknown backends and rows are errors that list the known ones", () => {
  assertThrows(
    () => benchOptions({ backend: "tpu" }),
    Error,
    'unknown backend "tpu"; expected wasm+blas',
  );
  assertThrows(() => benchOptions({ rows: "decoder" }), Error, 'unknown row "decoder"; expected masker');
  const o = benchOptions({ quick: true, out: "x.json" });
  assertEquals(o.out, "", "--quick never overwrites the saved results");
  assertEquals(benchOptions({}).batch, 64);
});

Deno.test("bench: --vs-torch tries each OpenBLAS build here, unless the environment already chose", () => {
  const none = () => undefined;
  const triplet = `${Deno.build.arch}-linux-gnu`;
  const present = ["openmp", "pthread"].filter((b) => {
    try {
      return Deno.statSync(`/usr/lib/${triplet}/openblas-${b}/libblas.so.3`).isFile;
    } catch {
      return false;
    }
  });
  const setups = torchSetups(2, none);
  const waits = ["OpenMP default wait", "passive wait"];
  const tails = ["1 BLAS thread", "2 BLAS threads"].flatMap((t) => waits.map((w) => `${t}, ${w}`));
  assertEquals(
    setups.map((s) => s.name),
    present.length ? present.flatMap((b) => tails.map((t) => `openblas-${b}, ${t}`)) : tails,
  );
  for (const s of setups) {
    assertEquals(s.env.OMP_WAIT_POLICY, s.name.includes("passive") ? "passive" : undefined);
    assertEquals(s.env.OPENBLAS_NUM_THREADS, s.name.includes("1 BLAS thread") ? "1" : "2");
    if (present.length) assert(s.env.LD_LIBRARY_PATH.endsWith(s.name.split(",")[0]), JSON.stringify(s));
  }
  // one core: one thread setting
  assertEquals(torchSetups(1, none).length, setups.length / 2);
  // what the user set is kept and not varied
  const mine = torchSetups(2, (k) => (k === "OPENBLAS_NUM_THREADS" ? "4" : undefined));
  assert(mine.every((s) => s.env.OPENBLAS_NUM_THREADS === undefined && !s.name.includes("BLAS thread")));
  assertEquals(mine.length, setups.length / 2);
  const all = torchSetups(
    2,
    (
      k,
    ) => (k === "OMP_WAIT_POLICY" || k === "OPENBLAS_NUM_THREADS" || k === "LD_LIBRARY_PATH"
      ? "x"
      : undefined),
  );
  assertEquals(all, [{ name: "as configured by the environment", env: {} }]);
  // a forced OpenBLAS kernel family is tried as set and without it (with OPENBLAS_L2_SIZE, its pair)
  const forced = torchSetups(2, (k) => (k === "OPENBLAS_CORETYPE" ? "Haswell" : undefined));
  assertEquals(forced.length, setups.length * 2);
  assertEquals(forced.filter((s) => s.unset).length, setups.length);
  for (const s of forced) {
    if (s.unset) {
      assertEquals(s.unset, ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"]);
      assert(s.name.endsWith("OpenBLAS's own kernel choice"), s.name);
    } else assert(s.name.endsWith("OPENBLAS_CORETYPE=Haswell"), s.name);
  }
  assertThrows(() => benchOptions({ official: "/tmp" }), Error, "--official needs --vs-torch");
  assertThrows(
    () => benchOptions({ vsTorch: true, official: "/no/such/dir" }),
    Error,
    "expects a checkout of facebookresearch/ijepa",
  );
});

Deno.test("bench: a PyTorch setup's child environment drops what the setup unsets", () => {
  assertEquals(childEnv({ name: "a", env: { X: "1" } }), { env: { X: "1" } });
  const key = "IJEPA_BENCH_TEST_UNSET";
  Deno.env.set(key, "yes");
  try {
    const c = childEnv({ name: "b", env: { OPENBLAS_NUM_THREADS: "1" }, unset: [key] });
    assertEquals(c.clearEnv, true);
    assertEquals(c.env[key], undefined);
    assertEquals(c.env.OPENBLAS_NUM_THREADS, "1");
    assertEquals(c.env.PATH, Deno.env.get("PATH"));
  } finally {
    Deno.env.delete(key);
  }
});

Deno.test("bench: --device says where PyTorch runs; cuda needs --vs-torch", () => {
  assertEquals(benchOptions({}).device, "cpu");
  assertEquals(benchOptions({ vsTorch: true, device: "cuda" }).device, "cuda");
  assertThrows(() => benchOptions({ device: "cuda" }), Error, "--device cuda needs --vs-torch");
  assertThrows(() => benchOptions({ vsTorch: true, device: "tpu" }), Error, 'expects cpu or cuda, got "tpu"');
});

const TORCH = await torchAvailable("/usr/bin/python3");
const CUDA = TORCH ? undefined : await new Deno.Command("/usr/bin/python3", {
  args: ["-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"],
}).output().then((r) => r.code);

Deno.test({
  name: `bench: the PyTorch reference asked for CUDA where torch sees none exits with a clear message${
    TORCH ? ` (ignored: ${TORCH})` : CUDA !== 3 ? " (ignored: this machine has CUDA)" : ""
  }`,
  ignore: TORCH !== undefined || CUDA !== 3,
  async fn() {
    const spec = await Deno.makeTempFile({ suffix: ".json" });
    try {
      await Deno.writeTextFile(spec, JSON.stringify({ config: {}, batch: 1, masks: [], device: "cuda" }));
      const script = new URL("../reference/ijepa_step.py", import.meta.url).pathname;
      const r = await new Deno.Command("/usr/bin/python3", { args: [script, spec], stderr: "piped" })
        .output();
      const err = new TextDecoder().decode(r.stderr);
      assert(!r.success, "must fail without CUDA");
      assert(err.includes("expected a CUDA device (--device cuda), but torch"), err);
    } finally {
      await Deno.remove(spec);
    }
  },
});

Deno.test("bench: --shapes adds the official ViT shapes; an unknown one is an error listing them", () => {
  assertEquals(benchOptions({}).shapes, []);
  assertEquals(benchOptions({ shapes: "vit_small16, vit_base16" }).shapes, ["vit_small16", "vit_base16"]);
  assertThrows(
    () => benchOptions({ shapes: "vit_huge14" }),
    Error,
    'unknown shape "vit_huge14"; expected vit_small16',
  );
});

Deno.test("bench products row: the reference step's products, each timed with every wasm kernel", async () => {
  const { benchProducts, formatProducts } = await import("../../lib/eval/bench_products.ts");
  const { createMasker, maskPreset } = await import("../../lib/masks/mod.ts");
  const { Rng } = await import("../../lib/engine/rng.ts");
  const masks = createMasker(maskPreset(7, 7)).sample(new Rng(0), 4);
  const p = await benchProducts(4, masks, 0.005);
  assert(p.kernels.includes("tfjs stock") && p.kernels.includes("SIMD, 1 thread"), `kernels: ${p.kernels}`);
  // the step's own calls, with the flags it passes (backward products are transposed)
  assert(
    p.shapes.some((s) => s.transposeA) && p.shapes.some((s) => s.transposeB),
    "no transposed product seen",
  );
  // attention's products are batched over (example, head) pairs only where the head layout runs;
  // wasm's fused attention (lib/engine/fused_attention.ts) computes them inside its kernel
  const { envSaysOff } = await import("../../lib/engine/fused_simd.ts");
  const headLayout = envSaysOff("IJEPA_FUSED_ATTENTION");
  assertEquals(p.shapes.some((s) => s.batch > 1), headLayout, "batched (attention) products in the step");
  const calls = p.shapes.reduce((t, s) => t + s.calls, 0);
  assert(calls > 100, `only ${calls} products in a step`);
  const flop = p.shapes.reduce((t, s) => t + 2 * s.calls * s.batch * s.m * s.n * s.k, 0) / 1e9;
  assert(Math.abs(flop - p.gflopPerStep) < 1e-9, `${flop} vs ${p.gflopPerStep}`);
  for (const k of p.kernels) {
    assert(p.msPerStep[k] > 0 && Number.isFinite(p.msPerStep[k]), `${k}: ${p.msPerStep[k]} ms`);
    for (const s of p.shapes) assert(s.gflops[k] > 0, `${k} on ${s.m}x${s.k}x${s.n}: ${s.gflops[k]}`);
  }
  const text = formatProducts(p, 2).join("\n");
  assert(text.includes("ms per step: tfjs stock"), text);
});

Deno.test("bench: ours against PyTorch counts our faster timing, before or after PyTorch's runs, and says so", () => {
  const t = (ms: number) => ({ medianMs: ms, perSecond: 64_000 / ms, runsMs: [ms] });
  // PyTorch 320 ms a step; ours 400 ms before its runs, 320 after: even
  assertEquals(torchRatio(t(320), t(400), t(320)), 1);
  assertEquals(torchRatio(t(320), t(320), t(400)), 1);
  assertEquals(torchRatio(t(320), t(640)), 0.5);
  assert(Number.isNaN(torchRatio(t(320))));
  const tokens = [{ context: 16, target: 31 }];
  const report = formatReport({
    date: "2026-12-05T00:00:00Z",
    machine: { cores: 2, os: "linux-x86_64", deno: "2", tfjs: "4" },
    options: { batch: 64, runs: 5, warmup: 2, seed: 0, quick: false },
    backends: [{
      label: "wasm+blas",
      line: "backend: wasm",
      peakRssBytes: 0,
      reference: { ...t(400), tokens, loss: 1 },
    }, {
      label: "wasm",
      line: "backend: wasm",
      peakRssBytes: 0,
      reference: { ...t(900), tokens, loss: 1 },
    }],
    alternate: { withMs: 330, withoutMs: 700, steps: 8, ratio: 700 / 330 },
    torch: {
      ...t(320),
      peakRssBytes: 0,
      tokens,
      version: "1.13",
      threads: 2,
      setup: "openblas-openmp",
      libraries: [],
      tried: [],
      ratio: torchRatio(t(320), t(400), t(360)),
      oursAfter: t(360),
      alternate: { oursMs: [300, 350, 310], torchMs: [330, 330, 320], ratio: 320 / 310 },
    },
  });
  assert(report.includes("ours (wasm+blas) / PyTorch: 0.89x img/s"), report);
  assert(report.includes("wasm without BLAS / with: 2.25x time per reference step (900 / 400 ms)"), report);
  assert(
    report.includes(
      "wasm without BLAS / with, their steps alternating in one process: 2.12x (700 / 330 ms, median of 8 steps each)",
    ),
    report,
  );
  assert(
    report.includes("ours: 400 ms per step before PyTorch's runs, 360 ms after; the faster counts"),
    report,
  );
  assert(
    report.includes(
      "ours / PyTorch, 3 rounds alternating (ours' steps, then PyTorch's on its best setup): 1.03x img/s, " +
        "the median round (ours 300, 350, 310 ms; PyTorch 330, 330, 320 ms)",
    ),
    report,
  );
});

Deno.test({
  name: `bench: ours and PyTorch alternate round by round on its best setup${
    TORCH ? ` (ignored: ${TORCH})` : ""
  }`,
  ignore: TORCH !== undefined,
  async fn() {
    const { alternateTorch } = await import("../../lib/eval/bench_torch.ts");
    const { createMasker, maskPreset } = await import("../../lib/masks/mod.ts");
    const { Rng } = await import("../../lib/engine/rng.ts");
    const o = benchOptions({ vsTorch: true, batch: 2, runs: 1, warmup: 1 });
    const masks = createMasker(maskPreset(7, 7)).sample(new Rng(0), 2);
    const setup = torchSetups(2)[0].name;
    const ours = [50, 70];
    let calls = 0;
    const row = await alternateTorch(o, [masks], setup, () => Promise.resolve(ours[calls++]), 2);
    assertEquals(row.oursMs, ours);
    assertEquals(row.torchMs.length, 2);
    for (const t of row.torchMs) assert(t > 0 && Number.isFinite(t), `PyTorch step ${t} ms`);
    // the median of two rounds' PyTorch / ours is their mean
    const want = (row.torchMs[0] / 50 + row.torchMs[1] / 70) / 2;
    assert(Math.abs(row.ratio - want) < 1e-12, `${row.ratio} vs ${want}`);
    await assertRejects(
      () => alternateTorch(o, [masks], "no such setup", () => Promise.resolve(1), 1),
      Error,
      "no PyTorch setup named no such setup",
    );
  },
});
