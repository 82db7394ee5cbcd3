// Tests for lib/masks/masks.ts (the masker) and lib/cli/masks.ts (its statistics task).
// Property tests run thousands of seeded draws over many grid sizes; each official-collator fault
// that the masker fixes has its own test.

import assert from "node:assert/strict";
import {
  benchMasker,
  blockSize,
  createMasker,
  MASK_PRESETS,
  type MaskBatch,
  MASKER_DEFAULTS,
  type MaskerOptions,
  maskPreset,
  type MultiBlockMasker,
  possibleBlockSizes,
} from "../../lib/masks/masks.ts";
import { maskStatistics } from "../../lib/cli/masks.ts";
import { Rng } from "../../lib/engine/rng.ts";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function assertSortedInRange(a: Int32Array, n: number, what: string): void {
  for (let i = 0; i < a.length; i++) {
    assert.ok(a[i] >= 0 && a[i] < n, `${what}[${i}] = ${a[i]} outside [0, ${n})`);
    if (i > 0) {
      assert.ok(a[i] > a[i - 1], `${what} not strictly increasing at ${i}: ${a[i - 1]}, ${a[i]}`);
    }
  }
}

/** The bounding box of a set of indices: [top, left, height, width]. */
function bbox(a: Int32Array, cols: number): [number, number, number, number] {
  let r0 = Infinity, r1 = -1, c0 = Infinity, c1 = -1;
  for (const i of a) {
    const r = Math.floor(i / cols), c = i % cols;
    r0 = Math.min(r0, r);
    r1 = Math.max(r1, r);
    c0 = Math.min(c0, c);
    c1 = Math.max(c1, c);
  }
  return [r0, c0, r1 - r0 + 1, c1 - c0 + 1];
}

/**
 * Whether an h x w block can come from some scale in `scale` and aspect in `aspect`, up to the
 * rounding of h and w: sqrt(s*N*a) lies within 0.5 of h (any amount above when h is clamped to the
 * grid, below 1.5 when h = 1), and the same for w.
 */
function sizeWithinBounds(
  [h, w]: readonly [number, number],
  rows: number,
  cols: number,
  scale: readonly [number, number],
  aspect: readonly [number, number],
): boolean {
  const hl = h === 1 ? 0 : h - 0.5, hu = h === rows ? Infinity : h + 0.5;
  const wl = w === 1 ? 0 : w - 0.5, wu = w === cols ? Infinity : w + 0.5;
  const n = rows * cols;
  const sOk = hl * wl <= scale[1] * n && hu * wu >= scale[0] * n;
  const aOk = hl / wu <= aspect[1] && (wl === 0 ? Infinity : hu / wl) >= aspect[0];
  return sOk && aOk;
}

/** Check every property of a batch that holds for every strategy, plus the multiblock geometry. */
function checkBatch(m: MultiBlockMasker, b: MaskBatch): void {
  const o = m.options, n = o.rows * o.cols, B = b.batchSize, M = o.nTargets;
  assert.equal(b.examples.length, B);
  assert.equal(b.nTargets, M);
  const taken = new Uint8Array(n);
  let fallbacks = 0;
  for (let e = 0; e < B; e++) {
    const { context, targets } = b.examples[e];
    assertSortedInRange(context, n, "context");
    assert.ok(context.length >= o.minKeep, `context of ${context.length} < minKeep ${o.minKeep}`);
    assert.equal(targets.length, M);
    taken.fill(0);
    for (const i of context) taken[i] = 1;
    for (const t of targets) {
      assertSortedInRange(t, n, "target");
      assert.ok(t.length > 0, "empty target");
      for (const i of t) {
        assert.equal(taken[i], 0, `patch ${i} is in both the context and a target`);
      }
    }
    if (b.fallbackLevel[e]) fallbacks++;
    if (o.strategy === "multiblock") {
      const [th, tw] = b.targetBlock!;
      for (const t of targets) {
        const [, , h, w] = bbox(t, o.cols);
        assert.deepEqual([h, w], [th, tw], "a target block is not the batch's block size");
        assert.equal(t.length, h * w, "a target block is not a full rectangle");
      }
      // The context is one rectangle minus the targets: every hole in its bounding box is a target.
      const [top, left, h, w] = bbox(context, o.cols);
      const inTarget = new Uint8Array(n);
      for (const t of targets) for (const i of t) inTarget[i] = 1;
      for (let r = top; r < top + h; r++) {
        for (let c = left; c < left + w; c++) {
          const i = r * o.cols + c;
          assert.ok(
            taken[i] || inTarget[i],
            `patch ${i} inside the context block is in neither set`,
          );
        }
      }
      if (b.fallbackLevel[e] === 0) {
        const [ch, cw] = b.contextBlock!;
        assert.ok(h <= ch && w <= cw, `context spans ${h}x${w}, more than its ${ch}x${cw} block`);
      }
      if (b.fallbackLevel[e] === 2) {
        for (const t of targets) {
          assert.deepEqual(t, targets[0], "level-2 fallback stacks the targets");
        }
      }
    }
  }
  assert.equal(b.fallbacks, fallbacks);
  if (o.strategy === "multiblock") {
    assert.ok(sizeWithinBounds(b.targetBlock!, o.rows, o.cols, o.targetScale, o.targetAspect));
    assert.ok(sizeWithinBounds(b.contextBlock!, o.rows, o.cols, o.contextScale, o.contextAspect));
  }
  checkCollation(m, b);
}

