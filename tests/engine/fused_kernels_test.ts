// The kernels of lib/engine/fused_kernels.ts: the wasm SIMD module and the TypeScript loops against
// each other and the cpu kernels (odd sizes included, for the vector tails), and the SIMD module's
// safety checks. Run with `deno test -A tests/engine/fused_kernels_test.ts`.
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "../_assert.ts";
import { erfRef, randn, relErr } from "./_fused.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { type FusedKernelName, registerFusedKernels, runFused } from "../../lib/engine/fused_kernels.ts";
import { setSimd, simdActive, simdFor } from "../../lib/engine/fused_simd.ts";
import {
  KERNELS_C_SHA256,
  KERNELS_SOURCES,
  KERNELS_WASM_BASE64,
} from "../../lib/engine/simd/kernels_wasm.ts";

/** Every kernel's inputs, at sizes whose rows are not multiples of 4 (SIMD tails). */
function kernelCases(): {
  name: FusedKernelName;
  inputs: Record<string, [number[], number]>;
  attrs: Record<string, number>;
}[] {
  const R = 13, D = 6, F = 11, B = 3, T = 5, H = 2, hd = 3;
  return [
    {
      name: "IjLayerNorm",
      inputs: { x: [[R, D], 1], gamma: [[D], 2], beta: [[D], 3] },
      attrs: { eps: 1e-6 },
    },
    { name: "IjLayerNorm", inputs: { x: [[R, 8], 1] }, attrs: { eps: 1e-5 } },
    {
      name: "IjLayerNormGrad",
      inputs: { dy: [[R, D], 4], x: [[R, D], 1], stats: [[R, 2], 0], gamma: [[D], 2], dres: [[R, D], 5] },
      attrs: {},
    },
    { name: "IjLayerNormGrad", inputs: { dy: [[R, 8], 4], x: [[R, 8], 1], stats: [[R, 2], 0] }, attrs: {} },
    { name: "IjBiasGelu", inputs: { u: [[R, F], 6], bias: [[F], 7] }, attrs: {} },
    { name: "IjBiasGelu", inputs: { u: [[R, 8], 6] }, attrs: {} },
    { name: "IjBiasGeluGrad", inputs: { dy: [[R, F], 8], u: [[R, F], 6], bias: [[F], 7] }, attrs: {} },
    { name: "IjBiasGeluGrad", inputs: { dy: [[R, 8], 8], u: [[R, 8], 6] }, attrs: {} },
    // y: the forward output gelu(u + bias) (seed -4), which gives Phi without another erf
    {
      name: "IjBiasGeluGrad",
      inputs: { dy: [[R, F], 8], u: [[R, F], 6], bias: [[F], 7], y: [[R, F], -4] },
      attrs: {},
    },
    {
      name: "IjSplitHeads",
      inputs: { qkv: [[B * T, 3 * H * hd], 9], bias: [[3 * H * hd], 10] },
      attrs: { batch: B, tokens: T, heads: H, scale: 0.5 },
    },
    {
      name: "IjMergeHeads",
      inputs: { dq: [[B * H, T, hd], 11], dk: [[B * H, T, hd], 12], dv: [[B * H, T, hd], 13] },
      attrs: { heads: H, scale: 0.5 },
    },
    { name: "IjHeadsToRows", inputs: { x: [[B * H, T, 4], 14] }, attrs: { heads: H } },
    { name: "IjRowsToHeads", inputs: { x: [[B * T, H * 4], 15] }, attrs: { batch: B, tokens: T, heads: H } },
    { name: "IjSoftmax", inputs: { s: [[B * H, T, T], 16], keyBias: [[B, 1, T], -1] }, attrs: { heads: H } },
    { name: "IjSoftmax", inputs: { s: [[B * H, T, 8], 16] }, attrs: { heads: H } },
    { name: "IjSoftmaxGrad", inputs: { p: [[R, F], -2], dp: [[R, F], 17] }, attrs: {} },
    { name: "IjResidual", inputs: { x: [[R, D], 18], y: [[R, D], 19], bias: [[D], 20] }, attrs: {} },
    { name: "IjBiasAdd", inputs: { x: [[R, D], 18], bias: [[D], 20] }, attrs: {} },
    { name: "IjColSum", inputs: { x: [[R, F], 21] }, attrs: {} },
    { name: "IjColSum", inputs: { x: [[R, 8], 21] }, attrs: {} },
    // rows over several of the SIMD kernels' 32-row chunks of partial sums (the last one short) and
    // 37 columns (a 32-wide block, a vector and a scalar tail)
    { name: "IjColSum", inputs: { x: [[70, 37], 21] }, attrs: {} },
    { name: "IjBiasGeluGrad", inputs: { dy: [[70, 37], 8], u: [[70, 37], 6], bias: [[37], 7] }, attrs: {} },
    {
      name: "IjLayerNormGrad",
      inputs: { dy: [[70, 36], 4], x: [[70, 36], 1], stats: [[70, 2], 0], gamma: [[36], 2] },
      attrs: {},
    },
    { // the scalar path (a width not a multiple of 4), over several chunks
      name: "IjLayerNormGrad",
      inputs: { dy: [[70, 37], 4], x: [[70, 37], 1], stats: [[70, 2], 0], dres: [[70, 37], 5] },
      attrs: {},
    },
    { name: "IjSmoothL1", inputs: { d: [[R, F], 22] }, attrs: {} },
    { name: "IjSmoothL1Grad", inputs: { d: [[R, F], 22], dy: [[R, F], 23] }, attrs: {} },
    // attention: hd 3 (all scalar tails), 5 tokens (one block of 4 keys and a tail), with and without
    // a key bias; hd 22 (one 16-wide chunk, one of 4, a scalar tail)
    ...[3, 22].flatMap((d): ReturnType<typeof kernelCases> => {
      const a = { batch: B, tokens: T, heads: H, scale: 1 / Math.sqrt(d) };
      return [
        {
          name: "IjAttention",
          inputs: { qkv: [[B * T, 3 * H * d], 24], keyBias: [[B, 1, T], -1] } as Record<
            string,
            [number[], number]
          >,
          attrs: a,
        },
        { name: "IjAttention", inputs: { qkv: [[B * T, 3 * H * d], 24] }, attrs: a },
        {
          name: "IjAttentionGrad",
          inputs: { qkv: [[B * T, 3 * H * d], 24], p: [[B * H, T, T], -5], dout: [[B * T, H * d], 25] },
          attrs: a,
        },
      ];
    }),
  ];
}

