/**
 * Backgrounds with detail no model can predict, behind each object: {@link withNuisance}. Issue 20's
 * knob for the paper's argument (Table 7): pixel targets must spend capacity on such detail, while
 * representation targets may drop it. Nothing is downloaded; every background is drawn from a seed and
 * the image's index, so a dataset with a nuisance is the same on every run and machine.
 *
 * Made for Fashion-MNIST-like data, dark objects' surroundings at 0: the object's own pixels are kept
 * and the background shows through where the object is dark, with a soft edge
 * (`alpha = min(1, x / 64)`, `out = alpha * x + (1 - alpha) * background`). Kinds:
 *
 * - `noise`: every background pixel uniform in [0, 255 * strength], independently.
 * - `texture`: three random sine gratings (orientation, 1.5-6 cycles an image, phase), summed and
 *   scaled to [0, 255 * strength]: smooth structure that differs in every image.
 * - `clutter`: three 10x10 pieces cut from other images of the same set, pasted at random places and
 *   dimmed to `strength`: object-like parts that belong to no class of this image.
 *
 * Strength 0 returns the images unchanged. RGB images get the same grey background in each channel.
 *
 * @example
 * ```ts
 * import { withNuisance } from "./nuisance.ts";
 * const ds = { images: new Uint8Array(2 * 4 * 4), labels: new Int32Array(2), n: 2, height: 4, width: 4,
 *   channels: 1, classNames: ["a"], source: "zeros" };
 * const noisy = withNuisance(ds, { kind: "noise", strength: 0.5, seed: 1 });
 * if (Math.max(...noisy.images) === 0 || Math.max(...noisy.images) > 128) throw new Error("range");
 * ```
 * @module
 */
import { Rng } from "../engine/rng.ts";
import type { ImageDataset } from "./dataset.ts";

/** The kinds of background {@link withNuisance} draws. */
export const NUISANCE_KINDS = ["noise", "texture", "clutter"] as const;
/** One of {@link NUISANCE_KINDS}. */
export type NuisanceKind = typeof NUISANCE_KINDS[number];

/** What {@link withNuisance} puts behind the objects. */
export interface NuisanceOptions {
  /** The kind of background. */
  kind: NuisanceKind;
  /** 0 (none) to 1 (backgrounds as bright as the objects). */
  strength: number;
  /** Seed of the backgrounds; use a different one for each split. */
  seed: number;
}

/**
 * Parse `KIND:STRENGTH` (e.g. `noise:0.5`), as the tasks' `--nuisance` flag takes it; `none` or an
 * empty string is no nuisance.
 */
export function parseNuisance(spec: string): { kind: NuisanceKind; strength: number } | undefined {
  const s = spec.trim();
  if (s === "" || s === "none") return undefined;
  const [kind, value, ...rest] = s.split(":");
  const strength = Number(value);
  if (
    !(NUISANCE_KINDS as readonly string[]).includes(kind) || rest.length || !(strength >= 0 && strength <= 1)
  ) {
    throw new Error(
      `nuisance: expected KIND:STRENGTH with KIND one of ${
        NUISANCE_KINDS.join(", ")
      } and STRENGTH in [0, 1] ` +
        `(e.g. noise:0.5), or none; got "${spec}"`,
    );
  }
  return { kind: kind as NuisanceKind, strength };
}

/** A copy of `ds` with a background of `opts.kind` behind every object (see the module comment). */
export function withNuisance(ds: ImageDataset, opts: NuisanceOptions): ImageDataset {
  const { kind, strength, seed } = opts;
  if (!(NUISANCE_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`withNuisance: kind must be one of ${NUISANCE_KINDS.join(", ")}, got "${kind}"`);
  }
  if (!(strength >= 0 && strength <= 1)) {
    throw new Error(`withNuisance: strength must be in [0, 1], got ${strength}`);
  }
  if (strength === 0) return ds;
  const { n, height: H, width: W, channels: C } = ds;
  const out = new Uint8Array(ds.images.length);
  const bg = new Float32Array(H * W);
  const grey = new Float32Array(H * W);
  for (let i = 0; i < n; i++) {
    // each image's background from (seed, index) alone: independent of n and of the order drawn
    const rng = new Rng(((seed * 0x9e3779b1) ^ (i * 0x85ebca6b)) >>> 0);
    background(kind, rng, bg, H, W, ds, i);
    const base = i * H * W * C;
    for (let p = 0; p < H * W; p++) {
      let sum = 0;
      for (let c = 0; c < C; c++) sum += ds.images[base + p * C + c];
      grey[p] = sum / C;
    }
    for (let p = 0; p < H * W; p++) {
      const alpha = Math.min(1, grey[p] / 64);
      const b = bg[p] * 255 * strength;
      for (let c = 0; c < C; c++) {
        const x = ds.images[base + p * C + c];
        out[base + p * C + c] = Math.round(alpha * x + (1 - alpha) * b);
      }
    }
  }
  return { ...ds, images: out, source: `${ds.source}, with ${kind} backgrounds at strength ${strength}` };
}

/** Fill `bg` (values in [0, 1]) with image `i`'s background of `kind`. */
function background(
  kind: NuisanceKind,
  rng: Rng,
  bg: Float32Array,
  H: number,
  W: number,
  ds: ImageDataset,
  i: number,
): void {
  if (kind === "noise") {
    for (let p = 0; p < H * W; p++) bg[p] = rng.float();
    return;
  }
  if (kind === "texture") {
    bg.fill(0);
    for (let g = 0; g < 3; g++) {
      const angle = rng.uniform(0, Math.PI),
        cycles = rng.uniform(1.5, 6),
        phase = rng.uniform(0, 2 * Math.PI);
      const fx = Math.cos(angle) * cycles * 2 * Math.PI / W, fy = Math.sin(angle) * cycles * 2 * Math.PI / H;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) bg[y * W + x] += Math.sin(fx * x + fy * y + phase) / 3;
      }
    }
    for (let p = 0; p < H * W; p++) bg[p] = (bg[p] + 1) / 2;
    return;
  }
  // clutter: pieces of other images (their first channel), 10x10 or the image when smaller
  bg.fill(0);
  const s = Math.min(10, H, W);
  const C = ds.channels;
  for (let k = 0; k < 3; k++) {
    let j = rng.int(0, ds.n);
    if (ds.n > 1 && j === i) j = (j + 1) % ds.n;
    const sy = rng.int(0, H - s + 1), sx = rng.int(0, W - s + 1);
    const dy = rng.int(0, H - s + 1), dx = rng.int(0, W - s + 1);
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        const v = ds.images[((j * H + sy + y) * W + sx + x) * C] / 255;
        const p = (dy + y) * W + dx + x;
        bg[p] = Math.max(bg[p], v);
      }
    }
  }
}
