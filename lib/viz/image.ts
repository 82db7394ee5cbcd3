/**
 * Images as pixels for figures: the {@link PlotImage} layout, its conversion to RGBA bytes, and
 * RGBA bytes encoded as a PNG data URI (for `<image>` marks and canvas stand-ins).
 *
 * @module
 */

import { PNG } from "pngjs";
// One definition, in the lower folder: lib/inside makes the images that figures draw.
import type { PlotImage } from "../inside/pixels.ts";
export type { PlotImage };

/**
 * RGBA bytes of an image: Uint8 data as is; floats as is when inside [0, 1], else min-max scaled
 * per image (as for normalised network inputs).
 */
export function imageToRgba(img: PlotImage, who: string): Uint8Array {
  const { data, height, width, channels } = img;
  if (![1, 3, 4].includes(channels)) {
    throw new RangeError(`${who}: expected channels 1, 3 or 4, got ${channels}`);
  }
  if (!(height > 0 && width > 0) || data.length !== height * width * channels) {
    throw new RangeError(
      `${who}: expected ${height}x${width}x${channels} = ${
        height * width * channels
      } values, got ${data.length}`,
    );
  }
  let lo = 0, hi = 255;
  if (!(data instanceof Uint8Array)) {
    let mn = Infinity, mx = -Infinity;
    for (const v of data) {
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    [lo, hi] = mn >= 0 && mx <= 1 ? [0, 1] : [mn, mx > mn ? mx : mn + 1];
  }
  const out = new Uint8Array(height * width * 4);
  for (let p = 0; p < height * width; p++) {
    for (let k = 0; k < 4; k++) {
      const src = channels === 1 ? (k < 3 ? 0 : -1) : k < channels ? k : -1;
      out[p * 4 + k] = src < 0
        ? 255
        : Math.round(Math.max(0, Math.min(1, (data[p * channels + src] - lo) / (hi - lo))) * 255);
    }
  }
  return out;
}

/** Encode RGBA pixels as a PNG data URI (deterministic: same pixels, same bytes). */
export function pngDataUri(rgba: Uint8Array, width: number, height: number): string {
  const png = new PNG({ width, height });
  png.data.set(rgba);
  const bytes: Uint8Array = PNG.sync.write(png);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return `data:image/png;base64,${btoa(bin)}`;
}
