// Shared checks of mask batches for the tests of lib/masks/: every property a batch must keep,
// collation, and small helpers.

import assert from "node:assert/strict";
import type { MaskBatch } from "../../lib/masks/batch.ts";
import type { MultiBlockMasker } from "../../lib/masks/masker.ts";

export function assertSortedInRange(a: Int32Array, n: number, what: string): void {
  for (let i = 0; i < a.length; i++) {
    assert.ok(a[i] >= 0 && a[i] < n, `${what}[${i}] = ${a[i]} outside [0, ${n})`);
    if (i > 0) {
      assert.ok(a[i] > a[i - 1], `${what} not strictly increasing at ${i}: ${a[i - 1]}, ${a[i]}`);
    }
  }
}

/** The bounding box of a set of indices: [top, left, height, width]. */
export function bbox(a: Int32Array, cols: number): [number, number, number, number] {
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
export function sizeWithinBounds(
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
export function checkBatch(m: MultiBlockMasker, b: MaskBatch): void {
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

export function isSubset(a: Int32Array, of: Int32Array): boolean {
  const s = new Set(of);
  return a.every((i) => s.has(i));
}

export function checkCollation(m: MultiBlockMasker, b: MaskBatch): void {
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

export function assertThrowsWith(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: Error) => {
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return true;
  });
}

/** FNV-1a over the collated indices: a fingerprint of a batch for the golden tests. */
export function fingerprint(b: MaskBatch): string {
  let h = 0x811c9dc5;
  for (const a of [b.contextIdx, b.targetIdx]) {
    for (const v of a) h = Math.imul(h ^ v, 0x01000193) >>> 0;
  }
  return h.toString(16);
}
