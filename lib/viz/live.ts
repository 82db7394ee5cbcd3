/**
 * Live training displays for Jupyter notebooks (the Deno kernel): a progress line and plots that
 * redraw in place while {@link EMATrainer.fit} runs, instead of a new output per step.
 *
 * In place means one Jupyter display per figure, created once with a `display_id` and then replaced
 * with `Deno.jupyter.display(bundle, { raw: true, display_id, update: true })`. The saved notebook
 * keeps the last state of each display. Outside Jupyter (a script, a test) the same calls print a
 * progress line to the console now and then and draw nothing, so notebook code also runs as a script.
 *
 * @example
 * ```ts
 * import { trainingMonitor } from "./live.ts";
 * const monitor = trainingMonitor({ plotEvery: 60 });
 * for (let step = 1; step <= 3; step++) {
 *   await monitor.onStep({ step, steps: 3, loss: 1 / step, imgPerSec: 100, elapsed: step, targetStd: 0.3 });
 * }
 * await monitor.finish();
 * if (monitor.losses.length !== 3 || !monitor.lossPlot().startsWith("<svg")) throw new Error("monitor");
 * ```
 * @module
 */
import { type LossPoint, plotLoss } from "./figures_curves.ts";
import type { StepInfo } from "../train/trainer.ts";
import { formatDuration as duration } from "./progress_text.ts";

/** What a Jupyter display carries: media type to content (e.g. `"image/svg+xml"` to SVG text). */
export type MediaBundle = Record<string, string>;

type JupyterDisplay = (
  obj: unknown,
  options?: { raw?: boolean; update?: boolean; display_id?: string },
) => Promise<void>;

/** `Deno.jupyter.display` inside the Deno kernel; null elsewhere (`Deno.jupyter` throws there). */
function jupyterDisplay(): JupyterDisplay | null {
  try {
    const j = (Deno as unknown as { jupyter?: { display?: JupyterDisplay } }).jupyter;
    return typeof j?.display === "function" ? j.display : null;
  } catch {
    return null;
  }
}

/**
 * True when running inside the Deno Jupyter kernel.
 *
 * @example
 * ```ts
 * import { inJupyter } from "./live.ts";
 * if (inJupyter()) throw new Error("a test does not run in a kernel");
 * ```
 */
export function inJupyter(): boolean {
  return jupyterDisplay() !== null;
}

/** A unique display id per display (a display id reused by a re-run cell would redraw the old cell too). */
function freshId(name: string): string {
  return `ijepa-${name}-${Date.now().toString(36)}-${Math.round(performance.now() * 1000).toString(36)}`;
}

/**
 * One cell output that can be replaced in place: the first {@link LiveDisplay.update} creates it,
 * later ones replace its content. Made by {@link liveDisplay}.
 */
export class LiveDisplay {
  /** The Jupyter display id. */
  readonly id: string;
  #shown = false;
  #display: JupyterDisplay | null;

  /** A display with a fresh id made from `name`. */
  constructor(name: string) {
    this.id = freshId(name);
    this.#display = jupyterDisplay();
  }

  /**
   * Show `content` in place of the previous one. SVG text (starting `<svg`) shows as an image, other
   * text as plain text, a {@link MediaBundle} as given. Outside Jupyter, plain text is printed to the
   * console and images are skipped.
   */
  async update(content: string | MediaBundle): Promise<void> {
    const bundle: MediaBundle = typeof content !== "string"
      ? content
      : content.trimStart().startsWith("<svg")
      ? { "image/svg+xml": content }
      : { "text/plain": content };
    if (this.#display === null) {
      if (bundle["text/plain"] !== undefined) console.log(bundle["text/plain"]);
      return;
    }
    await this.#display(bundle, { raw: true, display_id: this.id, update: this.#shown });
    this.#shown = true;
  }
}

/**
 * A display that {@link LiveDisplay.update} replaces in place (in Jupyter), e.g. a figure redrawn
 * while a loop runs.
 *
 * @example
 * ```ts
 * import { liveDisplay } from "./live.ts";
 * import { plotLoss } from "./figures_curves.ts";
 * const fig = liveDisplay("loss");
 * const points = [];
 * for (let step = 0; step < 3; step++) {
 *   points.push({ step, loss: 1 / (step + 1) });
 *   await fig.update(plotLoss(points)); // in Jupyter: one figure, redrawn; elsewhere: nothing drawn
 * }
 * if (!fig.id.startsWith("ijepa-loss-")) throw new Error(fig.id);
 * ```
 */
