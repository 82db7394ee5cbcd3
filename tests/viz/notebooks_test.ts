/**
 * The notebook runner (lib/viz/notebook_runner.ts + run_notebook.py; lib/cli/notebooks.ts is its
 * task), the notebooks themselves (CI-sized), and the live displays of lib/viz/live.ts.
 *
 * Tests that need Jupyter are ignored, with the install line, where it is missing, except when `CI`
 * is set: there a missing Jupyter is a failure.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { PNG } from "pngjs";
import {
  checkNotebook,
  INSTALL_HINT,
  jupyterStatus,
  listNotebooks,
  notebookCode,
  NotebookError,
  runNotebook,
} from "../../lib/viz/notebook_runner.ts";
import { inJupyter, liveDisplay, progressLine, trainingMonitor } from "../../lib/viz/live.ts";
import { toPng } from "../../lib/viz/output.ts";
import { probeBackend } from "../_backends.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const status = await jupyterStatus();
const inCI = (Deno.env.get("CI") ?? "") !== "";
const ignore = !status.ok && !inCI;
if (ignore) console.warn(`notebooks_test: Jupyter tests ignored: ${status.message}`);

/** Fails (in CI) when Jupyter is missing; elsewhere those tests are ignored before they get here. */
function needJupyter(): void {
  if (!status.ok) throw new Error(`CI is set, so a missing Jupyter is a failure: ${status.message}`);
}

// deno-lint-ignore no-explicit-any
type Output = any;
interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: Output[];
  execution_count?: number | null;
}
const src = (c: Cell) => (Array.isArray(c.source) ? c.source.join("") : c.source);
const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join("") : v ?? "");
const readNb = (path: string): { cells: Cell[] } => JSON.parse(Deno.readTextFileSync(path));

/** What kinds of output a cell has (stderr left out: warnings may differ between runs). */
function kinds(cell: Cell): string[] {
  return (cell.outputs ?? [])
    .filter((o) => !(o.output_type === "stream" && o.name === "stderr"))
    .map((o) =>
      o.output_type === "stream"
        ? `stream:${o.name}`
        : `${o.output_type}:${Object.keys(o.data ?? {}).sort().join("+")}`
    )
    .sort();
}

function codeNotebook(sources: string[]): string {
  return JSON.stringify({
    cells: [
      { cell_type: "markdown", metadata: {}, source: "# test" },
      ...sources.map((s) => ({
        cell_type: "code",
        metadata: {},
        source: s,
        outputs: [],
        execution_count: null,
      })),
    ],
    metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
    nbformat: 4,
    nbformat_minor: 5,
  });
}

/** Decoded RGBA pixels of a PNG. */
function pixels(png: Uint8Array): { data: Uint8Array; width: number; height: number } {
  const img = PNG.sync.read(Buffer.from(png));
  return { data: img.data, width: img.width, height: img.height };
}