function isSubset(a: Int32Array, of: Int32Array): boolean {
  const s = new Set(of);
  return a.every((i) => s.has(i));
}

function checkCollation(m: MultiBlockMasker, b: MaskBatch): void {
  const B = b.batchSize, Lc = b.contextLen, Lt = b.targetLen, M = b.nTargets;
  const lens = b.examples.map((e) => e.context.length);
  assert.equal(b.contextIdx.length, B * Lc);
  assert.equal(b.targetIdx.length, M * B * Lt);
  if (m.options.collate === "truncate") {
    assert.equal(Lc, Math.min(...lens));
    assert.equal(b.contextValid, null);
    for (let e = 0; e < B; e++) {
      const row = b.contextIdx.subarray(e * Lc, (e + 1) * Lc);
      assertSortedInRange(row, m.options.rows * m.options.cols, "collated context");
      assert.ok(isSubset(row, b.examples[e].context), "a truncated context holds a foreign patch");
    }
  } else {
    assert.equal(Lc, Math.max(...lens));
    assert.ok(b.contextValid && b.contextValid.length === B * Lc);
    for (let e = 0; e < B; e++) {
      const ctx = b.examples[e].context, off = e * Lc;
      assert.deepEqual(b.contextIdx.subarray(off, off + ctx.length), ctx);
      for (let j = ctx.length; j < Lc; j++) assert.equal(b.contextIdx[off + j], ctx[0]);
      for (let j = 0; j < Lc; j++) assert.equal(b.contextValid[off + j], j < ctx.length ? 1 : 0);
    }
  }
  let shortest = Infinity;
  for (const e of b.examples) for (const t of e.targets) shortest = Math.min(shortest, t.length);
  assert.equal(Lt, shortest);
  for (let t = 0; t < M; t++) {
    for (let e = 0; e < B; e++) {
      const row = b.targetIdx.subarray((t * B + e) * Lt, (t * B + e + 1) * Lt);
      const full = b.examples[e].targets[t];
      if (full.length === Lt) {
        assert.deepEqual(row, full, "target rows are block-major (m * B + b)");
      } else {
        assertSortedInRange(row, m.options.rows * m.options.cols, "collated target");
        assert.ok(isSubset(row, full));
      }
    }
  }
}

function assertThrowsWith(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: Error) => {
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return true;
  });
}

/** FNV-1a over the collated indices: a fingerprint of a batch for the golden tests. */
function fingerprint(b: MaskBatch): string {
  let h = 0x811c9dc5;
  for (const a of [b.contextIdx, b.targetIdx]) {
    for (const v of a) h = Math.imul(h ^ v, 0x01000193) >>> 0;
  }
  return h.toString(16);
}

