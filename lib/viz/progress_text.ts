/**
 * Progress as text for the command line: durations in the notebooks' format (`42s`, `3m05s`,
 * `1h02m`), and a study's progress line (which arm of how many, its step, loss, speed, and the
 * time left for the whole study), throttled so a log gets a line every few seconds, not every step.
 *
 * Loads nothing heavy (no plotting library), so every task can import it.
 *
 * @example
 * ```ts
 * import { formatDuration, StudyProgress } from "./progress_text.ts";
 * if (formatDuration(200) !== "3m20s") throw new Error(formatDuration(200));
 * let now = 0;
 * const p = new StudyProgress({ runs: 2, stepsPerRun: 10, every: 5, now: () => now });
 * p.runStarted();
 * now = 1;
 * const line = p.step({ index: 1, count: 2, name: "a" }, { step: 1, steps: 10, loss: 0.5, imgPerSec: 8, elapsed: 1 });
 * if (!line?.startsWith("arm 1/2 a: step 1/10")) throw new Error(String(line));
 * ```
 * @module
 */

/**
 * Seconds as `42s` (`4.2s` under ten), `3m05s` or `1h02m`; `?` for a negative or unknown time.
 * The notebooks' progress line (live.ts) writes time the same way.
 */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s - 60 * m)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** Where a study stands: the run (arm x seed) being trained, 1-based, of how many. */
export interface RunPosition {
  /** This run's 1-based position. */
  index: number;
  /** Runs in the study. */
  count: number;
  /** The run's name, e.g. `pixels / seed 0`. */
  name: string;
}

/** The fields of a training step that a study's progress line shows (lib/train/trainer.ts StepInfo). */
export interface StepFields {
  /** Steps completed. */
  step: number;
  /** Steps of the whole run. */
  steps: number;
  /** Loss of this step. */
  loss: number;
  /** Images per second over this step. */
  imgPerSec: number;
  /** Seconds of training of this run so far (counting across resumes). */
  elapsed: number;
  /** Mean per-dimension std of the target features, when measured. */
  targetStd?: number;
}

/** Options of {@link StudyProgress}. */
export interface StudyProgressOptions {
  /** Runs in the study (arms x seeds), each trained then probed. */
  runs: number;
  /** Training steps of each run. */
  stepsPerRun: number;
  /** Seconds between lines within a run (its first and last step always get one). Default 10. */
  every?: number;
  /** Clock in seconds (tests pass their own). Default `performance.now() / 1000`. */
  now?: () => number;
}

/**
 * A study's progress: call {@link StudyProgress.runStarted} and {@link StudyProgress.runDone} (or
 * {@link StudyProgress.runSkipped} for runs finished earlier) around each run, and
 * {@link StudyProgress.step} at each training step; `step` returns a line when one is due.
 *
 * The study's ETA: the steps left in this run at this run's pace, plus each run still to come at
 * the mean wall time of the runs finished in this process (training and probe). Before one has
 * finished, the later runs count their training steps only and the ETA reads `>= ...`.
 */
export class StudyProgress {
  readonly #o: Required<StudyProgressOptions>;
  #runsLeft: number;
  #runStart = NaN;
  #finishedSeconds: number[] = [];
  #lastLine = -Infinity;

  /** Progress of a study of `o.runs` runs of `o.stepsPerRun` steps. */
  constructor(o: StudyProgressOptions) {
    this.#o = { every: 10, now: () => performance.now() / 1000, ...o };
    this.#runsLeft = o.runs;
  }

  /** A run starts (its training, then its probe). */
  runStarted(): void {
    this.#runStart = this.#o.now();
    this.#lastLine = -Infinity; // the run's first step (step 1, or where a resumed run stands) gets a line
  }

  /** The run started last is finished (trained and probed). */
  runDone(): void {
    if (Number.isFinite(this.#runStart)) this.#finishedSeconds.push(this.#o.now() - this.#runStart);
    this.#runStart = NaN;
    this.#runsLeft = Math.max(0, this.#runsLeft - 1);
  }

  /** A run was finished by an earlier process: nothing left to do for it. */
  runSkipped(): void {
    this.#runsLeft = Math.max(0, this.#runsLeft - 1);
  }

  /** Seconds left in the study after this step, and whether that is a lower bound. */
  eta(s: StepFields): { seconds: number; atLeast: boolean } {
    const perStep = s.step > 0 ? s.elapsed / s.step : NaN;
    const later = Math.max(0, this.#runsLeft - 1);
    const done = this.#finishedSeconds;
    const perRun = done.length > 0
      ? done.reduce((a, b) => a + b, 0) / done.length
      : perStep * this.#o.stepsPerRun;
    return {
      seconds: (s.steps - s.step) * perStep + later * perRun,
      atLeast: done.length === 0 && later > 0,
    };
  }

  /** The progress line for this step when one is due (a run's first and last step, else every `every` s). */
  step(run: RunPosition, s: StepFields): string | undefined {
    const t = this.#o.now();
    if (!(s.step >= s.steps || t - this.#lastLine >= this.#o.every)) return undefined;
    this.#lastLine = t;
    const { seconds, atLeast } = this.eta(s);
    const std = s.targetStd !== undefined ? ` std ${s.targetStd.toFixed(3)}` : "";
    return `arm ${run.index}/${run.count} ${run.name}: step ${s.step}/${s.steps} loss ${
      s.loss.toFixed(4)
    }${std} ` +
      `${s.imgPerSec.toFixed(1)} img/s; study ETA ${atLeast ? ">= " : ""}${formatDuration(seconds)}`;
  }
}
