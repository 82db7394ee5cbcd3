/**
 * Training schedules as pure functions of the step: the learning rate (linear warm-up, then cosine
 * decay), the weight decay (cosine increase) and the EMA momentum of the target encoder (linear
 * increase to 1). Being functions of the step, they need no replay when a run resumes (the
 * official code uses generators that must be stepped through again).
 *
 * @example
 * ```ts
 * import { emaMomentum, learningRate } from "./schedules.ts";
 * const lr = { start: 2e-4, ref: 1e-3, final: 1e-6, warmup: 10 };
 * if (learningRate(0, 100, lr) !== 2e-4) throw new Error("starts at start");
 * if (Math.abs(learningRate(10, 100, lr) - 1e-3) > 1e-12) throw new Error("peaks after warm-up");
 * if (emaMomentum(100, 100, [0.996, 1]) !== 1) throw new Error("ends at 1");
 * ```
 * @module
 */

/** Learning-rate schedule: warm-up from `start` to `ref` over `warmup` steps, then cosine to `final`. */
export interface LrSchedule {
  /** Learning rate at step 0. */
  start: number;
  /** Peak learning rate, reached at the end of warm-up. */
  ref: number;
  /** Learning rate at the last step. */
  final: number;
  /** Warm-up length in steps. */
  warmup: number;
}

function check(step: number, total: number, where: string): void {
  if (!(Number.isInteger(step) && step >= 0) || !(Number.isInteger(total) && total > 0)) {
    throw new RangeError(
      `${where}: expected integer step >= 0 and total > 0, got step ${step}, total ${total}`,
    );
  }
}

/** The learning rate at `step` (0-based) of a run of `total` steps. */
export function learningRate(step: number, total: number, s: LrSchedule): number {
  check(step, total, "learningRate");
  if (step < s.warmup) return s.start + (s.ref - s.start) * (step / s.warmup);
  const span = Math.max(1, total - s.warmup);
  const t = Math.min(1, (step - s.warmup) / span);
  return s.final + (s.ref - s.final) * 0.5 * (1 + Math.cos(Math.PI * t));
}

/** Weight decay rising from `range[0]` to `range[1]` along a half cosine (official: 0.04 -> 0.4). */
export function weightDecay(step: number, total: number, range: readonly [number, number]): number {
  check(step, total, "weightDecay");
  const t = Math.min(1, step / total);
  return range[1] + (range[0] - range[1]) * 0.5 * (1 + Math.cos(Math.PI * t));
}

/** EMA momentum rising linearly from `range[0]` to `range[1]` (official: 0.996 -> 1.0). */
export function emaMomentum(step: number, total: number, range: readonly [number, number]): number {
  check(step, total, "emaMomentum");
  const t = Math.min(1, step / total);
  return range[0] + (range[1] - range[0]) * t;
}