// ---------------------------------------------------------------------------------------------
// Multi-block properties
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Impossible settings fail at construction; sampling always ends
// ---------------------------------------------------------------------------------------------

Deno.test("construction rejects impossible settings with the numbers in the message", () => {
  // minKeep above the largest context: a 5x5 context block (scale <= 0.6 of 49) cannot keep 30.
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, contextScale: [0.5, 0.6], minKeep: 30 }),
    "minKeep 30 exceeds the largest possible context (25 patches on a 7x7 grid",
  );
  // minKeep that the largest target block can squeeze out: 49 - 4x3 = 37 < 40.
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, minKeep: 40 }),
    "minKeep 40 cannot always be met",
    "= 12 patches",
    "at most 37 of the 49 patches",
  );
  // More target area than the grid: a full-grid target leaves no context at all.
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, targetScale: [0.9, 1], minKeep: 1 }),
    "minKeep 1",
    "7x7 = 49 patches",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, targetScale: [0.1, 1.2] }),
    "targetScale",
    "1.2",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, contextScale: [0, 1] }),
    "contextScale",
    "[0, 1]",
  );
  assertThrowsWith(() => createMasker({ rows: 7, cols: 7, targetScale: [0.3, 0.2] }), "[0.3, 0.2]");
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, targetAspect: [-1, 2] }),
    "targetAspect",
    "-1",
  );
  assertThrowsWith(() => createMasker({ rows: 7.5, cols: 7 }), "rows", "7.5");
  assertThrowsWith(() => createMasker({ rows: 0, cols: 7 }), "rows", "got 0");
  assertThrowsWith(
    () => createMasker({ rows: 1, cols: 1, minKeep: 1 }),
    "at least 2 patches",
    "1x1",
  );
  assertThrowsWith(() => createMasker({ rows: 7, cols: 7, nTargets: 0 }), "nTargets", "got 0");
  assertThrowsWith(() => createMasker({ rows: 7, cols: 7, minKeep: 2.5 }), "minKeep", "2.5");
  assertThrowsWith(() => createMasker({ rows: 7, cols: 7, maxTries: 0 }), "maxTries", "got 0");
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, minkeep: 4 } as unknown as MaskerOptions),
    'unknown option "minkeep"',
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "grid" as unknown as "block" }),
    'got "grid"',
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, collate: "zip" as unknown as "pad" }),
    'got "zip"',
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "rasterized", nTargets: 4 }),
    "3 target block(s), got nTargets 4",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "rasterized" }),
    "minKeep 10 exceeds the smallest quadrant context (9 patches on a 7x7 grid)",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "random", maskRatio: 0.9 }),
    "maskRatio 0.9",
    "masks 44 of 49",
    "leaving 5",
    "minKeep 10",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "random", maskRatio: 1.5 }),
    "1.5",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7, strategy: "block", minKeep: 25 }),
    "minKeep 25 cannot always be met",
  );
  assertThrowsWith(
    () => createMasker({ rows: 7, cols: 7 }).sample(new Rng(0), 0),
    "batchSize",
    "got 0",
  );
});

Deno.test("the official's never-ending settings (min_keep 10 on 7x7 and 8x8) sample without a fallback", () => {
  for (const g of [7, 8]) {
    const m = createMasker({ rows: g, cols: g, minKeep: 10 });
    const rng = new Rng(g);
    let fallbacks = 0;
    for (let i = 0; i < 100; i++) {
      const b = m.sample(rng, 64);
      checkBatch(m, b);
      fallbacks += b.fallbacks;
    }
    assert.equal(fallbacks, 0);
  }
});

