// The trainer: schedules, the optimizer's exclusions, NaN stop, collapse watch, and a real run
// killed mid-way that resumes to the same losses as an uninterrupted one.
import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "../_assert.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { AdamW, decays } from "../../lib/train/adamw.ts";
import { loadFashionMnist } from "../../lib/data/load.ts";
import { IJEPA } from "../../lib/model/ijepa.ts";
import { emaMomentum, learningRate, weightDecay } from "../../lib/train/schedules.ts";
import { EMATrainer, TrainingDiverged } from "../../lib/train/trainer.ts";

Deno.test("schedules: warm-up, cosine, weight decay and momentum are pure functions of the step", () => {
  const s = { start: 2e-4, ref: 1e-3, final: 1e-6, warmup: 10 };
  assertEquals(learningRate(0, 100, s), 2e-4);
  assertAlmostEquals(learningRate(5, 100, s), 6e-4, 1e-12);
  assertAlmostEquals(learningRate(10, 100, s), 1e-3, 1e-12);
  assertAlmostEquals(learningRate(55, 100, s), (1e-3 + 1e-6) / 2, 1e-12); // half-way down the cosine
  assertAlmostEquals(learningRate(100, 100, s), 1e-6, 1e-12);
  for (let t = 11; t <= 100; t++) assert(learningRate(t, 100, s) <= learningRate(t - 1, 100, s));
  assertAlmostEquals(weightDecay(0, 100, [0.04, 0.4]), 0.04, 1e-12);
  assertAlmostEquals(weightDecay(50, 100, [0.04, 0.4]), 0.22, 1e-12);
  assertAlmostEquals(weightDecay(100, 100, [0.04, 0.4]), 0.4, 1e-12);
  assertAlmostEquals(emaMomentum(0, 100, [0.996, 1]), 0.996, 1e-12);
  assertAlmostEquals(emaMomentum(50, 100, [0.996, 1]), 0.998, 1e-12);
  assertEquals(emaMomentum(100, 100, [0.996, 1]), 1);
  assertThrows(() => learningRate(-1, 100, s), RangeError, "step -1");
});

Deno.test("AdamW: no weight decay on biases and 1-D parameters; the update matches PyTorch's formula", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const model = new IJEPA("tiny", { seed: 0 });
  const named = model.namedTrainable();
  for (const [name, v] of named) {
    const expected = v.rank >= 2 && !name.endsWith("bias");
    assertEquals(decays(name, v), expected, name);
  }
  assert(!decays("encoder.norm.weight", model.encoder.params.get("norm.weight")));
  assert(!decays("predictor.mask_token", model.predictor.params.get("mask_token")));
  model.dispose();

  // two steps against a hand computation (decoupled decay applied before the Adam update)
  const w = tf.variable(tf.tensor2d([[0.5, -1]]));
  const b = tf.variable(tf.tensor1d([0.25]));
  const opt = new AdamW([["w", w], ["bias", b]]);
  const ref = { w: [0.5, -1], b: [0.25], mw: [0, 0], vw: [0, 0], mb: [0], vb: [0] };
  const gW = [0.1, -0.3], gB = [0.2];
  for (let t = 1; t <= 2; t++) {
    opt.step({ w: tf.tensor2d([gW]), bias: tf.tensor1d(gB) }, { lr: 0.01, weightDecay: 0.5 });
    const upd = (p: number[], m: number[], v: number[], g: number[], wd: number) =>
      p.map((x, i) => {
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
        const mh = m[i] / (1 - 0.9 ** t), vh = v[i] / (1 - 0.999 ** t);
        return x * (1 - 0.01 * wd) - 0.01 * mh / (Math.sqrt(vh) + 1e-8);
      });
    ref.w = upd(ref.w, ref.mw, ref.vw, gW, 0.5);
    ref.b = upd(ref.b, ref.mb, ref.vb, gB, 0);
  }
  const gotW = w.dataSync(), gotB = b.dataSync();
  ref.w.forEach((x, i) => assertAlmostEquals(gotW[i], x, 1e-6));
  assertAlmostEquals(gotB[0], ref.b[0], 1e-6);
  opt.dispose();
  tf.dispose([w, b]);
});

const data = await loadFashionMnist({ dir: new URL("../../data/fashion-mnist/", import.meta.url).pathname });

