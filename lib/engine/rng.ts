/**
 * A small seeded random number generator (sfc32, seeded by splitmix32).
 *
 * Every random choice in the toolkit (masks, weight init, augmentation, label subsets) takes one of
 * these, so the same seed gives the same run on every machine. The state is four uint32 words and
 * can be saved in a checkpoint and restored, so a resumed run draws exactly what it would have drawn.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const rng = new Rng(0);
 * const a = rng.float();
 * const saved = rng.state();
 * const b = rng.float();
 * const again = Rng.fromState(saved);
 * if (again.float() !== b) throw new Error("state did not round-trip");
 * if (a < 0 || a >= 1) throw new Error("float out of range");
 * ```
 * @module
 */

/** A seeded generator with a serialisable state. */
export class Rng {
  #s: Uint32Array;

  /** Seed with any 32-bit integer (other numbers are truncated to 32 bits). */
  constructor(seed = 0) {
    if (!Number.isFinite(seed)) {
      throw new TypeError(`Rng: expected a finite seed, got ${seed}`);
    }
    this.#s = new Uint32Array(4);
    // splitmix32 spreads a small integer seed over the four state words.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** Restore a generator from {@link Rng.state}. */
  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new TypeError(
        `Rng.fromState: expected 4 uint32 words, got ${JSON.stringify(state)}`,
      );
    }
    const r = new Rng(0);
    r.#s.set(state);
    return r;
  }

  /** The four state words; `Rng.fromState(rng.state())` continues the same sequence. */
  state(): number[] {
    return Array.from(this.#s);
  }

  /** A new independent generator derived from this one (advances this one by one draw). */
  fork(): Rng {
    return new Rng(this.nextUint32());
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const t = (((s[0] + s[1]) >>> 0) + s[3]) >>> 0;
    s[3] = (s[3] + 1) >>> 0;
    s[0] = s[1] ^ (s[1] >>> 9);
    s[1] = (s[2] + (s[2] << 3)) >>> 0;
    s[2] = ((s[2] << 21) | (s[2] >>> 11)) >>> 0;
    s[2] = (s[2] + t) >>> 0;
    return t;
  }

  /** A uniform float in [0, 1) with 32 bits of randomness. */
  float(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** A uniform integer in [lo, hi) (hi exclusive). */
  int(lo: number, hi: number): number {
    if (!(hi > lo)) throw new RangeError(`Rng.int: expected lo < hi, got [${lo}, ${hi})`);
    return lo + Math.floor(this.float() * (hi - lo));
  }

  /** A standard normal draw (Box-Muller). */
  normal(): number {
    let u = this.float();
    while (u === 0) u = this.float();
    const v = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Shuffle an array in place (Fisher-Yates) and return it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}
