// Shared fixtures of the tests in tests/eval/: the cpu backend, separable feature sets and band images.
import { setBackend } from "../../lib/engine/backend.ts";
import type { ImageDataset } from "../../lib/data/dataset.ts";
import { Rng } from "../../lib/engine/rng.ts";

export async function onCpu(): Promise<void> {
  await setBackend("cpu", { quiet: true, blas: false });
}

/**
 * A linearly separable set: K class directions in `dim` dimensions, each point its class direction
 * times 4 plus unit noise. [n, dim] features, [n] labels.
 */
export function separable(n: number, dim: number, K: number, seed: number, noiseSeed = seed + 1000) {
  const dirRng = new Rng(seed), rng = new Rng(noiseSeed);
  const dirs = Array.from({ length: K }, () => Array.from({ length: dim }, () => dirRng.normal()));
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % K;
    y[i] = c;
    for (let j = 0; j < dim; j++) x[i * dim + j] = 4 * dirs[c][j] + rng.normal() + 10; // offset: standardisation matters
  }
  return { x, y };
}

/** Synthetic images: class c is a bright horizontal band at rows 4c..4c+3 of a noisy 16x16 image. */
export function bandImages(n: number, K: number, seed: number, size = 16): ImageDataset {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * size * size); // [n, size, size, 1]
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % K;
    labels[i] = c;
    for (let r = 0; r < size; r++) {
      for (let col = 0; col < size; col++) {
        const band = Math.floor((r * K) / size) === c;
        images[(i * size + r) * size + col] = Math.min(255, Math.floor((band ? 180 : 40) + 40 * rng.float()));
      }
    }
  }
  return {
    images,
    labels,
    n,
    height: size,
    width: size,
    channels: 1,
    classNames: Array.from({ length: K }, (_, c) => `band${c}`),
    source: `bands (${n})`,
  };
}
