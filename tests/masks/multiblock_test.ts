// Tests for the multi-block strategy (lib/masks/masker.ts, strategies.ts) and the block geometry
// (lib/masks/geometry.ts). Property tests run thousands of seeded draws over many grid sizes; each
// official-collator fault that the masker fixes has its own test.

import assert from "node:assert/strict";
import { blockSize, possibleBlockSizes } from "../../lib/masks/geometry.ts";
import { createMasker, type MultiBlockMasker } from "../../lib/masks/masker.ts";
import type { MaskerOptions } from "../../lib/masks/options.ts";
import { Rng } from "../../lib/engine/rng.ts";
import { bbox, checkBatch } from "./_masks.ts";

const GRIDS: [number, number][] = [
  [2, 3],
  [1, 12],
  [4, 4],
  [3, 7],
  [5, 5],
  [7, 7],
  [8, 8],
  [9, 6],
  [
    10,
    13,
  ],
  [14, 14],
  [16, 16],
];

Deno.test("multiblock: indices, disjointness, rectangles, sizes and minKeep hold on many grids", () => {
  let examples = 0;
  for (const [rows, cols] of GRIDS) {
    const n = rows * cols;
    const sizes = possibleBlockSizes(rows, cols, [0.15, 0.2], [0.75, 1.5]);
    const tMax = Math.max(...sizes.map(([h, w]) => h * w));
    const minKeep = Math.max(1, Math.min(Math.floor(0.15 * n), n - tMax));
    for (const collate of ["truncate", "pad"] as const) {
      const m = createMasker({ rows, cols, minKeep, collate });
      const rng = new Rng(rows * 100 + cols);
      for (let i = 0; i < 30; i++) {
        const b = m.sample(rng, 32);
        checkBatch(m, b);
        examples += b.batchSize;
      }
    }
  }
  assert.ok(examples >= 20000, `only ${examples} examples checked`);
});

Deno.test("multiblock: random option sets either build and keep every property, or fail in the constructor", () => {
  const meta = new Rng(12345);
  let built = 0, refused = 0;
  for (let k = 0; k < 300; k++) {
    const rows = meta.int(1, 13), cols = meta.int(rows === 1 ? 2 : 1, 13);
    const s0 = meta.uniform(0.02, 0.6), a0 = meta.uniform(0.3, 2), c0 = meta.uniform(0.2, 1);
    const opts: MaskerOptions = {
      rows,
      cols,
      nTargets: meta.int(1, 7),
      targetScale: [s0, Math.min(1, s0 + meta.uniform(0, 0.3))],
      targetAspect: [a0, a0 + meta.uniform(0, 1.5)],
      contextScale: [c0, Math.min(1, c0 + meta.uniform(0, 0.5))],
      contextAspect: meta.float() < 0.5 ? [1, 1] : [0.5, 2],
      minKeep: meta.int(1, Math.max(2, Math.floor(rows * cols * 0.6))),
      collate: meta.float() < 0.5 ? "truncate" : "pad",
      maxTries: meta.int(1, 30),
    };
    let m: MultiBlockMasker;
    try {
      m = createMasker(opts);
    } catch (e) {
      // A refusal must name the minKeep it refused.
      assert.ok(e instanceof RangeError, String(e));
      assert.match(e.message, new RegExp(`minKeep ${opts.minKeep} `));
      refused++;
      continue;
    }
    built++;
    const rng = new Rng(k);
    for (let i = 0; i < 8; i++) checkBatch(m, m.sample(rng, 16));
  }
  assert.ok(
    built > 100 && refused > 10,
    `built ${built}, refused ${refused}: the fuzz misses a side`,
  );
});

Deno.test("multiblock: the context and the targets reach every patch, including the last row and column", () => {
  // The official collator never covers the last row or column: its blocks are capped at (H-1)x(W-1)
  // and their corners drawn with an exclusive bound.
  for (
    const [rows, cols, contextScale] of [[7, 7, [0.85, 1]], [8, 8, [0.85, 1]], [5, 9, [0.3, 0.5]], [
      14,
      14,
      [0.4, 0.6],
    ]] as const
  ) {
    const m = createMasker({ rows, cols, contextScale: [...contextScale], minKeep: 2 });
    const inContext = new Uint8Array(rows * cols), inTarget = new Uint8Array(rows * cols);
    const corners = new Set<string>();
    const rng = new Rng(7);
    for (let i = 0; i < 200; i++) {
      const b = m.sample(rng, 16);
      for (const e of b.examples) {
        for (const p of e.context) inContext[p] = 1;
        for (const t of e.targets) for (const p of t) inTarget[p] = 1;
        const [top, left, h, w] = bbox(e.context, cols);
        corners.add(`${top + h},${left + w}`);
      }
    }
    assert.equal(
      inContext.indexOf(0),
      -1,
      `${rows}x${cols}: patch ${inContext.indexOf(0)} never in a context`,
    );
    assert.equal(
      inTarget.indexOf(0),
      -1,
      `${rows}x${cols}: patch ${inTarget.indexOf(0)} never in a target`,
    );
    assert.ok(
      corners.has(`${rows},${cols}`),
      `${rows}x${cols}: no context reaches the bottom-right corner`,
    );
  }
  // On 7x7 the paper's context block is 7x7 most of the time; the official cap allowed only 6x6.
  const m = createMasker({ rows: 7, cols: 7 });
  const rng = new Rng(0);
  let full = 0;
  for (let i = 0; i < 200; i++) if (m.sample(rng, 1).contextBlock![0] === 7) full++;
  assert.ok(full > 150, `the 7x7 context block was drawn only ${full} of 200 times`);
});

