// Tests for lib/viz/plot.ts: SVG structure of every figure, PNG output through resvg (size, text
// actually drawn, mask colours present), determinism, and error messages.
//
// Run: deno test -A tests/plot_test.ts
// Set PLOT_LOOK_DIR=/tmp/plot-look to also write one PNG of each figure there for a visual check.

import assert from "node:assert/strict";
import * as Plot from "@observablehq/plot";
import { DOMParser } from "linkedom";
import { Buffer } from "node:buffer";
import { PNG } from "pngjs";
import { Rng } from "../../lib/engine/rng.ts";
import {
  type MaskExample,
  plotBars,
  plotConfusion,
  plotImages,
  plotLines,
  plotLoss,
  plotMasks,
  plotScatter,
  render,
  savePng,
  show,
  textWidth,
  toPng,
} from "../../lib/viz/plot.ts";

// deno-lint-ignore no-explicit-any
type El = any;

function parse(svg: string): El {
  return new DOMParser().parseFromString(svg, "image/svg+xml");
}

/** Elements matching `selector` inside the mark groups Plot labels `aria-label="<mark>"`. */
function inMark(svg: string, mark: string, selector: string): El[] {
  return Array.from(parse(svg).querySelectorAll(`g[aria-label="${mark}"] ${selector}`));
}

/** All text in the figure, with Plot's axis-label arrows stripped ("↑ loss" -> "loss"). */
function texts(svg: string): string[] {
  return Array.from(parse(svg).querySelectorAll("text") as El[]).map((t) =>
    String(t.textContent).replace(/^[↑↓←→] /, "").replace(/ [↑↓←→]$/, "")
  );
}

function svgSize(svg: string): [number, number] {
  const m = /^<svg [^>]*width="(\d+)" height="(\d+)"/.exec(svg);
  assert.ok(m, "root <svg> with integer width and height");
  return [Number(m[1]), Number(m[2])];
}

function decode(png: Uint8Array): { width: number; height: number; data: Uint8Array } {
  return PNG.sync.read(Buffer.from(png));
}

function countNonWhite(png: Uint8Array): number {
  const { data } = decode(png);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250) n++;
  }
  return n;
}

function countColor(png: Uint8Array, hex: string): number {
  const v = parseInt(hex.slice(1), 16);
  const [r, g, b] = [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  const { data } = decode(png);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === r && data[i + 1] === g && data[i + 2] === b) n++;
  }
  return n;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** A w x h block of patch indices with its top-left corner at (r0, c0) on a grid `cols` wide. */
function block(r0: number, c0: number, h: number, w: number, cols: number): Int32Array {
  const out: number[] = [];
  for (let r = r0; r < r0 + h; r++) for (let c = c0; c < c0 + w; c++) out.push(r * cols + c);
  return Int32Array.from(out);
}

/** Seeded examples on a 7x7 grid: a 5x5 context, 2 targets that overlap each other. */
function maskExamples(withImage: boolean): MaskExample[] {
  const rng = new Rng(7);
  return Array.from({ length: 3 }, (_, e) => {
    const t1 = block(rng.int(0, 5), rng.int(0, 5), 2, 2, 7);
    const t2 = block(rng.int(0, 5), rng.int(0, 4), 2, 3, 7);
    const ctx = Array.from(block(0, 0, 5, 5, 7)).filter((p) => !t1.includes(p) && !t2.includes(p));
    const img = new Float32Array(28 * 28).map(() => rng.float());
    return {
      rows: 7,
      cols: 7,
      context: Int32Array.from(ctx),
      targets: [t1, t2],
      image: withImage && e === 1 ? { data: img, height: 28, width: 28, channels: 1 } : undefined,
    };
  });
}

/** Rects a mask figure should draw: one per patch per set it belongs to (unused counts once). */
function expectedMaskRects(examples: MaskExample[]): number {
  let n = 0;
  for (const ex of examples) {
    for (let p = 0; p < ex.rows * ex.cols; p++) {
      const k = (ex.context.includes(p) ? 1 : 0) +
        ex.targets.filter((t) => t.includes(p)).length;
      n += Math.max(1, k);
    }
  }
  return n;
}

