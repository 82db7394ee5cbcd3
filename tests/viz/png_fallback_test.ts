// Tests for PNG output without resvg's native addon (lib/viz/png_wasm.ts and the renderer choice in
// lib/viz/output.ts): runs without --allow-ffi/--allow-sys fall back to resvg's wasm build, which
// draws the same pixels as the native renderer; toPng says what to do when no renderer is ready;
// the plot task writes the same PNG either way.
//
// Run: deno test -A tests/viz/png_fallback_test.ts
// Set PLOT_LOOK_DIR=/tmp/plot-look to keep the wasm-drawn PNGs there for a visual check.

import assert from "node:assert/strict";
import { preparePng, toPng } from "../../lib/viz/output.ts";
import { DEFAULTS } from "../../lib/viz/defaults.ts";
import { runCli } from "../_cli.ts";
import { countNonWhite, decode, figures, PNG_SIGNATURE, svgSize } from "./_figures.ts";

const ROOT = new URL("../..", import.meta.url);

/** Runs `code` as a script in the repository root with exactly `flags`, never prompting. */
async function runScript(code: string, flags: string[], args: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--quiet", ...flags, "-", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(code));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Mean absolute difference of two same-size decoded PNGs, per channel value (0..255). */
function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  const x = decode(a), y = decode(b);
  assert.deepEqual([x.width, x.height], [y.width, y.height], "same size");
  let sum = 0;
  for (let i = 0; i < x.data.length; i++) sum += Math.abs(x.data[i] - y.data[i]);
  return sum / x.data.length;
}

/**
 * Largest mean per-channel difference allowed between the two renderers. Here they agree byte for
 * byte; the margin is for float rounding on other platforms. Text missing from one costs 0.6 to 4.
 */
const MAX_DIFF = 0.1;

/** Pixels dark on all three channels: text, axes and lines, not the white page or pale fills. */
function countDark(png: Uint8Array): number {
  const { data } = decode(png);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] < 100 && data[i + 1] < 100 && data[i + 2] < 100) n++;
  return n;
}