Deno.test("fallback: bounded tries, then a widened context, then stacked targets; never overlapping", () => {
  // Level 1: a 5x5 context block can rarely keep 20 patches beside four targets, the whole grid can.
  const m1 = createMasker({ rows: 7, cols: 7, contextScale: [0.5, 0.5], minKeep: 20, maxTries: 5 });
  const rng = new Rng(1);
  const levels = [0, 0, 0];
  for (let i = 0; i < 100; i++) {
    const b = m1.sample(rng, 32);
    checkBatch(m1, b);
    for (const l of b.fallbackLevel) levels[l]++;
    b.examples.forEach((e, k) => {
      if (b.fallbackLevel[k] === 1) {
        // Widened: the context is every patch that is not a target.
        const t = new Set(e.targets.flatMap((x) => [...x]));
        assert.equal(e.context.length, 49 - t.size);
      }
    });
  }
  assert.ok(levels[1] > 100, `level-1 fallbacks: ${levels[1]}`);
  // Level 2: on 4x4 with four 2x2 targets, keeping 12 patches needs all four targets on one spot.
  const m2 = createMasker({
    rows: 4,
    cols: 4,
    targetScale: [0.25, 0.25],
    targetAspect: [1, 1],
    contextScale: [1, 1],
    minKeep: 12,
    maxTries: 3,
  });
  let stacked = 0;
  for (let i = 0; i < 50; i++) {
    const b = m2.sample(rng, 16);
    checkBatch(m2, b);
    for (const l of b.fallbackLevel) if (l === 2) stacked++;
    for (const e of b.examples) assert.equal(e.context.length, 12);
  }
  assert.ok(stacked > 600, `level-2 fallbacks: ${stacked} of 800`);
});

// ---------------------------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------------------------

Deno.test("determinism: the same seed gives the same masks, whatever ran before", () => {
  for (const strategy of ["multiblock", "rasterized", "block", "random"] as const) {
    const opts: MaskerOptions = { rows: 7, cols: 7, strategy, minKeep: 4 };
    const a = createMasker(opts), b = createMasker(opts);
    b.sample(new Rng(99), 40); // history must not matter
    const x = a.sample(new Rng(5), 16), y = b.sample(new Rng(5), 16);
    assert.deepEqual(x, y, strategy);
    assert.notDeepEqual(
      x.examples,
      a.sample(new Rng(6), 16).examples,
      `${strategy}: seeds 5 and 6 agree`,
    );
  }
  // Resuming from a saved RNG state continues the same sequence.
  const m = createMasker({ rows: 14, cols: 14 });
  const r = new Rng(0);
  m.sample(r, 8);
  const saved = r.state();
  const next = m.sample(r, 8);
  assert.deepEqual(m.sample(Rng.fromState(saved), 8), next);
});

Deno.test("determinism: golden fingerprints (same masks on every machine and run)", () => {
  // If one of these changes, the masks for a given seed changed: say so in the changelog.
  const cases: [MaskerOptions, string][] = [
    [{ rows: 14, cols: 14 }, "e10f6804"],
    [{ rows: 7, cols: 7, collate: "pad" }, "3eb7b237"],
    [{ rows: 7, cols: 7, strategy: "rasterized", minKeep: 4 }, "142fb981"],
    [{ rows: 8, cols: 8, strategy: "random", minKeep: 4 }, "e295fa9d"],
    [{ rows: 8, cols: 8, strategy: "block", minKeep: 4 }, "119934e5"],
  ];
  const got = cases.map(([o]) => fingerprint(createMasker(o).sample(new Rng(0), 16)));
  assert.deepEqual(got, cases.map(([, f]) => f));
});

Deno.test("collation: truncate and pad see the same masks; their lengths are the batch's min and max", () => {
  const t = createMasker({ rows: 14, cols: 14, collate: "truncate" });
  const p = createMasker({ rows: 14, cols: 14, collate: "pad" });
  for (let s = 0; s < 20; s++) {
    const a = t.sample(new Rng(s), 32), b = p.sample(new Rng(s), 32);
    assert.deepEqual(a.examples, b.examples);
    checkCollation(t, a);
    checkCollation(p, b);
    assert.ok(a.contextLen < b.contextLen, "contexts of one batch should differ in length");
    const valid = b.contextValid!.reduce((x, y) => x + y, 0);
    assert.equal(valid, b.examples.reduce((x, e) => x + e.context.length, 0));
  }
  // Truncation keeps a random subset, not the first indices: over many batches, the last patches of
  // long contexts survive truncation about as often as the first ones.
  let first = 0, last = 0;
  const rng = new Rng(4);
  for (let i = 0; i < 200; i++) {
    const b = t.sample(rng, 16);
    b.examples.forEach((e, k) => {
      const row = new Set(b.contextIdx.subarray(k * b.contextLen, (k + 1) * b.contextLen));
      if (row.has(e.context[0])) first++;
      if (row.has(e.context[e.context.length - 1])) last++;
    });
  }
  assert.ok(last > 0.8 * first && last < 1.25 * first, `first kept ${first}, last kept ${last}`);
});