Deno.test("trainer: a NaN loss stops the run before the update, with a clear message", async () => {
  await setBackend("wasm", { quiet: true });
  const model = new IJEPA("tiny", { seed: 0 });
  const trainer = new EMATrainer(model, { batchSize: 8, steps: 5, stdEvery: 0 });
  model.encoder.params.get("norm.weight").assign(tf.fill([32], NaN));
  const before = model.predictor.params.get("predictor_proj.weight").dataSync().slice();
  await assertRejects(
    () => trainer.fit(data.train),
    TrainingDiverged,
    "the loss became NaN at step 0; no update was applied",
  );
  assertEquals(model.predictor.params.get("predictor_proj.weight").dataSync(), before);
  assertEquals(trainer.step, 0);
  trainer.dispose();
  model.dispose();
});

Deno.test("trainer: wrong data is refused with the numbers", async () => {
  await setBackend("wasm", { quiet: true });
  const model = new IJEPA("tiny", { seed: 0, overrides: { channels: 3 } });
  const trainer = new EMATrainer(model, { batchSize: 8, steps: 2 });
  await assertRejects(() => trainer.fit(data.train), Error, "the data has 1 channel(s), the model expects 3");
  assertThrows(() => new EMATrainer(model, { batchsize: 8 } as never), Error, 'unknown option "batchsize"');
  trainer.dispose();
  model.dispose();
});

Deno.test("trainer: the loss falls on the shipped data and the target features do not collapse", async () => {
  await setBackend("wasm", { quiet: true });
  const model = new IJEPA("tiny", { seed: 1 });
  const stds: number[] = [];
  const trainer = new EMATrainer(model, {
    batchSize: 32,
    steps: 60,
    stdEvery: 10,
    lr: { start: 2e-4, ref: 1e-3, final: 1e-5, warmup: 6 },
  });
  const r = await trainer.fit(data.train, {
    onStep: (s) => void (s.targetStd !== undefined && stds.push(s.targetStd)),
  });
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const first = mean(r.losses.slice(0, 5)), last = mean(r.losses.slice(-5));
  // loose, honest bound: a tiny model on 60 steps; seen ~0.49 -> ~0.2
  assert(last < 0.8 * first, `loss did not fall enough: ${first} -> ${last}`);
  // a collapsed encoder also has a falling loss: the spread of target features must stay up
  assert(Math.min(...stds) > 0.05, `target-feature std fell to ${Math.min(...stds)}`);
  trainer.dispose();
  model.dispose();
});

async function losses(dir: string): Promise<number[]> {
  const text = await Deno.readTextFile(`${dir}/metrics.jsonl`);
  return text.trim().split("\n").map((l) => JSON.parse(l)).map((r) => r.loss);
}

function pretrain(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../lib/cli/pretrain.ts", import.meta.url).pathname,
      "--preset",
      "tiny",
      "--backend",
      "wasm",
      "--data",
      new URL("../../data/fashion-mnist/", import.meta.url).pathname,
      "--probe=false",
      "--json",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("trainer: a run killed mid-way resumes to exactly the losses of an uninterrupted run", async () => {
  const root = await Deno.makeTempDir();
  try {
    const common = ["--steps", "40", "--checkpoint-every", "10", "--seed", "3"];
    const full = await pretrain([...common, "--out", `${root}/full`]).output();
    assertEquals(full.code, 0, new TextDecoder().decode(full.stderr));
    // the same run, killed (SIGKILL: no chance to save) once it is past its second checkpoint
    const child = pretrain([...common, "--out", `${root}/killed`]);
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 50));
      try {
        if ((await losses(`${root}/killed`)).length >= 25) break;
      } catch { /* not yet written */ }
    }
    child.kill("SIGKILL");
    await child.output();
    const partial = await losses(`${root}/killed`);
    assert(partial.length >= 25 && partial.length < 40, `killed after ${partial.length} steps`);
    const resumed = await pretrain(["--resume", "--out", `${root}/killed`]).output();
    assertEquals(resumed.code, 0, new TextDecoder().decode(resumed.stderr));
    const a = await losses(`${root}/full`), b = await losses(`${root}/killed`);
    assertEquals(b.length, 40);
    assertEquals(b, a); // bit-identical on the same backend
    // the resumed run's weights still name their preset (the checkpoint holds only the config)
    const { openSafetensors } = await import("../../lib/io/safetensors_read.ts");
    using st = await openSafetensors(`${root}/killed/final.safetensors`);
    const md = st.metadata;
    assertEquals([md.preset, md.step, md.batch_size, md.seed], ["tiny", "40", "16", "3"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
