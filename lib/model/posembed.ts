/**
 * Fixed 2-D sine-cosine position embeddings, exactly as the official I-JEPA code builds them.
 *
 * For a grid of `rows x cols` patches and width D (divisible by 4): the first D/2 channels encode
 * the patch's column and the second D/2 its row; each half is [sin(pos * w_i), cos(pos * w_i)] with
 * w_i = 1 / 10000^(i / (D/4)), i = 0 .. D/4 - 1. Patches are in row-major order (index = row * cols
 * + col). The checkpoint fixture (tests/fixtures/official-ijepa-tiny) checks this against the stored
 * official embedding.
 *
 * @example
 * ```ts
 * import { sincosPosEmbed } from "./posembed.ts";
 * const pe = sincosPosEmbed(2, 2, 8); // [4 * 8]
 * // patch 0 sits at row 0, column 0: every sine is 0 and every cosine 1
 * if (pe[0] !== 0 || pe[2] !== 1) throw new Error("unexpected embedding");
 * ```
 * @module
 */

/** The [rows * cols, dim] embedding, row-major, as a Float32Array. */
export function sincosPosEmbed(rows: number, cols: number, dim: number): Float32Array {
  if (dim % 4 !== 0) {
    throw new Error(`sincosPosEmbed: width ${dim} must be divisible by 4 for a 2-D sin-cos embedding`);
  }
  const quarter = dim / 4;
  const omega = new Float64Array(quarter);
  for (let i = 0; i < quarter; i++) omega[i] = 1 / Math.pow(10000, i / quarter);
  const out = new Float32Array(rows * cols * dim);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const o = (r * cols + c) * dim;
      for (let i = 0; i < quarter; i++) {
        // first half: the column coordinate; second half: the row coordinate (official layout)
        out[o + i] = Math.sin(c * omega[i]);
        out[o + quarter + i] = Math.cos(c * omega[i]);
        out[o + 2 * quarter + i] = Math.sin(r * omega[i]);
        out[o + 3 * quarter + i] = Math.cos(r * omega[i]);
      }
    }
  }
  return out;
}
