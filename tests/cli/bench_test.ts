// Smoke test of `deno task bench`: --quick --json runs every row and prints one valid JSON line.
// No timed assertions (the machines that run tests are shared); only that each row produced a
// positive figure and the options are checked.
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { type BenchResult, formatReport, parseBenchFlags, torchSetups } from "../../lib/cli/bench.ts";

Deno.test("bench: --quick --json prints one JSON line with every row", async () => {
  const script = new URL("../../lib/cli/bench.ts", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--quick", "--json", "--backend", "wasm+blas,wasm"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout).trim();
  assert(r.success, `bench failed: ${new TextDecoder().decode(r.stderr)}`);
  const lines = out.split("\n");
  assertEquals(lines.length, 1, `expected one line, got ${lines.length}`);
  const res = JSON.parse(lines[0]) as BenchResult;
  assert(res.options.quick && res.options.batch === 4, "quick mode options");
  assert(res.masker!.perSecond > 0, "masker row");
  assertEquals(res.backends.map((b) => b.label), ["wasm+blas", "wasm"]);
  for (const b of res.backends) {
    if (b.skipped) continue; // e.g. no BLAS library on this machine
    for (const row of [b.encoder, b.tiny, b.reference, b.probe]) {
      assert(row && row.perSecond > 0, `${b.label}: a row is missing`);
    }
    assertEquals(b.reference!.tokens.length, res.options.runs);
    assert(b.peakRssBytes > 0 && (b.peakTfjsBytes ?? 0) > 0, `${b.label}: memory figures missing`);
    assert((b.topKernels ?? []).length > 0, `${b.label}: no kernel profile`);
  }
  assert(res.backends.some((b) => !b.skipped), "every backend was skipped");
  // the table renders the same result, with a previous run in brackets
  const table = formatReport(res, res);
  assert(
    table.includes("train step img/s, reference") && table.includes("[brackets: the previous run"),
    table,
  );
});

Deno.test("bench: unknown backends and rows are errors that list the known ones", () => {
  assertThrows(
    () => parseBenchFlags(["--backend", "tpu"]),
    Error,
    'unknown backend "tpu"; expected wasm+blas',
  );
  assertThrows(() => parseBenchFlags(["--rows", "decoder"]), Error, 'unknown row "decoder"; expected masker');
  const o = parseBenchFlags(["--quick", "--out", "x.json"]);
  assertEquals(o.out, "", "--quick never overwrites the saved results");
  assertEquals(parseBenchFlags([]).batch, 64);
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
  assertThrows(() => parseBenchFlags(["--official", "/tmp"]), Error, "--official needs --vs-torch");
  assertThrows(
    () => parseBenchFlags(["--vs-torch", "--official", "/no/such/dir"]),
    Error,
    "expects a checkout of facebookresearch/ijepa",
  );
});