// ---------------------------------------------------------------------------------------------
// Ablation strategies
// ---------------------------------------------------------------------------------------------

Deno.test("rasterized: one quadrant is the context, the other three the targets", () => {
  for (const [rows, cols] of [[8, 8], [7, 7], [6, 9]]) {
    const m = createMasker({ rows, cols, strategy: "rasterized", minKeep: 4 });
    const rng = new Rng(2);
    const splits = new Set<number>();
    const contextQuadrants = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const b = m.sample(rng, 16);
      checkBatch(m, b);
      assert.equal(b.nTargets, 3);
      for (const e of b.examples) {
        const all = [e.context, ...e.targets];
        assert.equal(all.reduce((s, a) => s + a.length, 0), rows * cols, "quadrants tile the grid");
        for (const q of all) {
          const [top, left, h, w] = bbox(q, cols);
          assert.equal(q.length, h * w, "a quadrant is a rectangle");
          assert.ok(top === 0 || top + h === rows);
          assert.ok(left === 0 || left + w === cols);
        }
        const [top, left, h] = bbox(e.context, cols);
        contextQuadrants.add(`${top === 0 ? "top" : "bottom"} ${left === 0 ? "left" : "right"}`);
        splits.add(top === 0 ? h : rows - h);
      }
    }
    assert.equal(contextQuadrants.size, 4, "every quadrant serves as the context");
    assert.equal(
      splits.size,
      rows % 2 === 1 ? 2 : 1,
      "odd sides split on either side of the middle",
    );
  }
  // On 7x7 quadrants differ in size, so targets are cut to the batch's shortest (9 = 3x3).
  const m = createMasker({ rows: 7, cols: 7, strategy: "rasterized", minKeep: 4 });
  const b = m.sample(new Rng(0), 32);
  assert.equal(b.targetLen, 9);
});

Deno.test("block: one target block of Block(0.6); the context is the rest", () => {
  const m = createMasker({ rows: 14, cols: 14, strategy: "block" });
  assert.deepEqual(m.options.targetScale, [0.6, 0.6]);
  const rng = new Rng(8);
  for (let i = 0; i < 50; i++) {
    const b = m.sample(rng, 16);
    checkBatch(m, b);
    const [h, w] = b.targetBlock!;
    assert.ok(sizeWithinBounds([h, w], 14, 14, [0.6, 0.6], m.options.targetAspect));
    for (const e of b.examples) {
      assert.equal(e.targets[0].length, h * w);
      assert.equal(e.context.length, 196 - h * w);
    }
  }
});

Deno.test("random: round(maskRatio * N) random target patches; every patch masked about that often", () => {
  const m = createMasker({ rows: 10, cols: 10, strategy: "random", maskRatio: 0.6 });
  const counts = new Float64Array(100);
  const rng = new Rng(11);
  const draws = 100 * 32;
  for (let i = 0; i < 100; i++) {
    const b = m.sample(rng, 32);
    checkBatch(m, b);
    assert.equal(b.targetLen, 60);
    assert.equal(b.contextLen, 40);
    for (const e of b.examples) for (const p of e.targets[0]) counts[p]++;
  }
  for (let p = 0; p < 100; p++) {
    const f = counts[p] / draws; // binomial: std 0.009
    assert.ok(Math.abs(f - 0.6) < 0.05, `patch ${p} masked ${f.toFixed(3)} of the time`);
  }
});

// ---------------------------------------------------------------------------------------------
// Presets, speed, statistics, CLI
// ---------------------------------------------------------------------------------------------

