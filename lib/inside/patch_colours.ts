/**
 * Patch features as colours: the first 3 principal components of one image's patch features as
 * RGB ({@link patchColours}), the view DINO and DINOv2 made common, and those colours drawn as an
 * image or blended over the image they came from ({@link patchColourImage}).
 *
 * @module
 */
import { pca, pcaProject, type PCAResult } from "./pca.ts";
import { type PlotImage, toBytes } from "./pixels.ts";

/** Options of {@link patchColours}. */
export interface PatchColourOptions {
  /**
   * A PCA fitted on the patches of many images (e.g. `pca(bank.features, ...)` with k >= 3): every
   * image is then coloured in the same basis and on the same scale (the basis's projected range), so
   * colours compare across images. Default: a PCA of this image's patches alone, min-max scaled.
   */
  basis?: PCAResult;
}

/**
 * One image's patch features [N, dim] as colours: the first 3 principal components become red,
 * green and blue, each scaled to 0..255 (min-max over this image's patches, or over the basis's
 * projected data). Returns [N, 3] bytes, patch-major. Patches with similar features get similar
 * colours; a trained encoder colours the parts of an object alike.
 *
 * @example
 * ```ts
 * import { patchColours } from "./patch_colours.ts";
 * // Four patches in 3-D: two pairs of equal features give two pairs of equal colours.
 * const f = new Float32Array([1, 0, 0, 1, 0, 0, 0, 1, 2, 0, 1, 2]); // [4, 3]
 * const rgb = patchColours(f, 3);
 * if (rgb.length !== 12 || rgb.slice(0, 3).join() !== rgb.slice(3, 6).join()) throw new Error("colours");
 * if (rgb.slice(0, 3).join() === rgb.slice(6, 9).join()) throw new Error("different features, same colour");
 * ```
 */
export function patchColours(tokens: Float32Array, dim: number, opts: PatchColourOptions = {}): Uint8Array {
  if (!(Number.isInteger(dim) && dim >= 1) || tokens.length % dim !== 0 || tokens.length === 0) {
    throw new Error(
      `patchColours: expected patch features [N, ${dim}] (a non-empty multiple of ${dim} values), got ${tokens.length} values`,
    );
  }
  const N = tokens.length / dim;
  let proj: Float32Array, k: number, lo: number[], hi: number[];
  if (opts.basis) {
    const b = opts.basis;
    if (b.dim !== dim) {
      throw new Error(`patchColours: the basis is for ${b.dim} features, the patches have ${dim}`);
    }
    k = Math.min(3, b.k);
    proj = pcaProject(b, tokens);
    [lo, hi] = ranges(b.projected, b.k, k);
    if (k < b.k) proj = keepColumns(proj, b.k, k);
  } else {
    k = Math.min(3, N, dim);
    proj = pca(tokens, N, dim, k).projected;
    [lo, hi] = ranges(proj, k, k);
  }
  const out = new Uint8Array(N * 3); // [N, 3]; components beyond those available stay 0
  for (let i = 0; i < N; i++) {
    for (let c = 0; c < k; c++) {
      const span = hi[c] - lo[c];
      const t = span > 0 ? (proj[i * k + c] - lo[c]) / span : 0.5;
      out[i * 3 + c] = Math.round(255 * Math.min(1, Math.max(0, t)));
    }
  }
  return out;
}

/** Per-column min and max of the first `k` of `cols` columns. */
function ranges(x: Float32Array, cols: number, k: number): [number[], number[]] {
  const lo = new Array(k).fill(Infinity), hi = new Array(k).fill(-Infinity);
  for (let i = 0; i < x.length / cols; i++) {
    for (let c = 0; c < k; c++) {
      lo[c] = Math.min(lo[c], x[i * cols + c]);
      hi[c] = Math.max(hi[c], x[i * cols + c]);
    }
  }
  return [lo, hi];
}

function keepColumns(x: Float32Array, cols: number, k: number): Float32Array {
  const n = x.length / cols;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) out[i * k + c] = x[i * cols + c];
  return out;
}

/**
 * Patch colours ({@link patchColours}) as an image for `plotImages`: each patch of a `rows` x `cols`
 * grid filled with its colour. With `over` (the image the patches came from, any channels) the
 * colours are blended over it: `alpha * colour + (1 - alpha) * image` (default alpha 0.6), at the
 * image's resolution; without it the result is `rows` x `cols` pixels, one per patch.
 *
 * @example
 * ```ts
 * import { patchColourImage } from "./patch_colours.ts";
 * const colours = new Uint8Array([255, 0, 0, 0, 0, 255]); // two patches: red, blue
 * const img = patchColourImage(colours, 1, 2);
 * if (img.width !== 2 || img.channels !== 3 || img.data[5] !== 255) throw new Error("colour image");
 * const grey = { data: new Uint8Array(8).fill(100), height: 2, width: 4, channels: 1 };
 * const over = patchColourImage(colours, 1, 2, { over: grey, alpha: 0.5 });
 * if (over.width !== 4 || over.data[0] !== 178) throw new Error(`blend: ${over.data[0]}`); // (255 + 100) / 2
 * ```
 */
export function patchColourImage(
  colours: Uint8Array,
  rows: number,
  cols: number,
  opts: { over?: PlotImage; alpha?: number } = {},
): PlotImage & { data: Uint8Array } {
  if (colours.length !== rows * cols * 3) {
    throw new Error(
      `patchColourImage: expected ${rows} x ${cols} patches x 3 = ${
        rows * cols * 3
      } colour values, got ${colours.length}`,
    );
  }
  const img = opts.over;
  if (!img) return { data: colours.slice(), height: rows, width: cols, channels: 3 };
  const alpha = opts.alpha ?? 0.6;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`patchColourImage: alpha must be in [0, 1], got ${alpha}`);
  const { height: H, width: W, channels: C } = img;
  if (H % rows !== 0 || W % cols !== 0) {
    throw new Error(`patchColourImage: a ${H}x${W} image does not split into a ${rows}x${cols} patch grid`);
  }
  const ph = H / rows, pw = W / cols;
  const grey = toBytes(img);
  const out = new Uint8Array(H * W * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = Math.floor(y / ph) * cols + Math.floor(x / pw);
      for (let c = 0; c < 3; c++) {
        const base = grey[(y * W + x) * C + (C === 1 ? 0 : Math.min(c, C - 1))];
        out[(y * W + x) * 3 + c] = Math.round(alpha * colours[p * 3 + c] + (1 - alpha) * base);
      }
    }
  }
  return { data: out, height: H, width: W, channels: 3 };
}