/**
 * Input values by seed; some are special: 0 = LayerNorm stats, -1 = key padding, -2 = probabilities,
 * -3 = positive, -4 = the GELU of seeds 6 and 7, -5 = attention weights (rows summing to 1).
 */
function inputValues(shape: number[], seed: number, stats?: Float32Array): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (seed === 0) return stats!;
  if (seed === -1) return Float32Array.from({ length: n }, (_, i) => (i % 4 === 3 ? -1e9 : 0));
  if (seed === -2) return randn(n, 40).map((v) => Math.exp(v) / 10);
  if (seed === -3) return randn(n, 41).map((v) => v * v);
  if (seed === -5) { // rows of attention weights: positive, summing to 1
    const e = randn(n, 42).map(Math.exp), T = shape[shape.length - 1];
    for (let r = 0; r < n; r += T) {
      const sum = e.subarray(r, r + T).reduce((a, b) => a + b, 0);
      for (let j = r; j < r + T; j++) e[j] /= sum;
    }
    return e;
  }
  if (seed === -4) { // gelu(u + bias) for u and bias of seeds 6 and 7, as IjBiasGelu gives it
    const u = inputValues(shape, 6), bias = inputValues([shape[1]], 7);
    return u.map((x, i) => {
      const v = x + bias[i % shape[1]];
      return 0.5 * v * (1 + erfRef(v / Math.SQRT2));
    });
  }
  return randn(n, seed, 2);
}

/** (mean, 1 / sqrt(variance + 1e-6)) of each row of `width` values. */
function rowStats(v: Float32Array, width: number): Float32Array {
  const out = new Float32Array((v.length / width) * 2);
  for (let r = 0; r < v.length / width; r++) {
    const row = v.subarray(r * width, (r + 1) * width);
    const mean = row.reduce((a, b) => a + b, 0) / width;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / width;
    out[2 * r] = mean;
    out[2 * r + 1] = 1 / Math.sqrt(variance + 1e-6);
  }
  return out;
}

async function runKernels(backend: "cpu" | "wasm", simd: boolean): Promise<Float32Array[][]> {
  await setBackend(backend, { quiet: true, blas: false });
  registerFusedKernels();
  setSimd(simd);
  try {
    if (backend === "wasm") assertEquals(simdActive(), simd, "SIMD module state");
    const out: Float32Array[][] = [];
    for (const c of kernelCases()) {
      const x = c.inputs.x ?? c.inputs.dy;
      // LayerNorm stats (mean, rstd) of the seed-1 rows, in float64 here so that every backend gets
      // the same inputs
      const stats = x ? rowStats(inputValues(x[0], 1), x[0][x[0].length - 1]) : undefined;
      const before = tf.memory().numTensors;
      const ins: Record<string, tf.Tensor> = {};
      for (const [k, [shape, seed]] of Object.entries(c.inputs)) {
        ins[k] = tf.tensor(inputValues(shape, seed, stats), shape);
      }
      const r = runFused(c.name, ins, c.attrs);
      const outs = Array.isArray(r) ? r : [r];
      out.push(outs.map((t) => t.dataSync().slice() as Float32Array));
      tf.dispose([...outs, ...Object.values(ins)]);
      assertEquals(tf.memory().numTensors, before, `${c.name} leaked tensors`);
    }
    return out;
  } finally {
    setSimd(true);
  }
}

