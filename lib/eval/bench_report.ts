/**
 * The bench's table: every row per backend, the previous run's figures in brackets, the top
 * kernels, and the comparison with PyTorch.
 *
 * @module
 */
import { type BackendResult, BENCH_SHAPES, type BenchResult, type Tokens } from "./bench_options.ts";
import { formatProducts } from "./bench_products.ts";

const GiB = 2 ** 30, MiB = 2 ** 20;
const fix = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(d));
const avgTokens = (t: Tokens[]) =>
  t.length
    ? `${fix(t.reduce((s, x) => s + x.context, 0) / t.length)} / ${
      fix(t.reduce((s, x) => s + x.target, 0) / t.length)
    }`
    : "-";

/** The table `deno task bench` prints, with the previous run's figures in brackets. */
export function formatReport(r: BenchResult, prev?: BenchResult): string {
  const lines: string[] = [];
  lines.push(
    `bench: ${r.machine.cores} cores, ${r.machine.os}, deno ${r.machine.deno}, tfjs ${r.machine.tfjs}; ` +
      `batch ${r.options.batch}, median of ${r.options.runs} runs after ${r.options.warmup} warm-up`,
  );
  const load = r.machine.loadAvg;
  if (load && Number.isFinite(load[0])) {
    const busy = Math.max(load[0], load[1]) > 0.5 * r.machine.cores;
    lines.push(
      `load average ${fix(load[0], 2)} before, ${fix(load[1], 2)} after` +
        (busy ? ": other work shared the cores, so timings (PyTorch's most) are pessimistic" : ""),
    );
  }
  if (r.masker) {
    const p = prev?.masker;
    lines.push(
      `masker (7x7 preset): ${fix(r.masker.perSecond, 0)} examples/s` +
        (p ? ` [prev ${fix(p.perSecond, 0)}]` : ""),
    );
  }
  if (r.products) lines.push(...formatProducts(r.products, r.machine.cores));
  const cols = r.backends.filter((b) => !b.skipped);
  for (const b of r.backends.filter((b) => b.skipped)) lines.push(`${b.label}: skipped (${b.skipped})`);
  const before = (label: string) => prev?.backends.find((p) => p.label === label && !p.skipped);
  const rows: [string, (b: BackendResult) => string][] = [
    ["encoder forward img/s", (b) => fix(b.encoder?.perSecond)],
    ["train step img/s, tiny", (b) => fix(b.tiny?.perSecond)],
    ["train step img/s, reference", (b) => fix(b.reference?.perSecond)],
    ["  ms per reference step", (b) => fix(b.reference?.medianMs, 0)],
    ["  tokens: context / target", (b) => (b.reference ? avgTokens(b.reference.tokens) : "-")],
    ...BENCH_SHAPES.filter((sh) => cols.some((b) => b.shapes?.[sh])).flatMap((
      sh,
    ): [string, (b: BackendResult) => string][] => [
      [`train step img/s, ${sh}`, (b) => fix(b.shapes?.[sh]?.perSecond)],
      [`  ms per ${sh} step`, (b) => fix(b.shapes?.[sh]?.medianMs, 0)],
    ]),
    ["probe features img/s", (b) => fix(b.probe?.perSecond)],
    ["peak RSS GiB", (b) => fix(b.peakRssBytes / GiB, 2)],
    [
      "peak tfjs MiB (one step)",
      (b) => fix(b.peakTfjsBytes !== undefined ? b.peakTfjsBytes / MiB : undefined, 0),
    ],
    ["kernel calls per step", (b) => (b.kernelCalls !== undefined ? String(b.kernelCalls) : "-")],
    [
      "  GPU dispatches / copies",
      (b) => (b.gpuTraffic ? `${b.gpuTraffic.dispatches} / ${b.gpuTraffic.copies}` : "-"),
    ],
    [
      "  GPU MiB up / read back",
      (
        b,
      ) => (b.gpuTraffic
        ? `${fix(b.gpuTraffic.bytesUp / MiB, 1)} / ${fix(b.gpuTraffic.bytesDown / MiB, 3)}`
        : "-"),
    ],
  ];
  const w0 = Math.max(...rows.map(([n]) => n.length)) + 2;
  const cell = (b: BackendResult, f: (b: BackendResult) => string) => {
    const p = before(b.label);
    const now = f(b);
    const then = p ? f(p) : "-";
    return now + (p && then !== "-" ? ` [${then}]` : "");
  };
  const widths = cols.map((b) => Math.max(b.label.length, ...rows.map(([, f]) => cell(b, f).length)) + 3);
  lines.push("".padEnd(w0) + cols.map((b, i) => b.label.padEnd(widths[i])).join("").trimEnd());
  for (const [name, f] of rows) {
    lines.push((name.padEnd(w0) + cols.map((b, i) => cell(b, f).padEnd(widths[i])).join("")).trimEnd());
  }
  // what a machine without BLAS pays, from the same run (the CPU-speed issue asks for at most 2x)
  for (const b of cols) {
    const blas = cols.find((c) => c.label === `${b.label}+blas`);
    if (b.reference && blas?.reference) {
      lines.push(
        `${b.label} without BLAS / with: ${fix(b.reference.medianMs / blas.reference.medianMs, 2)}x time ` +
          `per reference step (${fix(b.reference.medianMs, 0)} / ${fix(blas.reference.medianMs, 0)} ms)`,
      );
    }
  }
  if (r.alternateSkipped) {
    lines.push(`wasm without BLAS / with, alternating steps: failed (${r.alternateSkipped})`);
  }
  const alt = r.alternate;
  if (alt) {
    lines.push(
      `wasm without BLAS / with, their steps alternating in one process: ${fix(alt.ratio, 2)}x ` +
        `(${fix(alt.withoutMs, 0)} / ${fix(alt.withMs, 0)} ms, median of ${alt.steps} steps each)` +
        (prev?.alternate ? ` [${fix(prev.alternate.ratio, 2)}x]` : ""),
    );
  }
  if (prev) lines.push(`[brackets: the previous run, ${prev.date}]`);
  for (const b of cols) {
    lines.push(`${b.label}: ${b.line}`);
    if (b.topKernels?.length) {
      lines.push(
        `  top kernels, one reference step: ` +
          b.topKernels.slice(0, 8).map((k) => `${k.name} ${fix(k.ms, 0)} ms (${k.calls})`).join(", "),
      );
    }
  }
  if (r.torch) {
    const ours = cols[0]?.reference;
    if (r.torch.tried?.length) {
      lines.push(
        `PyTorch setups tried (median ms per step): ` +
          r.torch.tried.map((t) => `${t.setup} ${fix(t.medianMs, 0)} ms`).join("; "),
      );
    }
    lines.push(
      `PyTorch ${r.torch.version} (${r.torch.threads} threads, ${r.torch.setup}): ${
        fix(r.torch.perSecond)
      } img/s, ` +
        `${fix(r.torch.medianMs, 0)} ms per step, peak RSS ${fix(r.torch.peakRssBytes / GiB, 2)} GiB, ` +
        `tokens ${avgTokens(r.torch.tokens)}`,
    );
    if (r.torch.libraries?.length) {
      const cores = r.torch.blasCores?.length ? ` (OpenBLAS kernels: ${r.torch.blasCores.join(", ")})` : "";
      lines.push(`  torch loaded: ${r.torch.libraries.join(", ")}${cores}`);
    }
    const off = r.torch.official;
    if (off) {
      const gap = r.torch.medianMs / off.medianMs;
      lines.push(
        `official ijepa modules, same masks and setup: ${fix(off.medianMs, 0)} ms per step, tokens ` +
          `${avgTokens(off.tokens)}; tests/reference/ijepa_step.py / official = ${fix(gap, 2)}x time ` +
          `(${Math.abs(gap - 1) <= 0.15 ? "within" : "OUTSIDE"} 15%)`,
      );
    }
    if (ours) {
      lines.push(
        `ours (${cols[0].label}) / PyTorch: ${fix(r.torch.ratio, 2)}x img/s on the same masks ` +
          `(tokens ours ${avgTokens(ours.tokens)}, PyTorch ${avgTokens(r.torch.tokens)})`,
      );
      const after = r.torch.oursAfter;
      if (after) {
        lines.push(
          `  ours: ${fix(ours.medianMs, 0)} ms per step before PyTorch's runs, ${
            fix(after.medianMs, 0)
          } ms after; ` +
            `the faster counts, as PyTorch's fastest setup does`,
        );
      }
      const alt = r.torch.alternate;
      if (alt) {
        const ms = (xs: number[]) => xs.map((x) => fix(x, 0)).join(", ");
        lines.push(
          `ours / PyTorch, ${alt.oursMs.length} round${alt.oursMs.length === 1 ? "" : "s"} alternating ` +
            `(ours' steps, then PyTorch's on its best setup): ` +
            `${fix(alt.ratio, 2)}x img/s, the median round (ours ${ms(alt.oursMs)} ms; PyTorch ${
              ms(alt.torchMs)
            } ms)` + (prev?.torch?.alternate ? ` [${fix(prev.torch.alternate.ratio, 2)}x]` : ""),
        );
      }
      if (r.torch.setup.includes("own kernel choice")) {
        lines.push(
          `  PyTorch's best ran without this environment's OPENBLAS_CORETYPE, ours with it: for like with like, ` +
            `run the bench as env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE deno task bench ...`,
        );
      }
    }
    for (const [sh, t] of Object.entries(r.torch.shapes ?? {})) {
      lines.push(
        `PyTorch ${sh} (${t.setup}): ${fix(t.medianMs, 0)} ms per step, tokens ${avgTokens(t.tokens)}; ` +
          `ours (${cols[0]?.label}) / PyTorch ${fix(t.ratio, 2)}x img/s`,
      );
    }
  } else if (r.torchSkipped) lines.push(`PyTorch: skipped (${r.torchSkipped})`);
  return lines.join("\n");
}

/** The result saved at `path` by an earlier run, if there is one that parses. */
export async function readPrevious(path: string): Promise<BenchResult | undefined> {
  if (!path) return undefined;
  try {
    return JSON.parse(await Deno.readTextFile(path)) as BenchResult;
  } catch {
    return undefined;
  }
}
