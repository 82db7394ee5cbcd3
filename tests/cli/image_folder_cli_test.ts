// A folder of your own images from the command line: grey and RGB PNGs of odd sizes in class
// folders go through `pretrain`, `probe` and `embed` at the model's size and channels (converted,
// said on the data line), and resuming the finished run says so instead of printing a 0-step run.
import { PNG } from "pngjs";
import { assert, assertEquals } from "../_assert.ts";
import { runCli } from "../_cli.ts";
import { Rng } from "../../lib/engine/rng.ts";

const CLASSES = ["left", "right", "top"];
/** Width x height of the files, in turn: none is the tiny preset's 16 px, two are not square. */
const SIZES: [number, number][] = [[31, 45], [20, 20], [40, 33], [28, 28]];

/**
 * `perClass` PNGs in each class folder of `dir`: a bright half (left, right or top) on a dark
 * ground with noise, every other image a grey file (colour type 0), the others RGB files with a
 * random tint.
 */
async function writeFolder(dir: string, perClass: number): Promise<void> {
  const rng = new Rng(11);
  for (const [c, cls] of CLASSES.entries()) {
    await Deno.mkdir(`${dir}/${cls}`, { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const [w, h] = SIZES[i % SIZES.length];
      const grey = i % 2 === 0;
      const tint = grey ? [1, 1, 1] : [rng.uniform(0.6, 1), rng.uniform(0.6, 1), rng.uniform(0.6, 1)];
      const bright = rng.uniform(150, 230), dark = rng.uniform(10, 60);
      const png = new PNG({ width: w, height: h });
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const on = c === 0 ? x < w / 2 : c === 1 ? x >= w / 2 : y < h / 2;
          const noise = rng.normal() * 20;
          for (let k = 0; k < 3; k++) {
            const v = (on ? bright * tint[k] : dark) + noise;
            png.data[(y * w + x) * 4 + k] = Math.max(0, Math.min(255, Math.round(v)));
          }
          png.data[(y * w + x) * 4 + 3] = 255;
        }
      }
      await Deno.writeFile(`${dir}/${cls}/${i}.png`, PNG.sync.write(png, { colorType: grey ? 0 : 2 }));
    }
  }
}

Deno.test("cli: a folder of grey and RGB PNGs of odd sizes through pretrain, probe, resume and embed", async () => {
  const root = await Deno.makeTempDir({ prefix: "ijepa_folder_cli_" });
  try {
    const data = `${root}/my-images`;
    await writeFolder(data, 20);
    const run = `${root}/run`;
    // the data line: what the files were, what the tiny preset (16 px grey) gets, what was done
    const dataLine = new RegExp(
      `data: image folder \\(48 train / 12 test held out with seed 0\\) from ${data}: ` +
        `60 images \\(30 grey, 30 RGB\\) of 4 sizes from 20x20 to 31x45 px as 16x16 grey: ` +
        `30 converted from RGB \\(luma\\), 30 centre-cropped, 60 resized\\n`,
    );

    const p = await runCli("pretrain", [
      "--data",
      data,
      "--preset",
      "tiny",
      "--steps",
      "30",
      "--out",
      run,
      "--backend",
      "wasm",
    ]);
    assertEquals(p.code, 0, p.stderr);
    assert(dataLine.test(p.stderr), p.stderr);
    assert(
      /trained 30 steps in [\d.]+ s \([\d.]+ img\/s on wasm\); loss \d\.\d{4} -> \d\.\d{4}/.test(p.stdout),
      p.stdout,
    );
    for (const method of ["I-JEPA", "random init", "raw pixels"]) {
      assert(new RegExp(`^${method} +\\d+ +\\d+\\.\\d ± \\d+\\.\\d`, "m").test(p.stdout), p.stdout);
    }

    // probe the run on the same folder: one JSON object, the data line on stderr
    const r = await runCli("probe", [
      "--run",
      run,
      "--data",
      data,
      "--backend",
      "wasm",
      "--seeds",
      "2",
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    assert(dataLine.test(r.stderr), r.stderr);
    assert(r.stderr.includes("50-shot left out: the pool's smallest class has 16 images"), r.stderr);
    const t = JSON.parse(r.stdout);
    assertEquals(t.rows.map((x: { method: string }) => x.method), ["I-JEPA", "random init", "raw pixels"]);
    const settings = t.settings.map((s: { name: string }) => s.name);
    assertEquals(settings, ["1-shot", "5-shot", "10-shot", "1%", "full"]);
    for (const row of t.rows) {
      for (const c of row.probe) {
        assert(c.mean >= 0 && c.mean <= 1 && Number.isFinite(c.std), JSON.stringify(c));
      }
    }
    // the images reached the probe with their labels: the classes are plain in pixels and in the
    // trained encoder's features (chance is 33%)
    const tenShot = (i: number) => t.rows[i].probe[settings.indexOf("10-shot")].mean;
    assert(tenShot(2) >= 0.9, `raw pixels 10-shot ${tenShot(2)}`);
    assert(tenShot(0) >= 0.6, `I-JEPA 10-shot ${tenShot(0)}`);

    // resuming the finished run: nothing to train, said plainly, then the final weights and probe
    const again = await runCli("pretrain", [
      "--resume",
      "--out",
      run,
      "--data",
      data,
      "--backend",
      "wasm",
      "--probe=false",
    ]);
    assertEquals(again.code, 0, again.stderr);
    assert(
      again.stdout.includes(`the run in ${run} had already finished at step 30/30: nothing to train`),
      again.stdout,
    );
    assert(!/undefined|NaN| 0 img\/s/.test(again.stdout), again.stdout);

    // embed reads the folder the same way and says so
    const e = await runCli("embed", [
      "--weights",
      `${run}/final.safetensors`,
      "--data",
      data,
      "--out",
      `${root}/f.npy`,
      "--backend",
      "wasm",
    ]);
    assertEquals(e.code, 0, e.stderr);
    assert(
      e.stderr.includes(`data: image files under ${data}: 60 images (30 grey, 30 RGB) of 4 sizes`),
      e.stderr,
    );
    assert(e.stdout.includes("60 x 32 features"), e.stdout);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