Deno.test("presets: build, never need the fallback, and keep the paper's context fraction", () => {
  for (const key of Object.keys(MASK_PRESETS)) {
    const [rows, cols] = key.split("x").map(Number);
    const m = createMasker(maskPreset(rows, cols));
    const s = maskStatistics(m, { batch: 64, batches: 100, seed: 0 });
    assert.equal(s.fallbackRate, 0, key);
    assert.ok(s.contextFraction > 0.4 && s.contextFraction < 0.55, `${key}: ${s.contextFraction}`);
    assert.ok(s.contextSize.min >= m.options.minKeep);
  }
  assert.deepEqual(maskPreset(20, 20), { rows: 20, cols: 20, ...MASKER_DEFAULTS });
  assertThrowsWith(() => maskPreset(9, 9), "no preset for a 9x9 grid");
});

Deno.test("speed: a batch of 64 takes well under 1% of a 0.5 s train step", () => {
  for (const g of [7, 14]) {
    const r = benchMasker(createMasker(maskPreset(g, g)), 64, 0.3);
    console.log(
      `${g}x${g} batch 64: ${Math.round(r.masksPerSecond)} masks/s, ${r.msPerBatch.toFixed(3)} ms/batch`,
    );
    assert.ok(r.msPerBatch < 5, `${g}x${g}: ${r.msPerBatch} ms per batch`);
  }
});

Deno.test("maskStatistics: exact figures where the answer is known", () => {
  const m = createMasker({ rows: 10, cols: 10, strategy: "random", maskRatio: 0.6 });
  const s = maskStatistics(m, { batch: 8, batches: 5, seed: 0 });
  assert.equal(s.examples, 40);
  assert.deepEqual(s.contextSize, { mean: 40, std: 0, min: 40, max: 40 });
  assert.deepEqual(s.targetSize, { mean: 60, std: 0, min: 60, max: 60 });
  assert.equal(s.truncateDrops, 0);
  assert.equal(s.padWaste, 0);
  const r = maskStatistics(createMasker({ rows: 7, cols: 7, strategy: "rasterized", minKeep: 4 }), {
    batch: 16,
    batches: 20,
    seed: 0,
  });
  assert.equal(r.contextLenTruncate.min, 9, "the smallest quadrant of a 7x7 grid is 3x3");
  assert.equal(r.contextLenPad.max, 16, "the largest is 4x4");
  assert.ok(r.targetDrops > 0.1, "rasterized targets on 7x7 are cut to the shortest quadrant");
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "lib/cli/masks.ts", ...args],
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await cmd.output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

Deno.test("cli: --json statistics, the table, --help, and errors for bad flags and settings", async () => {
  const j = await cli("--grid", "7", "--batch", "32", "--batches", "50", "--seed", "0", "--json");
  assert.equal(j.code, 0, j.err);
  const s = JSON.parse(j.out);
  assert.equal(s.options.rows, 7);
  assert.equal(s.examples, 1600);
  assert.ok(s.contextSize.min >= 10 && s.contextLenPad.mean > s.contextLenTruncate.mean);
  assert.equal(s.fallbackRate, 0);
  const t = await cli(
    "--grid",
    "8",
    "--batches",
    "5",
    "--strategy",
    "rasterized",
    "--min-keep",
    "4",
  );
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /rasterized on a 8x8 grid/);
  assert.match(t.out, /collated context, truncate\s+16\.00/);
  assert.match(t.out, /fallback rate/);
  const h = await cli("--help");
  assert.equal(h.code, 0);
  for (const flag of ["--min-keep", "--strategy", "--targets", "--collate", "--png", "--json"]) {
    assert.ok(h.out.includes(flag), `--help lacks ${flag}`);
  }
  const u = await cli("--gird", "7");
  assert.equal(u.code, 2);
  assert.match(u.err, /unknown flag --gird/);
  const bad = await cli("--grid", "7", "--min-keep", "45");
  assert.equal(bad.code, 2);
  assert.match(bad.err, /minKeep 45/);
  const r = await cli("--grid", "7", "--target-scale", "0.2");
  assert.equal(r.code, 2);
  assert.match(r.err, /--target-scale expects LO,HI/);
});
