// Tests for lib/viz/output.ts: PNG output through the native resvg (size, text actually drawn),
// determinism, saving, showing outside Jupyter, and resvg loaded only on the first PNG. The wasm
// fallback, for runs without --allow-ffi/--allow-sys: png_fallback_test.ts.
//
// Run: deno test -A tests/viz/output_test.ts
// Set PLOT_LOOK_DIR=/tmp/plot-look to also write one PNG of each figure there for a visual check.

import assert from "node:assert/strict";
import { savePng, show, toPng } from "../../lib/viz/output.ts";
import { countNonWhite, decode, figures, PNG_SIGNATURE, svgSize } from "./_figures.ts";

Deno.test("toPng: PNG signature and size = scale x SVG size, for every figure", async () => {
  const dir = Deno.env.get("PLOT_LOOK_DIR");
  if (dir) await Deno.mkdir(dir, { recursive: true });
  for (const [name, make] of Object.entries(figures)) {
    const svg = make();
    const [w, h] = svgSize(svg);
    const png = toPng(svg);
    assert.deepEqual(Array.from(png.subarray(0, 8)), PNG_SIGNATURE, name);
    const img = decode(png);
    assert.deepEqual([img.width, img.height], [2 * w, 2 * h], `${name} at default scale 2`);
    assert.ok(countNonWhite(png) > 1000, `${name} draws something`);
    if (dir) await savePng(svg, `${dir}/${name}.png`);
  }
  const small = decode(toPng(figures.lines(), { scale: 1 }));
  assert.deepEqual([small.width, small.height], svgSize(figures.lines()));
});

Deno.test("toPng: text is drawn with the bundled font, and not without it", () => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="30">' +
    '<text x="5" y="20" font-size="14" font-family="DejaVu Sans, sans-serif">Hello</text></svg>';
  const withFont = countNonWhite(toPng(svg, { scale: 1 }));
  const noFont = countNonWhite(toPng(svg, { scale: 1, fontFiles: [] }));
  assert.ok(withFont > 50, `text pixels with the font: ${withFont}`);
  assert.equal(noFont, 0, "resvg silently drops text when no font is loaded");
  // Plot's own default family (system-ui) must also resolve to the bundled font.
  assert.ok(
    countNonWhite(toPng(svg.replace("DejaVu Sans, sans-serif", "system-ui"), { scale: 1 })) > 50,
  );
  assert.throws(() => toPng(svg, { scale: 0 }), /expected a positive finite scale, got 0/);
});

Deno.test("figures are deterministic: same data, same SVG and PNG bytes", () => {
  for (const make of [figures.masks, figures.confusion, figures.images]) {
    const a = make(), b = make();
    assert.equal(a, b);
    assert.deepEqual(toPng(a, { scale: 1 }), toPng(b, { scale: 1 }));
  }
});

Deno.test("savePng writes the file; show is a no-op outside Jupyter", async () => {
  const path = await Deno.makeTempFile({ suffix: ".png" });
  try {
    await savePng(figures.scatter(), path, { scale: 1 });
    const bytes = await Deno.readFile(path);
    assert.deepEqual(Array.from(bytes.subarray(0, 8)), PNG_SIGNATURE);
  } finally {
    await Deno.remove(path);
  }
  assert.equal(show("<svg/>"), undefined);
});

Deno.test("with no permissions: importing prompts for nothing, SVG works, toPng says what to do", async () => {
  const code = 'import { plotLoss, toPng } from "./lib/viz/mod.ts";\n' +
    "const svg = plotLoss([{ step: 0, loss: 1 }, { step: 1, loss: 0.5 }]);\n" +
    'try { toPng(svg); console.log("png"); } catch (e) { console.log(svg.slice(0, 4), (e as Error).message); }\n';
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--quiet", "-"],
    cwd: new URL("../..", import.meta.url),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(code));
  await writer.close();
  const { code: rc, stdout, stderr } = await child.output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(rc, 0, new TextDecoder().decode(stderr));
  assert.match(
    out,
    /^<svg toPng: no PNG renderer is ready: await preparePng\(\) first .*--allow-read, --allow-ffi and --allow-sys/,
  );
});