export function liveDisplay(name = "display"): LiveDisplay {
  return new LiveDisplay(name);
}

/** The fields of a trainer step that a progress line shows. */
export type ProgressInfo = Pick<StepInfo, "step" | "steps" | "loss" | "imgPerSec" | "elapsed"> & {
  targetStd?: number;
};

/**
 * One progress line: a bar, the step, the loss, the last target-feature std, speed, elapsed time and
 * the estimated time left.
 *
 * @example
 * ```ts
 * import { progressLine } from "./live.ts";
 * const line = progressLine({ step: 30, steps: 120, loss: 0.0412, imgPerSec: 15.2, elapsed: 90 }, 0.31);
 * if (!line.includes("step 30/120") || !line.includes("ETA 4m30s")) throw new Error(line);
 * ```
 */
export function progressLine(s: ProgressInfo, lastStd?: number, width = 24): string {
  const done = Math.max(0, Math.min(width, Math.round((width * s.step) / s.steps)));
  const eta = s.step > 0 ? (s.elapsed / s.step) * (s.steps - s.step) : NaN;
  const std = lastStd !== undefined ? ` | target std ${lastStd.toFixed(3)}` : "";
  const tail = s.step >= s.steps
    ? `done in ${duration(s.elapsed)}`
    : `${duration(s.elapsed)} elapsed, ETA ${duration(eta)}`;
  return `[${"#".repeat(done)}${".".repeat(width - done)}] step ${s.step}/${s.steps} | loss ${
    s.loss.toPrecision(4)
  }${std} | ${s.imgPerSec.toFixed(1)} img/s | ${tail}`;
}

/** Options of {@link trainingMonitor}. */
export interface MonitorOptions {
  /** Seconds between redraws of the plots (the progress line updates every step). Default 5. */
  plotEvery: number;
  /** Moving-average window of the loss plot, in steps; 0 = about 1/20 of the steps so far. Default 0. */
  smooth: number;
  /** Loss on a log axis (default true: I-JEPA losses fall by orders of magnitude). */
  logY: boolean;
  /** Draw the target-feature std plot (the collapse watch). Default true. */
  std: boolean;
  /** Title of the loss plot. */
  title: string;
  /** Draw the collapse warning level at this fraction of the first std (the trainer's `collapseRatio`); 0 = none. */
  collapseRatio: number;
}

/** Defaults of {@link MonitorOptions}. */
export const MONITOR_DEFAULTS: MonitorOptions = {
  plotEvery: 5,
  smooth: 0,
  logY: true,
  std: true,
  title: "I-JEPA training loss",
  collapseRatio: 0.1,
};

/**
 * Collects the trainer's steps and shows them live: a progress line every step, the loss curve and
 * the target-feature std redrawn every `plotEvery` seconds, all in place. Pass
 * {@link TrainingMonitor.onStep} to `trainer.fit(data, { onStep })`, then call
 * {@link TrainingMonitor.finish} for the final redraw. Made by {@link trainingMonitor}.
 */
export class TrainingMonitor {
  /** The options, defaults filled in. */
  readonly options: MonitorOptions;
  /** Every step's loss. */
  readonly losses: LossPoint[] = [];
  /** The target-feature std at the steps where the trainer measured it. */
  readonly stds: { step: number; std: number }[] = [];
  #progress = liveDisplay("progress");
  #lossFig = liveDisplay("loss");
  #stdFig = liveDisplay("std");
  #last?: ProgressInfo;
  #lastDraw = -Infinity;
  #lastPrint = -Infinity;

  /** A monitor with `options` over {@link MONITOR_DEFAULTS}; throws on an unknown option. */
  constructor(options: Partial<MonitorOptions> = {}) {
    for (const k of Object.keys(options)) {
      if (!(k in MONITOR_DEFAULTS)) {
        throw new Error(
          `trainingMonitor: unknown option "${k}"; expected one of ${
            Object.keys(MONITOR_DEFAULTS).join(", ")
          }`,
        );
      }
    }
    this.options = { ...MONITOR_DEFAULTS, ...options };
    if (!(this.options.plotEvery >= 0)) {
      throw new RangeError(`trainingMonitor: plotEvery must be >= 0 seconds, got ${this.options.plotEvery}`);
    }
  }

