/**
 * Training recipes: the trainer options each preset runs with by default, with the reason for each
 * value and what the recipe is expected to reach (configs as code, with their results beside them).
 *
 * @example
 * ```ts
 * import { recipe } from "./recipes.ts";
 * const r = recipe("quick");
 * if (!(r.steps > 0 && r.batchSize === 64)) throw new Error("unexpected recipe");
 * ```
 * @module
 */
import { TRAINER_DEFAULTS, type TrainerOptions } from "./trainer.ts";

/** A recipe: trainer options, why, and the expected result. */
export interface Recipe {
  /** The trainer options the recipe sets. */
  options: Partial<TrainerOptions>;
  /** Why each option has its value, by option name. */
  why: Record<string, string>;
  /** What running it gives (filled in from measurements). */
  expected: string;
}

/** Recipes by preset name; presets without one use {@link TRAINER_DEFAULTS}. */
export const RECIPES: Record<string, Recipe> = {
  tiny: {
    options: {
      batchSize: 16,
      steps: 30,
      lr: { start: 2e-4, ref: 1e-3, final: 1e-6, warmup: 3 },
      stdEvery: 5,
    },
    why: {
      batchSize: "tests: seconds, not learning",
      steps: "enough for the loss to move",
      lr: "the official peak and end values, warm-up at 10% of the run",
    },
    expected: "a falling loss in seconds; no probe quality is claimed",
  },
  quick: {
    options: {
      batchSize: 64,
      steps: 300,
      lr: { start: 2e-4, ref: 1e-3, final: 1e-6, warmup: 30 },
      weightDecay: [0.04, 0.4],
      ema: [0.996, 1.0],
    },
    why: {
      batchSize: "the official reference run on 2 cores used 64",
      steps: "a few minutes on 2 CPU cores at the current step time",
      lr: "official start/peak/final values; warm-up 10% of the run (the official 40 of 300 epochs is 13%)",
      weightDecay: "official cosine 0.04 -> 0.4",
      ema: "official linear 0.996 -> 1.0",
    },
    expected:
      "shipped subset, 10-shot (= 1%) probe after these 300 steps: 57.9 +- 1.7 (random init 39.7, official " +
      "recipe without the collapse terms 39.6, raw pixels 68.3). Full Fashion-MNIST, 1% = 60 per class: 72.0 " +
      "after these 300 steps, 69.8 and 70.5 (two seeds) after 720 (8 CPU minutes; the official code's best " +
      "63.2), 73.7 after 3000 (the shipped weights); random init 62.3, raw pixels 77.7 (README 'Recipe')",
  },
};

/**
 * The trainer options of a preset's recipe (defaults where it has none). With `steps`, the run is
 * laid out over that many steps and the warm-up keeps its share of the run (the quick recipe's 10%),
 * so a longer run does not end its warm-up early; at most half the run warms up.
 */
export function recipe(preset: string, steps?: number): TrainerOptions {
  const r = RECIPES[preset];
  const o = { ...TRAINER_DEFAULTS, ...(r?.options ?? {}) };
  if (steps === undefined || steps === o.steps) return o;
  const warmup = Math.min(Math.round((o.lr.warmup * steps) / o.steps), Math.floor(steps / 2));
  return { ...o, steps, lr: { ...o.lr, warmup } };
}