Deno.test("savePng without --allow-ffi/--allow-sys: resvg's wasm build draws what the native one draws", async () => {
  const dir = Deno.env.get("PLOT_LOOK_DIR") ?? await Deno.makeTempDir({ prefix: "ijepa-png-" });
  await Deno.mkdir(dir, { recursive: true });
  try {
    const names = Object.keys(figures);
    for (const name of names) await Deno.writeTextFile(`${dir}/${name}.svg`, figures[name]());
    const code = 'import { savePng } from "./lib/viz/mod.ts";\n' +
      'import { preparePng } from "./lib/viz/output.ts";\n' +
      "const [dir, ...names] = Deno.args;\n" +
      "for (const n of names) await savePng(await Deno.readTextFile(`${dir}/${n}.svg`), `${dir}/${n}.wasm.png`);\n" +
      "console.log(await preparePng());\n";
    const r = await runScript(code, ["--allow-read", `--allow-write=${dir}`], [dir, ...names]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "wasm", "the child had no ffi: the wasm renderer drew");
    for (const name of names) {
      const svg = await Deno.readTextFile(`${dir}/${name}.svg`);
      const wasm = await Deno.readFile(`${dir}/${name}.wasm.png`);
      assert.deepEqual(Array.from(wasm.subarray(0, 8)), PNG_SIGNATURE, name);
      const [w, h] = svgSize(svg);
      const img = decode(wasm);
      assert.deepEqual([img.width, img.height], [2 * w, 2 * h], `${name} at default scale 2`);
      // Text drawn: well over the dark pixels of the same figure drawn with no font at all.
      const [dark, noText] = [countDark(wasm), countDark(toPng(svg, { fontFiles: [] }))];
      assert.ok(dark > noText + 1000, `${name}: ${dark} dark pixels, ${noText} without text`);
      // This process has ffi: toPng here is the native addon. Same resvg version, same font, same
      // white page: anti-aliasing may differ by a level here and there, the drawing may not.
      const diff = meanAbsDiff(wasm, toPng(svg));
      assert.ok(
        diff < MAX_DIFF,
        `${name}: wasm and native differ by ${diff.toFixed(3)} per channel on average`,
      );
    }
  } finally {
    if (!Deno.env.get("PLOT_LOOK_DIR")) await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("toPng with no renderer ready says what to do; preparePng makes it work without ffi", async () => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="30">' +
    '<text x="5" y="20" font-size="14" font-family="DejaVu Sans, sans-serif">Hello</text></svg>';
  const code = 'import { toPng } from "./lib/viz/mod.ts";\n' +
    'import { preparePng } from "./lib/viz/output.ts";\n' +
    `const svg = ${JSON.stringify(svg)};\n` +
    "const tryPng = (o = {}) => { try { return `png ${toPng(svg, o).length}`; } catch (e) { return (e as Error).message; } };\n" +
    "console.log(tryPng());\n" +
    "try { await preparePng({ renderer: 'native' }); } catch (e) { console.log((e as Error).message); }\n" +
    "console.log(await preparePng());\n" +
    "console.log(tryPng());\n" +
    "console.log(tryPng({ renderer: 'native' }));\n";
  const r = await runScript(code, ["--allow-read"]);
  assert.equal(r.code, 0, r.stderr);
  const [before, nativeAsked, prepared, after, nativeAfter] = r.stdout.trim().split("\n");
  assert.match(
    before,
    /^toPng: no PNG renderer is ready: await preparePng\(\) first .*--allow-read, --allow-ffi and --allow-sys/,
  );
  assert.match(
    nativeAsked,
    /^preparePng: the native renderer needs --allow-read, --allow-ffi and --allow-sys/,
  );
  assert.equal(prepared, "wasm");
  assert.match(after, /^png \d+$/, "synchronous toPng works once the wasm renderer is loaded");
  assert.match(nativeAfter, /^toPng: the native renderer needs .*\(granted: false\)/);

  // With no read permission the wasm file cannot be read: the error names the file and the flag.
  const none = await runScript(
    'import { preparePng } from "./lib/viz/output.ts";\n' +
      "try { await preparePng(); } catch (e) { console.log((e as Error).message); }\n",
    [],
  );
  assert.equal(none.code, 0, none.stderr);
  assert.match(
    none.stdout,
    /^preparePng: could not load resvg's wasm file from file:.*index_bg\.wasm \(a file: URL needs --allow-read/,
  );
});

Deno.test("fontBuffers go to the wasm renderer; in-process, the wasm and native renderers agree", async () => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="30">' +
    '<text x="5" y="20" font-size="14" font-family="DejaVu Sans, sans-serif">Hello</text></svg>';
  const font = await Deno.readFile(DEFAULTS.fontUrl);
  // Until the wasm renderer is loaded, font bytes have nothing to draw them (the native one takes paths).
  assert.throws(
    () => toPng(svg, { fontBuffers: [font] }),
    /await preparePng\(\{ renderer: "wasm" \}\) first/,
  );
  assert.equal(await preparePng(), "native", "this process has ffi");
  assert.equal(await preparePng({ renderer: "wasm" }), "wasm");
  const native = toPng(svg, { scale: 1 });
  const wasm = toPng(svg, { scale: 1, renderer: "wasm" });
  assert.ok(countNonWhite(wasm) > 50, `text pixels drawn by wasm: ${countNonWhite(wasm)}`);
  assert.ok(meanAbsDiff(native, wasm) < MAX_DIFF, `wasm and native differ by ${meanAbsDiff(native, wasm)}`);
  assert.deepEqual(
    toPng(svg, { scale: 1, fontBuffers: [font] }),
    wasm,
    "the bundled font passed in as bytes",
  );
  // No font, no text, with either kind of font option.
  assert.equal(countNonWhite(toPng(svg, { scale: 1, fontBuffers: [] })), 0);
  assert.equal(countNonWhite(toPng(svg, { scale: 1, fontFiles: [], renderer: "wasm" })), 0);
  // Pixel images keep their hard edges ("pixelated") in the wasm build too.
  const images = figures.images();
  assert.ok(meanAbsDiff(toPng(images), toPng(images, { renderer: "wasm" })) < MAX_DIFF);
});

Deno.test("a bundled font served over http(s), as from JSR, is fetched and drawn by the wasm renderer", async () => {
  // The child serves the font itself and points DEFAULTS.fontUrl at it, as an import from jsr.io
  // would (import.meta.url on https:). It has ffi, yet the native renderer reads fonts by path only.
  const dir = await Deno.makeTempDir({ prefix: "ijepa-png-font-" });
  try {
    const svg = figures.lines();
    await Deno.writeTextFile(`${dir}/lines.svg`, svg);
    const code = 'import { DEFAULTS } from "./lib/viz/defaults.ts";\n' +
      'import { preparePng, savePng } from "./lib/viz/output.ts";\n' +
      "const font = await Deno.readFile(DEFAULTS.fontUrl);\n" +
      'const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response(font));\n' +
      "DEFAULTS.fontUrl = new URL(`http://127.0.0.1:${server.addr.port}/fonts/DejaVuSans.ttf`);\n" +
      "console.log(await preparePng());\n" +
      "await savePng(await Deno.readTextFile(`${Deno.args[0]}/lines.svg`), `${Deno.args[0]}/lines.png`);\n" +
      "await server.shutdown();\n";
    const flags = [
      "--allow-read",
      `--allow-write=${dir}`,
      "--allow-net=127.0.0.1",
      "--allow-ffi",
      "--allow-sys",
    ];
    const r = await runScript(code, flags, [dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "wasm");
    const diff = meanAbsDiff(await Deno.readFile(`${dir}/lines.png`), toPng(svg));
    assert.ok(diff < MAX_DIFF, `the served font draws what the file does: they differ by ${diff}`);

    // Unreachable font URL: preparePng still loads the renderer; the first PNG that needs the
    // font says where it looked and what to pass instead.
    const bad = await runScript(
      'import { DEFAULTS } from "./lib/viz/defaults.ts";\n' +
        'import { preparePng, toPng } from "./lib/viz/output.ts";\n' +
        'DEFAULTS.fontUrl = new URL("https://fonts.invalid/DejaVuSans.ttf");\n' +
        "console.log(await preparePng());\n" +
        "try { toPng(\"<svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'/>\"); } " +
        "catch (e) { console.log((e as Error).message); }\n",
      ["--allow-read"],
    );
    assert.equal(bad.code, 0, bad.stderr);
    assert.match(
      bad.stdout,
      /^wasm\ntoPng: could not load the bundled font from https:\/\/fonts\.invalid\/DejaVuSans\.ttf \(.*https: needs --allow-net\).*pass the font yourself: \{ fontBuffers: \[bytes\] \}/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli plot --out x.png: the task (native) and the same script without ffi (wasm) write the same PNG", async () => {
  const root = await Deno.makeTempDir({ prefix: "ijepa-plot-png-" });
  try {
    const run = `${root}/run`;
    await Deno.mkdir(run);
    const rows = Array.from(
      { length: 20 },
      (_, i) =>
        JSON.stringify({ step: i + 1, steps: 20, loss: 1 / (i + 2), imgPerSec: 40 + i, elapsed: i + 1 }),
    );
    await Deno.writeTextFile(`${run}/metrics.jsonl`, rows.join("\n") + "\n");
    const native = await runCli("plot", [run, "--out", `${root}/native.png`]);
    assert.equal(native.code, 0, native.stderr);
    // The same task script as a user without --allow-ffi/--allow-sys would run it.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--allow-read",
        "--allow-env",
        `--allow-write=${root}`,
        "lib/cli/plot.ts",
        run,
        "--out",
        `${root}/wasm.png`,
      ],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(new TextDecoder().decode(out.stdout), /wrote .*wasm\.png: 20 steps/);
    const a = await Deno.readFile(`${root}/native.png`), b = await Deno.readFile(`${root}/wasm.png`);
    assert.deepEqual(Array.from(b.subarray(0, 8)), PNG_SIGNATURE);
    assert.ok(
      countDark(b) >= 0.95 * countDark(a),
      `dark pixels: wasm ${countDark(b)}, native ${countDark(a)}`,
    );
    assert.ok(meanAbsDiff(a, b) < MAX_DIFF, `plot PNGs differ by ${meanAbsDiff(a, b)}`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