Deno.test({
  name: "notebooks: every notebook runs with CI settings, with its outputs and figures, and no error",
  ignore,
  sanitizeResources: false,
  async fn() {
    needJupyter();
    const notebooks = listNotebooks(join(ROOT, "notebooks"));
    assert.ok(notebooks.length >= 1, "expected at least notebooks/01-pretraining.ipynb");
    const out = await Deno.makeTempDir({ prefix: "ijepa-nbtest-" });
    const before = new Map(notebooks.map((p) => [p, Deno.readTextFileSync(p)]));
    let firstSvg: string | undefined;
    try {
      for (const path of notebooks) {
        const run = await runNotebook(path, { outDir: out, ci: true, progress: false });
        assert.equal(Deno.readTextFileSync(path), before.get(path), `${path} was rewritten in place`);
        const committed = readNb(path).cells;
        const executed = readNb(run.written).cells;
        assert.equal(executed.length, committed.length);
        executed.forEach((cell, i) => {
          if (cell.cell_type !== "code") return;
          const where = `${path} cell ${i + 1}`;
          assert.ok(cell.execution_count != null, `${where}: not executed`);
          const errors = (cell.outputs ?? []).filter((o) => o.output_type === "error");
          assert.equal(errors.length, 0, `${where}: error output ${JSON.stringify(errors[0]?.evalue)}`);
          // The committed notebook holds a real run's outputs: the CI run must produce the same kinds,
          // the same number of each (live displays update in place rather than pile up).
          assert.deepEqual(
            kinds(cell),
            kinds(committed[i]),
            `${where}: outputs differ from the committed run`,
          );
          const s = src(cell);
          if (/\bshow\(|\btrainingMonitor\(/.test(s)) {
            const images = (cell.outputs ?? []).filter((o) =>
              o.data?.["image/svg+xml"] !== undefined || o.data?.["image/png"] !== undefined
            );
            assert.ok(images.length >= 1, `${where}: a plotting cell without an image`);
            firstSvg ??= text(images.find((o) => o.data["image/svg+xml"])?.data["image/svg+xml"]);
          }
          if (/\btrainingMonitor\(/.test(s)) {
            // The progress display ends at the last step ("step 12/12"), updated in place.
            const progress = (cell.outputs ?? []).filter((o) => o.data?.["text/html"] !== undefined);
            assert.equal(progress.length, 1, `${where}: expected one progress display`);
            assert.match(
              text(progress[0].data["text/plain"]),
              /step (\d+)\/\1 /,
              `${where}: progress did not finish`,
            );
          }
        });
      }
      assert.ok(firstSvg, "no notebook drew an SVG");
      // The figure renders to PNG with its text: the same SVG without fonts differs in many pixels.
      const withText = pixels(toPng(firstSvg!, { scale: 1 }));
      const noText = pixels(toPng(firstSvg!, { scale: 1, fontFiles: [] }));
      assert.ok(withText.width > 100 && withText.height > 100, `PNG ${withText.width}x${withText.height}`);
      let textPixels = 0;
      for (let i = 0; i < withText.data.length; i += 4) {
        if (Math.abs(withText.data[i] - noText.data[i]) > 64) textPixels++;
      }
      assert.ok(textPixels > 500, `expected text pixels in the rendered figure, found ${textPixels}`);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

const gpuWhy = await probeBackend({ label: "webgpu", name: "webgpu" });

Deno.test({
  name: "notebooks: every notebook runs with CI settings on the webgpu backend too, without an error",
  ignore: ignore || gpuWhy !== undefined,
  sanitizeResources: false,
  async fn() {
    needJupyter();
    const out = await Deno.makeTempDir({ prefix: "ijepa-nbtest-webgpu-" });
    try {
      for (const path of listNotebooks(join(ROOT, "notebooks"))) {
        // the notebooks call setBackend() with no name, which reads IJEPA_BACKEND
        const run = await runNotebook(path, {
          outDir: out,
          ci: true,
          progress: false,
          typecheck: false,
          env: { IJEPA_BACKEND: "webgpu" },
        });
        const cells = readNb(run.written).cells.filter((c) => c.cell_type === "code");
        const outputs = cells.flatMap((c) => c.outputs ?? []);
        const errors = outputs.filter((o) => o.output_type === "error");
        assert.equal(errors.length, 0, `${path}: error output ${JSON.stringify(errors[0]?.evalue)}`);
        assert.ok(cells.every((c) => c.execution_count != null), `${path}: a cell did not run`);
        const said = outputs.map((o) => text(o.text ?? o.data?.["text/plain"])).join("\n");
        assert.match(said, /backend: webgpu/, `${path}: did not run on webgpu`);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
Deno.test({
  name: "notebooks: late display outputs are all collected (40 unawaited displays, 5 runs)",
  ignore,
  sanitizeResources: false,
  async fn() {
    needJupyter();
    const dir = await Deno.makeTempDir({ prefix: "ijepa-nbtest-" });
    try {
      const path = join(dir, "many.ipynb");
      Deno.writeTextFileSync(
        path,
        codeNotebook([
          'for (let i = 0; i < 40; i++) Deno.jupyter.display({ "text/plain": `d${i}` }, { raw: true });\n"done"',
          'const svg = \'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>\';\n' +
          'for (let i = 0; i < 10; i++) Deno.jupyter.display({ "image/svg+xml": svg }, { raw: true });\nconsole.log("end");',
        ]),
      );
      for (let run = 0; run < 5; run++) {
        const r = await runNotebook(path, {
          outDir: join(dir, `out${run}`),
          progress: false,
          typecheck: false,
        });
        const [a, b] = readNb(r.written).cells.slice(1);
        const shown = (a.outputs ?? []).filter((o) => o.output_type === "display_data").map((o) =>
          text(o.data["text/plain"])
        );
        assert.deepEqual(
          shown,
          Array.from({ length: 40 }, (_, i) => `d${i}`),
          `run ${run}: displays lost or reordered`,
        );
        assert.equal(
          (a.outputs ?? []).filter((o) => o.output_type === "execute_result").length,
          1,
          `run ${run}`,
        );
        assert.equal(
          (b.outputs ?? []).filter((o) => o.data?.["image/svg+xml"]).length,
          10,
          `run ${run}: svg displays`,
        );
        assert.equal(r.outputs.join(), "41,11", `run ${run}: outputs per cell`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "notebooks: a failing cell fails the run, names the cell, and never rewrites the notebook in place",
  ignore,
  sanitizeResources: false,
  async fn() {
    needJupyter();
    const dir = await Deno.makeTempDir({ prefix: "ijepa-nbtest-" });
    try {
      const path = join(dir, "fails.ipynb");
      const original = codeNotebook([
        'console.log("ok")',
        'throw new Error("boom in cell three")',
        'console.log("never")',
      ]);
      Deno.writeTextFileSync(path, original);
      const err = await runNotebook(path, { progress: false, typecheck: false }).then(
        () => assert.fail("expected the run to fail"),
        (e) => e,
      );
      assert.ok(err instanceof NotebookError, String(err));
      assert.equal(err.cell, 3);
      assert.match(err.message, /fails\.ipynb: cell 3 \(code cell 2\) failed: Error: boom in cell three/);
      assert.equal(Deno.readTextFileSync(path), original, "a failed run rewrote the notebook in place");
      // With --out, the partial run is written for inspection: outputs up to the failure, no further.
      await assert.rejects(() =>
        runNotebook(path, { outDir: join(dir, "out"), progress: false, typecheck: false })
      );
      const cells = readNb(join(dir, "out", "fails.ipynb")).cells;
      assert.equal(text(cells[1].outputs?.[0]?.text), "ok\n");
      assert.equal(cells[2].outputs?.[0]?.output_type, "error");
      assert.equal(cells[3].outputs?.length, 0);
      assert.equal(cells[3].execution_count, null);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "notebooks: a cell past the time limit fails the run, naming the cell",
  ignore,
  sanitizeResources: false,
  async fn() {
    needJupyter();
    const dir = await Deno.makeTempDir({ prefix: "ijepa-nbtest-" });
    try {
      const path = join(dir, "slow.ipynb");
      Deno.writeTextFileSync(
        path,
        codeNotebook(["1 + 1", "await new Promise((r) => setTimeout(r, 20000));"]),
      );
      const t0 = performance.now();
      const err = await runNotebook(path, { progress: false, typecheck: false, timeout: 1 }).then(
        () => assert.fail("expected a timeout"),
        (e) => e,
      );
      assert.ok(err instanceof NotebookError, String(err));
      assert.equal(err.cell, 3);
      assert.match(err.message, /cell 3 \(code cell 2\) failed: TimeoutError: cell 3 ran past the 1 s limit/);
      assert.ok(performance.now() - t0 < 15000, "the run did not stop at the limit");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("notebooks: type errors are found before running and named by cell and line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa-nbtest-" });
  try {
    const path = join(dir, "types.ipynb");
    Deno.writeTextFileSync(
      path,
      codeNotebook(["const n = 1;", 'console.log(n);\nconst s: number = "text";']),
    );
    const err = await checkNotebook(path).then(() => assert.fail("expected a type error"), (e) => e);
    assert.ok(err instanceof NotebookError, String(err));
    assert.equal(err.cell, 3);
    assert.match(err.message, /TS2322/);
    assert.match(err.message, /types\.ipynb cell 3, line 2:7/);
    Deno.writeTextFileSync(path, codeNotebook(["const n = 1;", "console.log(n + 1);"]));
    await checkNotebook(path); // clean code passes
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("notebooks: notebookCode makes relative imports absolute and maps lines to cells", () => {
  const nb = {
    cells: [
      { cell_type: "markdown", source: "x" },
      { cell_type: "code", source: 'import { Rng } from "../mod.ts";\nconst r = await import("./b.ts");' },
    ],
  };
  const { code, cellAt } = notebookCode(nb, new URL("file:///proj/notebooks/"));
  assert.match(code, /from "file:\/\/\/proj\/mod\.ts"/);
  assert.match(code, /import\("file:\/\/\/proj\/notebooks\/b\.ts"\)/);
  const line = code.split("\n").findIndex((l) => l.includes("await import")) + 1;
  assert.deepEqual(cellAt(line), { cell: 2, line: 2 });
  assert.equal(cellAt(1), undefined);
});

Deno.test("notebooks: a missing Jupyter is reported with the install line", async () => {
  const s = await jupyterStatus({ python: "/nonexistent/python3" });
  assert.equal(s.ok, false);
  assert.ok(s.message.includes(INSTALL_HINT), s.message);
  if (status.ok) {
    const k = await jupyterStatus({ kernel: "no-such-kernel" });
    assert.equal(k.ok, false);
    assert.deepEqual(k.missing, ["kernelspec no-such-kernel"]);
  }
});

Deno.test("notebooks: the CLI rejects unknown flags and non-notebook files", async () => {
  const cli = join(ROOT, "lib/cli/notebooks.ts");
  const run = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), { args: ["run", "-A", cli, ...args], stdout: "piped", stderr: "piped" })
      .output();
  const bad = await run("--bogus");
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /unknown flag --bogus/);
  const file = await run("README.md");
  assert.equal(file.code, 2);
  assert.match(new TextDecoder().decode(file.stderr), /expected \.ipynb files, got "README\.md"/);
  const help = await run("--help");
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /deno task notebooks \[FILES\.\.\.\] \[flags\]/);
});

Deno.test("notebook helpers: progress line, monitor records and plots, outside Jupyter", async () => {
  assert.equal(inJupyter(), false);
  const line = progressLine({ step: 150, steps: 300, loss: 0.01234, imgPerSec: 20, elapsed: 60 }, 0.25);
  assert.equal(
    line,
    "[############............] step 150/300 | loss 0.01234 | target std 0.250 | 20.0 img/s | 1m00s elapsed, ETA 1m00s",
  );
  assert.match(progressLine({ step: 3, steps: 3, loss: 1, imgPerSec: 1, elapsed: 5 }), /done in 5\.0s$/);
  assert.throws(() => trainingMonitor({ plotevery: 1 } as never), /unknown option "plotevery"/);
  const monitor = trainingMonitor({ plotEvery: 3600 });
  const logged: string[] = [];
  const log = console.log;
  console.log = (s: string) => logged.push(s);
  try {
    for (let step = 1; step <= 20; step++) {
      await monitor.onStep({
        step,
        steps: 20,
        loss: 1 / step,
        imgPerSec: 10,
        elapsed: step,
        targetStd: step % 5 === 1 ? 0.5 - step / 100 : undefined,
      });
    }
    await monitor.finish();
  } finally {
    console.log = log;
  }
  // Outside Jupyter: the first step and the final line are printed (plotEvery throttles the rest).
  assert.equal(logged.length, 2, logged.join("\n"));
  assert.match(logged[1], /step 20\/20 .* target std 0\.340 .*done in 20s/);
  assert.equal(monitor.losses.length, 20);
  assert.deepEqual(monitor.stds.map((p) => p.step), [1, 6, 11, 16]);
  const loss = monitor.lossPlot();
  assert.match(loss, /loss \(log scale\)/);
  const std = monitor.stdPlot();
  assert.match(std, /warning level \(0\.1 x first\)/);
  assert.match(std, />0(\.0+)?<\/text>/, "the std axis must reach 0");
  const fig = liveDisplay("x");
  await fig.update("<svg/>"); // draws nothing outside Jupyter, and must not throw
  assert.match(fig.id, /^ijepa-x-/);
});
