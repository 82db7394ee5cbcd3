// lib/train/run_record.ts and the trainer's rows: metrics rows carry wall-clock time and an
// `elapsed` that keeps counting across a resume; old rows (no time, restarting elapsed) still read;
// config.json gets a resume record appended, made from the checkpoint when a run has none.
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { IJEPA } from "../../lib/model/ijepa.ts";
import { CHECKPOINT_FILE, EMATrainer } from "../../lib/train/trainer.ts";
import {
  parseMetrics,
  readRunConfig,
  recordResume,
  resumeData,
  type RunConfig,
  runDataFlag,
  toolkitVersion,
  trainingSeconds,
  truncateMetrics,
  writeRunConfig,
} from "../../lib/train/run_record.ts";

Deno.test("run record: metrics text reads with or without time; a cut last line is left out, others named", () => {
  const old =
    '{"step":1,"loss":0.5,"elapsed":2,"imgPerSec":8}\n{"step":2,"loss":0.4,"elapsed":1,"imgPerSec":8}\n';
  const rows = parseMetrics(old + '{"step":3,"lo', "m.jsonl");
  assertEquals(rows.map((r) => [r.step, r.time]), [[1, undefined], [2, undefined]]);
  assertEquals(trainingSeconds(old), 3, "a restarted elapsed adds up by segments");
  assertThrows(
    () => parseMetrics('{"step":1,"lo\n{"step":2,"loss":1}\n', "m.jsonl"),
    Error,
    "m.jsonl: line 1 is not JSON",
  );
  assertThrows(
    () => parseMetrics('{"loss":1}\n', "m.jsonl"),
    Error,
    'line 1 is not a metrics row (expected "step"',
  );
});

Deno.test("run record: config.json keeps its start and gains a resume record; a run without one gets one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa-record-" });
  try {
    const versions = { deno: Deno.version.deno, tfjs: "x", toolkit: toolkitVersion() };
    const start: RunConfig = {
      argv: ["--steps", "4"],
      started: "2025-01-01T00:00:00.000Z",
      preset: "tiny",
      seed: 0,
      data: "d",
      backend: "backend: cpu",
      versions,
      model: { width: 32 },
      trainer: { steps: 4 },
      resumes: [],
    };
    await writeRunConfig(dir, start);
    const resume = {
      time: "2025-01-02T00:00:00.000Z",
      argv: ["--resume"],
      step: 2,
      backend: "b",
      data: "d",
      versions,
    };
    const fallback = () => {
      throw new Error("not needed: the run has a config.json");
    };
    await recordResume(dir, resume, fallback);
    await recordResume(dir, { ...resume, step: 3 }, fallback);
    const back = await readRunConfig(dir);
    assertEquals(back, { ...start, resumes: [resume, { ...resume, step: 3 }] });

    const older = `${dir}/older`;
    await Deno.mkdir(older);
    const made = await recordResume(older, resume, () => ({ ...start, argv: null, started: null }));
    assertEquals([made.argv, made.started, made.resumes.length], [null, null, 1]);
    assertEquals(await readRunConfig(`${dir}/none`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainer: rows carry time, and elapsed goes on across an interruption and a resume", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const dir = await Deno.makeTempDir({ prefix: "ijepa-elapsed-" });
  const images = new Uint8Array(16 * 16 * 16).map((_, i) => (i * 37) % 251);
  const ds = {
    images,
    labels: new Int32Array(16),
    n: 16,
    height: 16,
    width: 16,
    channels: 1,
    classNames: ["x"],
    source: "demo",
  };
  try {
    const model = new IJEPA("tiny", { seed: 0 });
    const trainer = new EMATrainer(model, { batchSize: 4, steps: 6, masks: { minKeep: 2 }, outDir: dir });
    const stop = new AbortController();
    const first = await trainer.fit(ds, {
      onStep: (s) => void (s.step === 3 && stop.abort()),
      signal: stop.signal,
    });
    assertEquals([first.interrupted, first.step], [true, 3]);
    const atStop = trainer.elapsed;
    assert(atStop > 0, `elapsed ${atStop}`);
    trainer.dispose();
    model.dispose();
    // a row written after the checkpoint, as by a process killed before its next checkpoint
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step":4,"loss":1,"elapsed":0.1}\n{"step":5,"lo', {
      append: true,
    });

    const resumed = await EMATrainer.resume(`${dir}/${CHECKPOINT_FILE}`, { outDir: dir });
    assertEquals(resumed.elapsed, atStop, "the checkpoint holds the training seconds");
    const steps: number[] = [];
    await resumed.fit(ds, { onStep: (s) => void steps.push(s.elapsed) });
    assert(steps[0] > atStop, `the first resumed step reports ${steps[0]} s, the run had ${atStop} s`);
    const rows = parseMetrics(await Deno.readTextFile(`${dir}/metrics.jsonl`), "metrics.jsonl");
    assertEquals(rows.map((r) => r.step), [1, 2, 3, 4, 5, 6]);
    for (let i = 1; i < rows.length; i++) {
      assert(rows[i].elapsed > rows[i - 1].elapsed, `step ${rows[i].step}`);
    }
    for (const r of rows) assert(Number.isFinite(Date.parse(r.time!)), `row ${r.step} has no time`);
    resumed.dispose();
    resumed.model.dispose();

    // truncation keeps what the checkpoint covers
    const kept = await truncateMetrics(`${dir}/metrics.jsonl`, 2);
    assertEquals(parseMetrics(kept, "m").map((r) => r.step), [1, 2]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runDataFlag: the --data a run started with, in either form; none for the default or no record", () => {
  assertEquals(runDataFlag({ argv: ["--steps", "9", "--data", "my/imgs", "--seed", "1"] }), "my/imgs");
  assertEquals(runDataFlag({ argv: ["--data=fashion-mnist-subset"] }), "fashion-mnist-subset");
  assertEquals(runDataFlag({ argv: ["--steps", "9"] }), undefined);
  assertEquals(runDataFlag({ argv: null }), undefined); // a record made for a run from before config.json
  assertEquals(runDataFlag(undefined), undefined);
});

Deno.test("resumeData: the run's recorded data, the same under another name, other data refused, a moved folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa-resume-data-" });
  try {
    const rec = (dataSpec?: string, argv: string[] | null = null) =>
      ({ dataSpec, argv }) as unknown as RunConfig;
    const real = await Deno.realPath(dir);
    assertEquals(await resumeData(rec(real), undefined), { spec: real });
    assertEquals(
      await resumeData(rec(real), `${dir}/.`),
      { spec: `${dir}/.` },
      "the same folder spelled otherwise",
    );
    assertEquals(await resumeData(rec("fashion-mnist-subset"), "fashion-mnist-subset"), {
      spec: "fashion-mnist-subset",
    });
    const other = await resumeData(rec("fashion-mnist-subset"), dir);
    assertEquals(
      other.problem,
      `the run trained on fashion-mnist-subset; --data ${dir} is ${real}; resume without --data, or start a new run`,
    );
    const gone = `${real}/moved-away`;
    assertEquals(
      (await resumeData(rec(gone), undefined)).problem,
      `the run trained on ${gone}, which is not there now: give --data where it is`,
    );
    assertEquals(await resumeData(rec(gone), dir), { spec: dir }, "--data says where it went");
    // a run from before the record: its command line's --data, else the default
    assertEquals(await resumeData(rec(undefined, ["--data", "x/y"]), undefined), { spec: "x/y" });
    assertEquals(await resumeData(undefined, undefined), { spec: undefined });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