  /** The trainer hook: record the step, update the progress line, redraw the plots when due. */
  onStep = async (s: ProgressInfo): Promise<void> => {
    this.losses.push({ step: s.step, loss: s.loss });
    if (s.targetStd !== undefined) this.stds.push({ step: s.step, std: s.targetStd });
    this.#last = s;
    const now = performance.now() / 1000;
    if (inJupyter()) {
      await this.#progress.update(this.#progressBundle(s));
    } else if (now - this.#lastPrint >= this.options.plotEvery || s.step === 1) {
      this.#lastPrint = now;
      console.log(this.#line(s));
    }
    if (now - this.#lastDraw >= this.options.plotEvery) {
      this.#lastDraw = now;
      await this.#draw();
    }
  };

  /** Final redraw of the progress line and the plots (call it after `fit` returns). */
  async finish(): Promise<void> {
    if (this.#last === undefined) return;
    if (inJupyter()) await this.#progress.update(this.#progressBundle(this.#last));
    else console.log(this.#line(this.#last));
    await this.#draw();
  }

  /** The loss curve so far, as SVG. */
  lossPlot(): string {
    const n = this.losses.length;
    const smooth = this.options.smooth > 0 ? this.options.smooth : Math.max(1, Math.round(n / 20));
    const positive = this.losses.every((p) => p.loss > 0);
    return plotLoss(this.losses, {
      title: this.options.title,
      logY: this.options.logY && positive,
      smooth,
      subtitle: smooth > 1
        ? `${n} steps. Faint: every step. Bold: mean of the last ${smooth}.`
        : `${n} steps.`,
    });
  }

  /** The target-feature std so far, as SVG, with the collapse warning level (its fall toward 0 is what collapse looks like). */
  stdPlot(): string {
    const pts: LossPoint[] = this.stds.map((p) => ({
      step: p.step,
      loss: p.std,
      series: "target-feature std",
    }));
    if (this.options.collapseRatio > 0 && pts.length > 0) {
      const level = this.options.collapseRatio * pts[0].loss;
      const label = `warning level (${this.options.collapseRatio} x first)`;
      pts.push({ step: pts[0].step, loss: level, series: label }, {
        step: pts.at(-1)!.step,
        loss: level,
        series: label,
      });
    }
    // plotLoss on a linear axis draws y = 0, so a fall toward 0 reads at its true size.
    return plotLoss(pts, {
      title: "Target-feature spread (collapse watch)",
      subtitle:
        "Mean per-dimension std of the target encoder's patch features; it falls toward 0 in a collapse.",
      y: "feature std",
    });
  }

  #line(s: ProgressInfo): string {
    return progressLine(s, this.stds.at(-1)?.std);
  }

  #progressBundle(s: ProgressInfo): MediaBundle {
    const line = this.#line(s);
    const text = line.replace(/^\[[#.]*\] /, "");
    const html = `<div style="font-family: monospace"><progress value="${s.step}" max="${s.steps}" ` +
      `style="width: 18em; vertical-align: middle"></progress> ${
        text.replace(/&/g, "&amp;").replace(/</g, "&lt;")
      }</div>`;
    return { "text/plain": line, "text/html": html };
  }

  async #draw(): Promise<void> {
    if (!inJupyter() || this.losses.length === 0) return;
    await this.#lossFig.update(this.lossPlot());
    if (this.options.std && this.stds.length > 0) await this.#stdFig.update(this.stdPlot());
  }
}

/**
 * A live training display for notebooks: `trainer.fit(data, { onStep: monitor.onStep })`, then
 * `await monitor.finish()`. See {@link TrainingMonitor}.
 *
 * @example
 * ```ts
 * import { trainingMonitor } from "./live.ts";
 * const monitor = trainingMonitor({ plotEvery: 10, logY: false });
 * await monitor.onStep({ step: 1, steps: 2, loss: 0.5, imgPerSec: 10, elapsed: 1, targetStd: 0.4 });
 * if (monitor.stds[0].std !== 0.4) throw new Error("std not recorded");
 * ```
 */
export function trainingMonitor(options: Partial<MonitorOptions> = {}): TrainingMonitor {
  return new TrainingMonitor(options);
}
