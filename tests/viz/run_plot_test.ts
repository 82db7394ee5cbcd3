// lib/viz/run_plot.ts and figure_file.ts: a run's three panels with their titles and axis labels,
// the resume markers and the collapse level, a note where the run recorded no spread, and figure
// files whose format follows the extension.
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { plotRun } from "../../lib/viz/run_plot.ts";
import { figureFormat, saveFigure } from "../../lib/viz/figure_file.ts";
import { countNonWhite, decode, parse, PNG_SIGNATURE, texts } from "./_figures.ts";

const rows = Array.from({ length: 80 }, (_, i) => ({
  step: i + 1,
  loss: 0.5 * Math.exp(-i / 30),
  imgPerSec: 20 + (i % 5),
  ...(i % 10 === 0 ? { targetStd: 0.3 - i / 1000 } : {}),
}));

Deno.test("run plot: loss, spread and throughput panels, titled, with axis labels and markers", () => {
  const svg = plotRun(rows, { title: "Run runs/x", subtitle: "preset tiny", resumes: [40, 500] });
  const words = texts(svg);
  for (
    const t of [
      "Run runs/x",
      "preset tiny",
      "Training loss",
      "Target-feature spread (collapse watch)",
      "Throughput",
      "loss (log scale)",
      "target std",
      "images / s",
    ]
  ) {
    assert(words.includes(t), `no "${t}" in ${JSON.stringify(words)}`);
  }
  assertEquals(words.filter((w) => w === "step").length, 3, "an x label per panel");
  const doc = parse(svg);
  // one resume marker per panel (step 500 is past the run and left out)
  assertEquals(doc.querySelectorAll('g[stroke-dasharray="4,3"] line').length, 3);
  // the collapse level: 0.1 x the first std
  assertEquals(doc.querySelectorAll('g[stroke="#d62728"] line').length, 1);
  assertEquals(doc.querySelectorAll("svg > svg").length, 3, "three panels");
  // 80 loss points drawn with a moving mean: two lines in the loss panel
  assert(svg.includes("mean of the last 4"), "no smoothing note");
});

Deno.test("run plot: a run without spread measurements says so instead of an empty panel", () => {
  const bare = rows.map(({ step, loss, imgPerSec }) => ({ step, loss, imgPerSec }));
  const svg = plotRun(bare.slice(0, 1), { title: "one step" });
  assert(texts(svg).some((t) => t.startsWith("not measured in this run")), texts(svg).join(" | "));
  assertEquals(parse(svg).querySelectorAll("circle").length, 2, "a single step shows as dots (loss, speed)");
  assertThrows(() => plotRun([], { title: "none" }), RangeError, "expected at least one metrics row");
});

Deno.test("figure files: the extension picks SVG text or PNG bytes; others are refused", async () => {
  assertEquals([figureFormat("a.svg"), figureFormat("b/c.PNG")], ["svg", "png"]);
  assertThrows(() => figureFormat("a.jpg"), Error, "ending in .svg or .png");
  const dir = await Deno.makeTempDir();
  try {
    const svg = plotRun(rows, { title: "run" });
    await saveFigure(svg, `${dir}/r.svg`);
    assertEquals((await Deno.readTextFile(`${dir}/r.svg`)).trim(), svg);
    await saveFigure(svg, `${dir}/r.png`, { scale: 1 });
    const png = await Deno.readFile(`${dir}/r.png`);
    assertEquals([...png.subarray(0, 8)], PNG_SIGNATURE);
    const { width } = decode(png);
    assertEquals(width, Number(/width="(\d+)"/.exec(svg)![1]));
    assert(countNonWhite(png) > 5000, "the PNG is nearly blank");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
