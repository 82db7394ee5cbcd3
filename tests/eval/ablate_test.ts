// The study runner on the tiny preset: every arm runs, results are written, a rerun skips them.
import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "../_assert.ts";
import { formatSummary, runStudy, studyArms, summarise } from "../../lib/eval/ablate.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { loadFashionMnist } from "../../lib/data/load.ts";
import { subset } from "../../lib/data/stats.ts";

const full = await loadFashionMnist({ dir: new URL("../../data/fashion-mnist/", import.meta.url).pathname });
// a small, class-balanced slice keeps the probe fast: 40 per class to train, 20 per class to test
function slice(ds: typeof full.train, per: number) {
  const seen = new Array(10).fill(0), idx: number[] = [];
  for (let i = 0; i < ds.n; i++) if (seen[ds.labels[i]]++ < per) idx.push(i);
  return subset(ds, idx);
}
const data = { ...full, train: slice(full.train, 40), test: slice(full.test, 20) };

Deno.test("ablate: the targets study runs both arms, writes results and resumes by skipping them", async () => {
  await setBackend("wasm", { quiet: true });
  const out = await Deno.makeTempDir();
  // the study every call below starts from; each changes one thing
  const base = { study: "targets", preset: "tiny", steps: 4, seeds: 1, data, outDir: out } as const;
  try {
    const lines: string[] = [];
    const r = await runStudy({ ...base, log: (l) => lines.push(l) });
    assertEquals(Object.keys(r.arms).sort(), ["pixels / seed 0", "representation (I-JEPA) / seed 0"]);
    const saved = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    assertEquals(Object.keys(saved.arms).length, 2);
    assert(saved.baselines.rows.some((x: { method: string }) => x.method === "raw pixels"));
    // both encoders are probed in the targets study
    assertEquals(r.arms["pixels / seed 0"].table.rows.length, 2);
    // the pixel arm's loss is a pixel regression, different from the representation arm's
    assert(r.arms["pixels / seed 0"].firstLoss !== r.arms["representation (I-JEPA) / seed 0"].firstLoss);
    const rows = summarise(r);
    assert(rows.length >= 4);
    assert(formatSummary(rows, r).includes("66.9"));
    // every probed encoder and baseline has its RankMe, between 1 and its feature width
    for (const row of [...r.arms["pixels / seed 0"].table.rows, ...r.baselines!.rows]) {
      assert(row.rankMe! >= 1 && row.rankMe! <= row.dim, `${row.method}: RankMe ${row.rankMe} of ${row.dim}`);
    }
    assert(formatSummary(rows, r).split("\n")[1].includes("RankMe"));
    // a second run finds both arms done
    const again: string[] = [];
    const before = await Deno.stat(`${out}/results.json`);
    await runStudy({ ...base, log: (l) => again.push(l) });
    assertEquals(again.filter((l) => l.endsWith("done earlier, skipped")).length, 2);
    assertEquals((await Deno.stat(`${out}/results.json`)).mtime?.getTime(), before.mtime?.getTime());
    // a different study in the same folder is refused, not mixed in
    await assertRejects(
      () => runStudy({ ...base, study: "masking" }),
      Error,
      "holds a targets study of tiny for 4 steps",
    );
    // so is the same study on other images (e.g. with nuisance backgrounds)
    const { withNuisance } = await import("../../lib/data/nuisance.ts");
    const noisy = { ...data, train: withNuisance(data.train, { kind: "noise", strength: 0.5, seed: 1 }) };
    noisy.source = noisy.train.source;
    await assertRejects(
      () => runStudy({ ...base, data: noisy }),
      Error,
      "with noise backgrounds at strength 0.5",
    );
    // asked for a second seed, the study trains only the new arms and reports two seeds
    // (the runs done earlier are reported before any starts, so a progress display's ETA counts
    // only the two new ones)
    const events: string[] = [];
    const more = await runStudy({ ...base, seeds: 2, onRun: (run, e) => events.push(`${run.index} ${e}`) });
    assertEquals(events, ["1 skipped", "3 skipped", "2 start", "2 done", "4 start", "4 done"]);
    assertEquals(more.seeds, 2);
    assertEquals(Object.keys(more.arms).length, 4);
    assertEquals(more.arms["pixels / seed 0"], r.arms["pixels / seed 0"]);
    // a third seed of one arm only: the other arm's runs are neither trained nor dropped
    const picked: string[] = [];
    const one = await runStudy({
      ...base,
      seeds: 3,
      arms: ["pixels"],
      onRun: (run, e) => picked.push(`${run.name} ${e}`),
    });
    assertEquals(picked, [
      "pixels / seed 0 skipped",
      "pixels / seed 1 skipped",
      "pixels / seed 2 start",
      "pixels / seed 2 done",
    ]);
    assertEquals(Object.keys(one.arms).length, 5);
    assert(!one.arms["representation (I-JEPA) / seed 2"]);
    assertEquals(one.seeds, 2, "the study's seed count stays that of every arm");
    const head = formatSummary(summarise(one), one).split("\n")[0];
    assert(head.includes("seeds per arm: representation (I-JEPA) 2, pixels 3"), head);
    // so is the same study with other model settings for every arm, and a wrong setting fails first
    await assertRejects(
      () => runStudy({ ...base, model: { predictorDepth: 2 } }),
      Error,
      'model {}, EMA 0.996,1; this run asks for targets, tiny, 4 steps, model {"predictorDepth":2}',
    );
    // and so is another EMA schedule
    await assertRejects(
      () => runStudy({ ...base, ema: [0.9999, 1] }),
      Error,
      "EMA 0.9999,1: use another --out",
    );
    await assertRejects(
      () => runStudy({ ...base, outDir: `${out}/x`, model: { depht: 2 } as never }),
      Error,
      "depht",
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("ablate: the masking arms differ only in their masks", () => {
  const arms = studyArms("masking", 7);
  assertEquals(arms.map((a) => a.masks.strategy), [
    "multiblock",
    "multiblock",
    "rasterized",
    "block",
    "random",
  ]);
  assertEquals(new Set(arms.map((a) => a.masks.minKeep)).size, 1);
  for (const a of arms) assertEquals(a.model, {});
  assertEquals(studyArms("masking", 4)[0].masks.minKeep, 4); // a 2x2 quadrant on a 4x4 grid
});

Deno.test("ablate: an EMA schedule reaches the trainer and is recorded beside the model settings", async () => {
  await setBackend("wasm", { quiet: true });
  const out = await Deno.makeTempDir();
  try {
    const r = await runStudy({
      study: "targets",
      preset: "tiny",
      steps: 3,
      seeds: 1,
      data,
      outDir: out,
      arms: ["representation (I-JEPA)"],
      model: { sigregWeight: 0.05 },
      ema: [0.5, 0.75],
    });
    assertEquals(JSON.parse(await Deno.readTextFile(`${out}/results.json`)).ema, [0.5, 0.75]);
    const run = [...Deno.readDirSync(out)].find((e) => e.isDirectory)!.name;
    const momenta = (await Deno.readTextFile(`${out}/${run}/metrics.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l).momentum);
    assertEquals(momenta.length, 3);
    assertAlmostEquals(momenta[0], 0.5, 1e-12);
    assert(momenta[2] > momenta[1] && momenta[2] <= 0.75, `momenta ${momenta}`);
    const head = formatSummary(summarise(r), r).split("\n")[0];
    assert(head.includes("(sigregWeight=0.05, EMA 0.5 -> 0.75)"), head);
    await assertRejects(
      () =>
        runStudy({ study: "targets", preset: "tiny", steps: 3, seeds: 1, data, outDir: out, ema: [0.5, 2] }),
      RangeError,
      "ema must be two momenta in [0, 1]",
    );
    // the study's settings are on disk before its first run trains: a study stopped there and
    // restarted with another schedule is refused, not resumed from that run's checkpoint
    const early = `${out}/early`;
    const first = { study: "targets", preset: "tiny", steps: 3, seeds: 1, data, outDir: early } as const;
    const stopped = await runStudy({
      ...first,
      ema: [0.5, 0.75],
      onStep: () => {
        throw new Error("stopped in the first run");
      },
    }).catch((e) => (e as Error).message);
    assertEquals(stopped, "stopped in the first run");
    assertEquals(JSON.parse(await Deno.readTextFile(`${early}/results.json`)).arms, {});
    await assertRejects(
      () => runStudy(first),
      Error,
      "EMA 0.5,0.75; this run asks for targets, tiny, 3 steps, model {}, EMA 0.996,1",
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("ablate: --ema parses START,END and refuses anything else", async () => {
  const { parseEma } = await import("../../lib/eval/ablate_settings.ts");
  assertEquals(parseEma("0.9999, 1"), [0.9999, 1]);
  for (const bad of ["0.99", "0.9,1.2", "a,b", ",1"]) {
    assertThrows(
      () => parseEma(bad),
      Error,
      `--ema expects START,END, two momenta in [0, 1] (e.g. 0.9999,1), got "${bad}"`,
    );
  }
});

Deno.test("ablate: --model settings parse into config fields", async () => {
  const { parseModelSettings } = await import("../../lib/eval/ablate_settings.ts");
  assertEquals(parseModelSettings("predictorDepth=2, loss=l2,varianceWeight=0"), {
    predictorDepth: 2,
    loss: "l2",
    varianceWeight: 0,
  } as never);
  assertEquals(parseModelSettings(""), {});
  assertThrows(() => parseModelSettings("predictorDepth"), Error, "--model expects key=value pairs");
});
