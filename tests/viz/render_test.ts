// Tests for lib/viz/render.ts and lib/viz/text.ts: Plot flattened to standalone SVG (HTML parts
// drawn as SVG text, the bundled font, a canvas stand-in for ramp legends and rasters), and text
// measurement.
//
// Run: deno test -A tests/viz/render_test.ts

import assert from "node:assert/strict";
import * as Plot from "@observablehq/plot";
import { render } from "../../lib/viz/render.ts";
import { toPng } from "../../lib/viz/output.ts";
import { textWidth } from "../../lib/viz/text.ts";
import { decode, figures, texts } from "./_figures.ts";

Deno.test("render: flat standalone SVG with xmlns, white background and the bundled font", () => {
  const svg = render({
    title: "A & B <title>",
    subtitle: "sub",
    caption: "the caption",
    color: { legend: true },
    marks: [
      Plot.dot([{ x: 1, y: 2, c: "a" }, { x: 2, y: 1, c: "b" }], { x: "x", y: "y", fill: "c" }),
    ],
  });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(!/<(figure|div|h2|h3|span|figcaption)\b/.test(svg), "no HTML left in the SVG");
  assert.ok(!svg.includes("system-ui"), "Plot's default font replaced");
  assert.ok(svg.includes('font-family="DejaVu Sans, sans-serif"'));
  const t = texts(svg);
  for (const want of ["A & B <title>", "sub", "the caption", "a", "b"]) {
    assert.ok(t.includes(want), `text "${want}" in ${JSON.stringify(t)}`);
  }
  // resvg's XML parser is strict: rendering proves the escaping produced well-formed XML.
  assert.ok(toPng(svg, { scale: 1 }).length > 100);
});

Deno.test("render: a continuous colour legend works without a browser canvas", () => {
  const svg = figures.confusion();
  const href = /<image [^>]*href="data:image\/png;base64,([^"]+)"/.exec(svg);
  assert.ok(href, "ramp legend drawn as an embedded PNG");
  const ramp = decode(Uint8Array.from(atob(href[1]), (c) => c.charCodeAt(0)));
  assert.deepEqual([ramp.width, ramp.height], [256, 1]);
  // "blues": light at the low end, dark at the high end.
  assert.ok(
    ramp.data[0] > 230 && ramp.data[255 * 4] < 60,
    `ramp ends ${ramp.data[0]}, ${ramp.data[1020]}`,
  );
  // The same stand-in lets a raster mark draw: one embedded image per raster.
  const raster = render({
    marks: [
      Plot.raster({ width: 4, height: 4, x1: 0, x2: 4, y1: 0, y2: 4, fill: (x: number) => x }),
    ],
  });
  assert.equal((raster.match(/<image /g) ?? []).length, 1);
});

Deno.test("textWidth matches DejaVu Sans advances", () => {
  assert.equal(textWidth("", 10), 0);
  // "m" is 1995/2048 em; "i" 569/2048 em.
  assert.ok(Math.abs(textWidth("mi", 20.48) - 25.64) < 1e-9);
  assert.ok(textWidth("WWW", 10) > textWidth("iii", 10) * 3);
});
