// lib/data/nuisance.ts: backgrounds behind the objects, deterministic from a seed, objects kept.
// Run with `deno test -A tests/data/nuisance_test.ts`.
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import type { ImageDataset } from "../../lib/data/dataset.ts";
import { NUISANCE_KINDS, parseNuisance, withNuisance } from "../../lib/data/nuisance.ts";

/** n 28x28 grey images: a bright square (the "object") on black, in a different place in each. */
function squares(n: number): ImageDataset {
  const H = 28, W = 28, images = new Uint8Array(n * H * W);
  for (let i = 0; i < n; i++) {
    const o = 4 + (i % 8);
    for (let y = o; y < o + 10; y++) for (let x = o; x < o + 12; x++) images[(i * H + y) * W + x] = 200;
  }
  return {
    images,
    labels: new Int32Array(n),
    n,
    height: H,
    width: W,
    channels: 1,
    classNames: ["square"],
    source: "squares",
  };
}

/** Mean absolute difference between horizontal neighbours over background pixels. */
function roughness(ds: ImageDataset, clean: ImageDataset): number {
  let sum = 0, count = 0;
  for (let p = 0; p + 1 < ds.images.length; p++) {
    if ((p + 1) % ds.width === 0 || clean.images[p] || clean.images[p + 1]) continue;
    sum += Math.abs(ds.images[p] - ds.images[p + 1]);
    count++;
  }
  return sum / count;
}

Deno.test("nuisance: objects kept, backgrounds in range, the same for a seed and different across seeds", () => {
  const ds = squares(16);
  for (const kind of NUISANCE_KINDS) {
    const a = withNuisance(ds, { kind, strength: 0.6, seed: 3 });
    assertEquals(
      a.images,
      withNuisance(ds, { kind, strength: 0.6, seed: 3 }).images,
      `${kind}: not deterministic`,
    );
    assert(a.source.includes(`${kind} backgrounds at strength 0.6`), a.source);
    let changed = 0, diffSeed = 0;
    const b = withNuisance(ds, { kind, strength: 0.6, seed: 4 });
    for (let p = 0; p < ds.images.length; p++) {
      if (ds.images[p] >= 64) assertEquals(a.images[p], ds.images[p], `${kind}: object pixel ${p} changed`);
      else {
        assert(a.images[p] <= Math.ceil(255 * 0.6), `${kind}: background ${a.images[p]} above the strength`);
        if (a.images[p] !== ds.images[p]) changed++;
        if (a.images[p] !== b.images[p]) diffSeed++;
      }
    }
    // clutter covers three 10x10 pieces of other images, much of them black: fewer pixels change
    const least = kind === "clutter" ? 0.03 : 0.2;
    assert(changed > ds.images.length * least, `${kind}: only ${changed} background pixels changed`);
    assert(
      diffSeed > ds.images.length * least / 2,
      `${kind}: seeds 3 and 4 differ in only ${diffSeed} pixels`,
    );
  }
  assertEquals(withNuisance(ds, { kind: "noise", strength: 0, seed: 1 }), ds, "strength 0 changes nothing");
});

Deno.test("nuisance: noise is rough, texture smooth; each image's background depends on its index alone", () => {
  const ds = squares(12);
  const noise = withNuisance(ds, { kind: "noise", strength: 1, seed: 1 });
  const texture = withNuisance(ds, { kind: "texture", strength: 1, seed: 1 });
  const rn = roughness(noise, ds), rt = roughness(texture, ds);
  assert(rn > 60 && rt < rn / 2, `neighbour differences: noise ${rn.toFixed(1)}, texture ${rt.toFixed(1)}`);
  // the first 5 images of a 12-image set get the same backgrounds as a 5-image set
  const few = squares(5);
  for (const kind of ["noise", "texture"] as const) {
    const all = withNuisance(ds, { kind, strength: 1, seed: 9 }).images.subarray(0, few.images.length);
    assertEquals(all, withNuisance(few, { kind, strength: 1, seed: 9 }).images, kind);
  }
  // clutter is cut from the other images: bright pieces appear in the background
  const clutter = withNuisance(ds, { kind: "clutter", strength: 1, seed: 1 });
  let bright = 0;
  for (let p = 0; p < ds.images.length; p++) if (!ds.images[p] && clutter.images[p] > 150) bright++;
  assert(bright > 50, `only ${bright} bright clutter pixels`);
});

Deno.test("nuisance: KIND:STRENGTH parsed, bad specs named", () => {
  assertEquals(parseNuisance("noise:0.5"), { kind: "noise", strength: 0.5 });
  assertEquals(parseNuisance("none"), undefined);
  for (const bad of ["noise", "fog:0.5", "noise:2", "noise:-1", "noise:0.5:1", "texture:x"]) {
    assertThrows(() => parseNuisance(bad), Error, "expected KIND:STRENGTH");
  }
  assertThrows(() => withNuisance(squares(1), { kind: "noise", strength: 1.5, seed: 0 }), Error, "strength");
});