const figures: Record<string, () => string> = {
  masks: () => plotMasks(maskExamples(true), { columns: 3 }),
  loss: () => {
    const rng = new Rng(1);
    const pts = ["run A", "run B"].flatMap((series, s) =>
      Array.from({ length: 100 }, (_, i) => ({
        step: i,
        loss: (1 + s) * Math.exp(-i / 30) + 0.05 * rng.float() + 0.01,
        series,
      }))
    );
    return plotLoss(pts, { logY: true, smooth: 8 });
  },
  lines: () =>
    plotLines(
      ["I-JEPA", "random"].flatMap((series, s) =>
        [1, 5, 10, 50].map((x) => ({ x, y: 40 + 8 * Math.log(x) - 5 * s, series }))
      ),
      { x: "labels per class", y: "accuracy (%)", title: "Few-shot probe", logX: true },
    ),
  bars: () =>
    plotBars(
      [
        { group: "1%", label: "I-JEPA", mean: 57.7, std: 2.1 },
        { group: "1%", label: "random", mean: 53.3, std: 1.2 },
        { group: "all", label: "I-JEPA", mean: 66.4 },
        { group: "all", label: "random", mean: 68.0, std: 0.4 },
      ],
      { title: "Probe accuracy", y: "accuracy (%)", x: "labels", reference: { "1%": 60 } },
    ),
  confusion: () => plotConfusion([[8, 1, 1], [2, 7, 1], [0, 3, 7]], ["T-shirt/top", "Trouser", "Bag"]),
  scatter: () => {
    const rng = new Rng(3);
    return plotScatter(
      Array.from({ length: 60 }, (_, i) => ({
        x: rng.normal() + (i % 3),
        y: rng.normal(),
        label: ["a", "b", "c"][i % 3],
      })),
      { x: "PC 1", y: "PC 2" },
    );
  },
  images: () => {
    const rng = new Rng(4);
    return plotImages(
      Array.from({ length: 5 }, (_, i) => ({
        data: new Uint8Array(16 * 16).map(() => rng.int(0, 256)),
        height: 16,
        width: 16,
        channels: 1,
        caption: i % 2 ? `predicted\nd=${i}` : `target ${i}`,
      })),
      { columns: 3, title: "Patches" },
    );
  },
};

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