Deno.test("fused kernels: wasm SIMD, wasm TypeScript and cpu agree, tails included", async () => {
  const cpu = await runKernels("cpu", false);
  const simd = await runKernels("wasm", true);
  const plain = await runKernels("wasm", false);
  const cases = kernelCases();
  cases.forEach((c, i) => {
    cpu[i].forEach((ref, j) => {
      const tol = 2e-6;
      const es = relErr(simd[i][j], ref), ep = relErr(plain[i][j], ref);
      assert(es < tol, `${c.name} output ${j}: SIMD differs from cpu by ${es}`);
      assert(ep < 1e-7, `${c.name} output ${j}: wasm TypeScript differs from cpu by ${ep}`);
    });
  });
  // the masked keys (every 4th entry of keyBias [B, 1, T]) get exactly zero probability
  const k = cases.findIndex((c) => c.name === "IjSoftmax");
  const T = 5, H = 2;
  for (const out of [cpu[k][0], simd[k][0], plain[k][0]]) {
    for (let i = 0; i < out.length; i++) {
      const j = i % T, b = Math.floor(i / (T * T * H));
      if ((b * T + j) % 4 === 3) assertEquals(out[i], 0, `masked key ${j} of example ${b} got ${out[i]}`);
    }
  }
});

Deno.test("SIMD module: built from the kernels.c in the tree, imports only memory, no data", async () => {
  const files = await Promise.all(
    KERNELS_SOURCES.map((f) => Deno.readFile(new URL(`../../lib/engine/simd/${f}`, import.meta.url))),
  );
  assert(KERNELS_SOURCES.includes("gemm.c"), `sources: ${KERNELS_SOURCES}`);
  const src = new Uint8Array(files.flatMap((b) => [...b]));
  const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", src)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  assertEquals(
    hash,
    KERNELS_C_SHA256,
    "lib/engine/simd/*.c changed: rebuild with `deno run -A lib/engine/simd/build.ts`",
  );
  const bytes = Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0));
  const mod = new WebAssembly.Module(bytes);
  assertEquals(WebAssembly.Module.imports(mod), [{ module: "env", name: "memory", kind: "memory" }]);
  assert(WebAssembly.Module.exports(mod).some((e) => e.name === "ij_bias_gelu"), "ij_bias_gelu not exported");
  // Section ids: 11 (data) and 12 (data count) would write into tfjs's memory at instantiation.
  const ids: number[] = [];
  for (let i = 8; i < bytes.length;) {
    ids.push(bytes[i++]);
    let size = 0, shift = 0, b = 0;
    do {
      b = bytes[i++];
      size |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    i += size;
  }
  assert(!ids.includes(11) && !ids.includes(12), `data section present: sections ${ids}`);
});

Deno.test("SIMD kernels write only their outputs", async () => {
  await setBackend("wasm", { quiet: true, blas: false });
  registerFusedKernels();
  const canaries = Array.from({ length: 4 }, (_, i) => tf.tensor1d(randn(257, 60 + i)));
  const before = canaries.map((c) => c.dataSync().slice());
  const u = tf.tensor2d(randn(33 * 11, 7), [33, 11]), b = tf.tensor1d(randn(11, 8));
  tf.tidy(() => {
    runFused("IjBiasGeluGrad", { dy: u, u, bias: b });
    runFused("IjLayerNormGrad", { dy: u, x: u, stats: tf.ones([33, 2]), gamma: b, dres: u });
    runFused("IjColSum", { x: u });
  });
  canaries.forEach((c, i) => assertEquals(c.dataSync(), before[i], `canary ${i} changed`));
  tf.dispose([...canaries, u, b]);
});

Deno.test("SIMD module: heap pointers past 2 GiB stay unsigned (emscripten's malloc returns them negative)", () => {
  // a stand-in for tfjs-wasm with a heap whose allocator hands out addresses above 2^31, as it does
  // once ViT-H/14's 2.5 GB of weights are loaded (the deep products' counter view failed there)
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
  const high = 0x9000_0000;
  const freed: number[] = [];
  const be = {
    wasm: {
      HEAPF32: new Float32Array(memory.buffer),
      asm: { memory },
      _malloc: () => high | 0, // negative, as an i32 result reads in JavaScript
      _free: (p: number) => void freed.push(p),
    },
    dataIdMap: { get: () => ({ memoryOffset: 0 }) },
    makeOutput: () => ({}) as tf.TensorInfo,
  };
  const k = simdFor(be);
  assert(k?.heap, "the SIMD module should load on a shared memory");
  assertEquals(k.heap.malloc(64), high);
  assertEquals(k.scratch(64), high);
  k.heap.free(high);
  assertEquals(freed.map((p) => p >>> 0), [high]);
});
