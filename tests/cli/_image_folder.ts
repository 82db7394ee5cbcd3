// A small image folder for CLI tests that train and probe: three classes of 16x16 grey PNGs (a
// bright left half, right half or top half, with a little texture), `perClass` images each. Small
// enough that pretrain, ablate and recipe on the tiny preset take seconds, not minutes.
import { PNG } from "pngjs";

export async function writeImageFolder(dir: string, perClass: number): Promise<void> {
  for (const [c, cls] of ["left", "right", "top"].entries()) {
    await Deno.mkdir(`${dir}/${cls}`, { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const png = new PNG({ width: 16, height: 16 });
      for (let p = 0; p < 256; p++) {
        const x = p % 16, y = Math.floor(p / 16);
        const on = c === 0 ? x < 8 : c === 1 ? x >= 8 : y < 8;
        const v = (on ? 200 : 40) + ((p * 7 + i * 13) % 30);
        png.data.set([v, v, v, 255], p * 4);
      }
      await Deno.writeFile(`${dir}/${cls}/${i}.png`, PNG.sync.write(png));
    }
  }
}
