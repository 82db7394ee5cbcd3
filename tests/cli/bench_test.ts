// Smoke test of `deno task bench`: --quick --json runs every row and prints one valid JSON line.
// No timed assertions (the machines that run tests are shared); only that each row produced a
// positive figure. The options and the PyTorch setups are tested in tests/eval/bench_test.ts.
import { assert, assertEquals } from "../_assert.ts";
import type { BenchResult } from "../../lib/eval/bench_options.ts";
import { formatReport } from "../../lib/eval/bench_report.ts";

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
  // with BLAS here, the two wasm setups' steps also alternate in one process
  if (!res.backends[0].skipped) {
    const alt = res.alternate!;
    assert(alt && alt.withMs > 0 && alt.withoutMs > 0, `alternating steps: ${JSON.stringify(alt)}`);
    assertEquals(alt.ratio, alt.withoutMs / alt.withMs);
  }
  // the table renders the same result, with a previous run in brackets
  const table = formatReport(res, res);
  assert(
    table.includes("train step img/s, reference") && table.includes("[brackets: the previous run"),
    table,
  );
});
