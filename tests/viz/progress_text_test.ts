// lib/viz/progress_text.ts: the CLI's durations match the notebooks' progress line, and a study's
// progress lines come at each run's first and last step and then every few seconds, with an ETA
// that counts the runs still to come.
import { assert, assertEquals } from "../_assert.ts";
import { formatDuration, StudyProgress } from "../../lib/viz/progress_text.ts";
import { progressLine } from "../../lib/viz/live.ts";

Deno.test("progress text: durations as the notebooks write them", () => {
  const cases: [number, string][] = [
    [4.24, "4.2s"],
    [42, "42s"],
    [200, "3m20s"],
    [185.9, "3m05s"],
    [3720, "1h02m"],
    [-1, "?"],
    [NaN, "?"],
  ];
  for (const [s, want] of cases) assertEquals(formatDuration(s), want, `${s} s`);
  // the notebooks' line (lib/viz/live.ts) shows the same text for the same seconds
  for (const elapsed of [7.5, 95, 4000]) {
    const line = progressLine({ step: 1, steps: 2, loss: 1, imgPerSec: 1, elapsed });
    assert(line.includes(`${formatDuration(elapsed)} elapsed, ETA ${formatDuration(elapsed)}`), line);
  }
});

Deno.test("progress text: a study's lines are throttled and its ETA counts the runs to come", () => {
  let now = 0;
  const p = new StudyProgress({ runs: 3, stepsPerRun: 100, every: 10, now: () => now });
  const run = (index: number) => ({ index, count: 3, name: `arm ${index}` });
  const step = (n: number, elapsed: number) => ({ step: n, steps: 100, loss: 0.25, imgPerSec: 16, elapsed });
  p.runStarted();
  now = 1;
  const first = p.step(run(1), { ...step(1, 1), targetStd: 0.3 });
  // 99 steps left at 1 s each, two runs to come at 100 training steps each: >= 299 s
  assertEquals(first, "arm 1/3 arm 1: step 1/100 loss 0.2500 std 0.300 16.0 img/s; study ETA >= 4m59s");
  now = 5;
  assertEquals(p.step(run(1), step(5, 5)), undefined, "4 s after the last line");
  now = 11;
  assert(p.step(run(1), step(11, 11))?.includes("step 11/100"));
  now = 100;
  assert(p.step(run(1), step(100, 100))?.endsWith("study ETA >= 3m20s"), "the last step always shows");
  now = 160; // the probe took 60 s: a run costs 160 s
  p.runDone();
  p.runStarted();
  now = 162;
  // run 2 at step 1 of 100 after 2 s: 99 x 2 s, then one run of 160 s: exactly 358 s, no longer a bound
  assertEquals(p.eta(step(1, 2)), { seconds: 99 * 2 + 160, atLeast: false });
  assert(p.step(run(2), step(1, 2))?.endsWith("study ETA 5m58s"), "a new run's first step shows");
  p.runDone();
  p.runSkipped(); // the third was finished by an earlier process
  assertEquals(p.eta(step(100, 100)).seconds, 0);
});
