// The fused kernels split between threads (lib/engine/parallel_kernels.ts) on tfjs-wasm's memory made
// shared (lib/engine/shared_heap.ts): the same bits as on the main thread alone, at sizes that are
// split (over MIN_ELEMENTS, odd rows and widths for the SIMD tails), and the patch itself.
// Run with `deno test -A tests/engine/parallel_kernels_test.ts`.
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "../_assert.ts";
import { randn } from "./_fused.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { type FusedKernelName, registerFusedKernels, runFused } from "../../lib/engine/fused_kernels.ts";
import { gemmInPlace, readyWorkers, setGemmWorkers, threadsWanted } from "../../lib/engine/gemm_pool.ts";
import { MIN_ELEMENTS } from "../../lib/engine/parallel_kernels.ts";
import { shareMemory } from "../../lib/engine/shared_heap.ts";

Deno.test("shared heap: tfjs-wasm's memory section is declared shared, and only that changes", async () => {
  const url = new URL(import.meta.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm"));
  const bytes = await Deno.readFile(url);
  const out = shareMemory(bytes);
  assert(out instanceof Uint8Array, `expected patched bytes, got "${out}"`);
  assertEquals(out.length, bytes.length);
  const changed = [...out.keys()].filter((i) => out[i] !== bytes[i]);
  assertEquals(changed.length, 1, "one byte: the memory's flags");
  assertEquals([bytes[changed[0]], out[changed[0]]], [1, 3]);
  assert(WebAssembly.validate(out as Uint8Array<ArrayBuffer>), "the patched module validates");
  assertEquals(shareMemory(out), "its memory is shared already");
  assertEquals(shareMemory(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), "not a wasm module");
  // a module with a memory and no maximum: left alone (a shared memory needs one)
  const noMax = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 0, 1]);
  assert(WebAssembly.validate(noMax));
  assertEquals(shareMemory(noMax), "expected a memory with a maximum (flags 1), found flags 0");
});

/** Cases at sizes the kernels split: rows x width well over MIN_ELEMENTS, odd on purpose. */
function cases(): {
  name: FusedKernelName;
  inputs: Record<string, number[]>;
  attrs: Record<string, number>;
}[] {
  const R = 1031, F = 67, B = 61, T = 29, H = 3, hd = 13, D = H * hd;
  assert(R * F > MIN_ELEMENTS && B * T * D > MIN_ELEMENTS);
  return [
    { name: "IjLayerNorm", inputs: { x: [R, F], gamma: [F], beta: [F] }, attrs: { eps: 1e-6 } },
    { name: "IjBiasGelu", inputs: { u: [R, F], bias: [F] }, attrs: {} },
    { name: "IjBiasGeluGrad", inputs: { dy: [R, F], u: [R, F], bias: [F] }, attrs: {} },
    {
      name: "IjLayerNormGrad",
      inputs: { dy: [R, F], x: [R, F], stats: [R, 2], gamma: [F], dres: [R, F] },
      attrs: {},
    },
    { name: "IjColSum", inputs: { x: [R, F] }, attrs: {} },
    {
      name: "IjSplitHeads",
      inputs: { qkv: [B * T, 3 * D], bias: [3 * D] },
      attrs: { batch: B, tokens: T, heads: H, scale: 0.5 },
    },
    {
      name: "IjMergeHeads",
      inputs: { dq: [B * H, T, hd], dk: [B * H, T, hd], dv: [B * H, T, hd] },
      attrs: { heads: H, scale: 0.5 },
    },
    { name: "IjHeadsToRows", inputs: { x: [B * H, T, hd] }, attrs: { heads: H } },
    { name: "IjSoftmax", inputs: { s: [B * H, T, T], keyBias: [B, 1, T] }, attrs: { heads: H } },
    { name: "IjSoftmaxGrad", inputs: { p: [R, F], dp: [R, F] }, attrs: {} },
    { name: "IjResidual", inputs: { x: [R, F], y: [R, F], bias: [F] }, attrs: {} },
    { name: "IjBiasAdd", inputs: { x: [R, F], bias: [F] }, attrs: {} },
    {
      name: "IjAttention",
      inputs: { qkv: [B * T, 3 * D], keyBias: [B, 1, T] },
      attrs: { batch: B, tokens: T, heads: H, scale: 0.3 },
    },
    {
      name: "IjAttentionGrad",
      inputs: { qkv: [B * T, 3 * D], p: [B * H, T, T], dout: [B * T, D] },
      attrs: { batch: B, tokens: T, heads: H, scale: 0.3 },
    },
  ];
}

/** Every case's outputs, with the workers on (`split`) or off; split, every kernel must split. */
async function runAll(split: boolean): Promise<Float32Array[][]> {
  const out: Float32Array[][] = [];
  for (const [c, { name, inputs, attrs }] of cases().entries()) {
    const splitsBefore = setGemmWorkers(split);
    const ins: Record<string, tf.Tensor> = {};
    for (const [i, [k, shape]] of Object.entries(inputs).entries()) {
      const n = shape.reduce((a, b) => a * b, 1);
      // key padding: every fourth key masked; softmax gradients get probabilities
      const v = k === "keyBias"
        ? Float32Array.from({ length: n }, (_, j) => (j % 4 === 3 ? -1e9 : 0))
        : randn(n, 100 * c + i, k === "p" ? 0.1 : 2);
      ins[k] = tf.tensor(v, shape);
    }
    const r = runFused(name, ins, attrs);
    const outs = Array.isArray(r) ? r : [r];
    out.push(await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array)));
    tf.dispose([...Object.values(ins), ...outs]);
    const splits = setGemmWorkers(split) - splitsBefore;
    if (split) assert(splits >= 1, `${name} did not split between threads`);
    else assertEquals(splits, 0, `${name} split with the workers off`);
  }
  return out;
}

Deno.test("parallel fused kernels: the same bits split between threads and on one", async () => {
  await setBackend("wasm", { quiet: true, blas: false });
  registerFusedKernels();
  // deno-lint-ignore no-explicit-any
  const heap = (tf.backend() as any).wasm.HEAPF32.buffer;
  assert(
    heap instanceof SharedArrayBuffer,
    "tfjs-wasm's memory should be shared (lib/engine/shared_heap.ts)",
  );
  if (threadsWanted() < 2) {
    console.warn("parallel_kernels_test: one thread wanted here (IJEPA_THREADS or one core): nothing splits");
    return;
  }
  // start the workers and wait until they are ready
  tf.matMul(tf.ones([300, 300]), tf.ones([300, 300])).dispose();
  for (let i = 0; i < 200 && readyWorkers() === 0; i++) await new Promise((r) => setTimeout(r, 25));
  assert(readyWorkers() > 0, "workers did not start");
  assert(gemmInPlace(), "the workers should compute in tfjs-wasm's memory");
  const split = await runAll(true);
  const alone = await runAll(false);
  setGemmWorkers(true);
  for (const [c, { name }] of cases().entries()) {
    for (const [o, got] of split[c].entries()) {
      const want = alone[c][o];
      let diff = -1;
      for (let i = 0; i < want.length && diff < 0; i++) if (!Object.is(got[i], want[i])) diff = i;
      assert(
        diff < 0,
        `${name} output ${o}: element ${diff} differs: ${got[diff]} split, ${want[diff]} alone`,
      );
    }
  }
});
