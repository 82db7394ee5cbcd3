// The wasm kernel replacements of lib/engine/wasm_fixes.ts that copy blocks of the heap (Slice,
// SplitV, Tile, GatherV2): the same values, bit for bit, as tfjs's cpu backend, over random shapes of
// rank 1-4, float32 and int32, whole and partial axes. Run with `deno test -A tests/engine/wasm_fixes_test.ts`.
import * as tf from "@tensorflow/tfjs";
import { assertEquals } from "../_assert.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { Rng } from "../../lib/engine/rng.ts";

interface Case {
  shape: number[];
  dtype: "float32" | "int32";
  begin: number[];
  size: number[];
  axis: number;
  splits: number[];
}

/** Random cases: each axis taken whole, from 0, or as an inner range (sizes of 0 included). */
function cases(): Case[] {
  const rng = new Rng(7);
  const out: Case[] = [];
  for (let c = 0; c < 120; c++) {
    const rank = 1 + (c % 4);
    const shape = Array.from({ length: rank }, () => 1 + Math.floor(rng.float() * 6));
    const begin: number[] = [], size: number[] = [];
    for (const d of shape) {
      const kind = Math.floor(rng.float() * 3);
      const b = kind === 0 ? 0 : Math.floor(rng.float() * d);
      const s = kind === 0 ? d : Math.floor(rng.float() * (d - b + 1));
      begin.push(b);
      size.push(s);
    }
    const axis = rank ? Math.floor(rng.float() * rank) : 0;
    const n = rank ? shape[axis] : 0;
    const cut = Math.floor(rng.float() * (n + 1));
    out.push({ shape, dtype: c % 2 ? "int32" : "float32", begin, size, axis, splits: [cut, n - cut] });
  }
  return out;
}

async function runAll(backend: "cpu" | "wasm"): Promise<(number[] | string)[]> {
  await setBackend(backend, { quiet: true, blas: false });
  const results: (number[] | string)[] = [];
  for (const c of cases()) {
    const n = c.shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor(Array.from({ length: n }, (_, i) => i * 3 - 7), c.shape, c.dtype);
    results.push(Array.from(await tf.slice(x, c.begin, c.size).data()));
    if (c.shape.length) {
      for (const part of tf.split(x, c.splits, c.axis)) results.push(Array.from(await part.data()));
      const reps = c.shape.map((_, i) => 1 + ((i + c.axis) % 2));
      results.push(Array.from(await tf.tile(x, reps).data()));
      const rows = tf.tensor1d([c.shape[0] - 1, 0, c.shape[0] - 1], "int32");
      results.push(Array.from(await tf.gather(x, rows).data()));
    }
    results.push(`${c.shape} / ${c.begin} / ${c.size}`);
  }
  tf.disposeVariables();
  return results;
}

Deno.test("wasm Slice, SplitV, Tile and GatherV2 give the cpu backend's values", async () => {
  const cpu = await runAll("cpu");
  const wasm = await runAll("wasm");
  assertEquals(wasm.length, cpu.length);
  let label = "";
  for (let i = cpu.length - 1; i >= 0; i--) {
    if (typeof cpu[i] === "string") label = cpu[i] as string;
    else assertEquals(wasm[i], cpu[i], `case ${label}`);
  }
});

Deno.test("wasm Slice and SplitV: the gradient of a concat and a slice, as on cpu", async () => {
  const grads = async (backend: "cpu" | "wasm") => {
    await setBackend(backend, { quiet: true, blas: false });
    const a = tf.tensor3d(Array.from({ length: 24 }, (_, i) => i / 7), [2, 3, 4]);
    const b = tf.tensor3d(Array.from({ length: 16 }, (_, i) => -i / 5), [2, 2, 4]);
    const f = (p: tf.Tensor, q: tf.Tensor) =>
      tf.concat([tf.tile(p, [2, 1, 1]), tf.tile(q, [2, 1, 1])], 1).slice([1, 2, 0], [2, 3, 4]).square().sum();
    const [da, db] = tf.grads(f)([a, b]);
    return [Array.from(await da.data()), Array.from(await db.data())];
  };
  assertEquals(await grads("wasm"), await grads("cpu"));
});
