// Tests for the figure factories of lib/viz (figures_images.ts, figures_curves.ts,
// figures_results.ts): SVG structure of every figure, mask colours in the PNG, and error messages.
//
// Run: deno test -A tests/viz/figures_test.ts

import assert from "node:assert/strict";
import { plotLoss } from "../../lib/viz/figures_curves.ts";
import { plotImages, plotMasks } from "../../lib/viz/figures_images.ts";
import { plotBars, plotConfusion } from "../../lib/viz/figures_results.ts";
import { toPng } from "../../lib/viz/output.ts";
import { countColor, decode, expectedMaskRects, figures, inMark, maskExamples, texts } from "./_figures.ts";

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