Deno.test("plotMasks: one rect per patch membership, stripes for overlaps, legend and labels", () => {
  const examples = maskExamples(true);
  const svg = plotMasks(examples, { columns: 2 });
  const fills = inMark(svg, "rect", "rect[fill]").filter((r) => r.getAttribute("fill") !== "none");
  assert.equal(fills.length, expectedMaskRects(examples));
  assert.ok(expectedMaskRects(examples) > 3 * 49, "the seeded targets overlap somewhere");
  const borders = inMark(svg, "rect", 'g[fill="none"] rect');
  assert.equal(borders.length, 3 * 49, "one border per patch");
  const t = texts(svg);
  for (const want of ["context", "target 1", "target 2", "unused", "patch row", "patch column"]) {
    assert.ok(t.includes(want), `"${want}" in the figure`);
  }
  assert.ok(!t.includes("target 3"));
  assert.equal(t.filter((s) => /^#\d: (ctx|context) \d+/.test(s)).length, 3, "one label per panel");
  assert.equal((svg.match(/<image /g) ?? []).length, 1, "one example has an image");
  // Over an image the masks are see-through, elsewhere solid.
  assert.ok(svg.includes('fill-opacity="0.55"') && svg.includes('fill-opacity="1"'));
});

Deno.test("plotMasks: context and target colours appear in the PNG", () => {
  const svg = plotMasks(maskExamples(false), { columns: 3 });
  const png = toPng(svg, { scale: 1 });
  // Solid patches are at least 18x18 px; their insides are the exact legend colours.
  for (
    const [name, hex] of [["context", "#4269d0"], ["target 1", "#ff725c"], [
      "target 2",
      "#efb118",
    ], ["unused", "#dcdcdc"]]
  ) {
    assert.ok(countColor(png, hex) > 200, `${name} colour ${hex}: ${countColor(png, hex)} px`);
  }
  assert.equal(countColor(png, "#3ca951"), 0, "no target 3, so no target-3 green");
});

Deno.test("plotMasks: errors name what was expected and what came", () => {
  assert.throws(
    () => plotMasks([{ rows: 2, cols: 2, context: Int32Array.from([4]), targets: [] }]),
    /example 0 context index 4 is outside the 2x2 patch grid \(0\.\.3\)/,
  );
  assert.throws(
    () =>
      plotMasks([{
        rows: 2,
        cols: 2,
        context: Int32Array.from([0]),
        targets: [],
        image: { data: new Uint8Array(5), height: 2, width: 2, channels: 1 },
      }]),
    /expected 2x2x1 = 4 values, got 5/,
  );
  assert.throws(() => plotMasks([]), /at least one example/);
});

Deno.test("plotLoss: one line per series, smoothing adds a line each, legend only for several", () => {
  const two = figures.loss();
  assert.equal(inMark(two, "line", "path").length, 4, "raw + smoothed for each of 2 series");
  const t = texts(two);
  assert.ok(t.includes("run A") && t.includes("run B") && t.includes("loss (log scale)"));
  const one = plotLoss([{ step: 0, loss: 2 }, { step: 1, loss: 1 }, { step: 2, loss: 0.5 }]);
  assert.equal(inMark(one, "line", "path").length, 1);
  assert.ok(!texts(one).includes("loss (log scale)") && texts(one).includes("step"));
  assert.ok(!one.includes(">loss</text><svg"), "no legend for a single series");
  assert.throws(
    () => plotLoss([{ step: 3, loss: 0 }], { logY: true }),
    /logY needs positive losses, got 0 at step 3/,
  );
});

Deno.test("plotLines: a line per series and a dot per point", () => {
  const svg = figures.lines();
  assert.equal(inMark(svg, "line", "path").length, 2);
  assert.equal(inMark(svg, "dot", "circle").length, 8);
  const t = texts(svg);
  for (const want of ["Few-shot probe", "labels per class", "accuracy (%)", "I-JEPA", "random"]) {
    assert.ok(t.includes(want), `"${want}"`);
  }
});

Deno.test("plotBars: bars, error bars, value labels and the reference line", () => {
  const svg = figures.bars();
  assert.equal(inMark(svg, "bar", "rect").length, 4);
  assert.equal(inMark(svg, "rule", "line[y1][y2]").length >= 3, true);
  const t = texts(svg);
  for (const want of ["57.7", "53.3", "66.4", "68.0", "reference 60.0", "accuracy (%)", "labels"]) {
    assert.ok(t.includes(want), `"${want}" in ${JSON.stringify(t)}`);
  }
  assert.ok(svg.includes('stroke-dasharray="5,3"'), "dashed reference line");
  assert.throws(
    () => plotBars([{ group: "a", label: "x", mean: 1 }], { reference: { b: 1 } }),
    /reference for unknown group "b", expected one of \["a"\]/,
  );
});

Deno.test("plotConfusion: n x n cells, counts written, accuracy in the subtitle", () => {
  const svg = figures.confusion();
  assert.equal(inMark(svg, "cell", "rect").length, 9);
  const cellTexts = inMark(svg, "text", "text").map((e) => e.textContent);
  assert.deepEqual(cellTexts, ["8", "1", "1", "2", "7", "1", "0", "3", "7"]);
  const t = texts(svg);
  assert.ok(t.includes("accuracy 73.3% (n = 30)"), JSON.stringify(t));
  assert.ok(t.includes("predicted class") && t.includes("true class") && t.includes("count"));
  assert.throws(
    () => plotConfusion([[1, 2]], ["a", "b"]),
    /expected a 2x2 matrix for 2 class names, got 1x2/,
  );
});

Deno.test("plotScatter: a dot per point and a legend entry per class", () => {
  const svg = figures.scatter();
  assert.equal(inMark(svg, "dot", "circle").length, 60);
  const t = texts(svg);
  assert.ok(["a", "b", "c", "PC 1", "PC 2"].every((s) => t.includes(s)));
});

Deno.test("plotImages: an image and a caption per input, floats outside [0, 1] rescaled", () => {
  const svg = figures.images();
  assert.equal(inMark(svg, "image", "image").length, 5);
  const captions = inMark(svg, "text", "text").map((e) => e.textContent);
  assert.equal(captions.length, 5);
  assert.ok(
    captions.includes("target 0") && captions.includes("predictedd=1"),
    JSON.stringify(captions),
  );
  // A normalised float image (values -2..2) is min-max scaled: its PNG has pure black and white.
  const one = plotImages([{
    data: Float32Array.from([-2, 2, 0, 1]),
    height: 2,
    width: 2,
    channels: 1,
  }], { columns: 1 });
  const href = /<image [^>]*href="data:image\/png;base64,([^"]+)"/.exec(one)!;
  const px = decode(Uint8Array.from(atob(href[1]), (c) => c.charCodeAt(0))).data;
  assert.deepEqual([px[0], px[4], px[8], px[12]], [0, 255, 128, 191]);
  assert.throws(() => plotImages([], { columns: 2 }), /at least one image/);
});

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

Deno.test("textWidth matches DejaVu Sans advances", () => {
  assert.equal(textWidth("", 10), 0);
  // "m" is 1995/2048 em; "i" 569/2048 em.
  assert.ok(Math.abs(textWidth("mi", 20.48) - 25.64) < 1e-9);
  assert.ok(textWidth("WWW", 10) > textWidth("iii", 10) * 3);
});