function correlation(xs: number[], ys: number[]): number {
  const n = xs.length, mx = xs.reduce((a, b) => a + b) / n, my = ys.reduce((a, b) => a + b) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

Deno.test("multiblock: scale and aspect are drawn independently", () => {
  // The official draws one number for both, so big blocks are tall and small ones wide: block area
  // and log(h / w) correlate (0.66 on 14x14, computed below). Independent draws: close to 0.
  const m = createMasker({ rows: 14, cols: 14 });
  const rng = new Rng(3);
  const area: number[] = [],
    shape: number[] = [],
    coupledArea: number[] = [],
    coupledShape: number[] = [];
  let largeWide = 0;
  for (let i = 0; i < 2000; i++) {
    const [h, w] = m.sample(rng, 1).targetBlock!;
    area.push(h * w);
    shape.push(Math.log(h / w));
    if (w > h && h * w >= 35) largeWide++; // never under the official coupling (wide means s < 0.167)
    const r = rng.float();
    const [ch, cw] = blockSize(0.15 + 0.05 * r, 0.75 + 0.75 * r, 14, 14);
    coupledArea.push(ch * cw);
    coupledShape.push(Math.log(ch / cw));
  }
  const ours = correlation(area, shape), coupled = correlation(coupledArea, coupledShape);
  assert.ok(Math.abs(ours) < 0.15, `area and shape correlate: ${ours.toFixed(3)}`);
  assert.ok(coupled > 0.5, `the coupled draw should correlate, got ${coupled.toFixed(3)}`);
  assert.ok(largeWide > 20, `only ${largeWide} large wide target blocks in 2000 batches`);
});

Deno.test("multiblock: block sizes follow h = round(sqrt(s*N*a)), w = round(sqrt(s*N/a)), clamped to the grid", () => {
  assert.deepEqual(blockSize(0.2, 1.5, 14, 14), [8, 5]);
  assert.deepEqual(blockSize(0.15, 0.75, 14, 14), [5, 6]);
  assert.deepEqual(blockSize(1, 1, 7, 7), [7, 7]); // the official would cap this at 6x6
  assert.deepEqual(blockSize(1, 4, 7, 7), [7, 4]); // clamped height
  assert.deepEqual(blockSize(0.001, 1, 7, 7), [1, 1]); // never empty
});

Deno.test("possibleBlockSizes: exactly the sizes a fine sweep of scale and aspect produces", () => {
  const cases: [number, number, [number, number], [number, number]][] = [
    [7, 7, [0.15, 0.2], [0.75, 1.5]],
    [14, 14, [0.15, 0.2], [0.75, 1.5]],
    [14, 14, [0.85, 1], [1, 1]],
    [5, 11, [0.05, 0.9], [0.3, 3]],
    [1, 9, [0.1, 0.5], [0.5, 2]],
    [16, 16, [0.6, 0.6], [0.75, 1.5]],
  ];
  for (const [rows, cols, scale, aspect] of cases) {
    const exact = new Set(possibleBlockSizes(rows, cols, scale, aspect).map((s) => s.join("x")));
    const swept = new Set<string>();
    const K = 400;
    for (let i = 0; i <= K; i++) {
      for (let j = 0; j <= K; j++) {
        const s = scale[0] + ((scale[1] - scale[0]) * i) / K;
        const a = aspect[0] + ((aspect[1] - aspect[0]) * j) / K;
        swept.add(blockSize(s, a, rows, cols).join("x"));
      }
    }
    for (const s of swept) assert.ok(exact.has(s), `${rows}x${cols}: swept size ${s} missing`);
    for (const s of exact) {
      assert.ok(swept.has(s), `${rows}x${cols}: size ${s} is not produced by any draw`);
    }
  }
  assert.deepEqual(possibleBlockSizes(7, 7, [0.85, 1], [1, 1]), [[6, 6], [7, 7]]);
});
