// Conformance tests for lib/engine/blas_kernels.ts and blas_gemm.ts: BLAS matMul kernels against
// tfjs's stock `cpu` kernel and a float64 reference, on wasm and cpu. The switch and the library
// search are tests/engine/blas_library_test.ts. Run with `deno test -A tests/engine/blas_test.ts`.
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import {
  assertBlas,
  assertStock,
  BACKENDS,
  type Be,
  type Case,
  forward,
  inputs,
  maxDiff,
  NO_BLAS,
  randn,
  refMatMul,
  stored,
} from "./_blas.ts";
import { disableBlas, enableBlas } from "../../lib/engine/blas.ts";
import { Rng } from "../../lib/engine/rng.ts";

const FLAGS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

function withFlags(a: number[], b: number[]): Case[] {
  return FLAGS.map(([ta, tb]) => ({ a: stored(a, ta), b: stored(b, tb), ta, tb }));
}

// Logical shapes (before transposition): odd sizes, size-1 dims, batches, broadcasting.
const CASES: Case[] = [
  ...withFlags([7, 13], [13, 5]),
  ...withFlags([4, 7, 13], [4, 13, 5]),
  ...withFlags([1, 7, 13], [4, 13, 5]), // batch 1 on the left
  ...withFlags([4, 7, 13], [1, 13, 5]), // batch 1 on the right
  ...withFlags([4, 7, 13], [13, 5]), // rank 3 x rank 2
  ...withFlags([7, 13], [3, 13, 5]), // rank 2 x rank 3
  ...withFlags([2, 3, 7, 13], [2, 3, 13, 5]),
  ...withFlags([2, 3, 7, 13], [3, 13, 5]),
  ...withFlags([1, 1], [1, 1]),
  ...withFlags([1, 13], [13, 1]),
  ...withFlags([5, 1], [1, 6]), // K = 1
  ...withFlags([3, 1, 4], [3, 4, 1]),
  ...withFlags([64, 49, 64], [64, 64, 49]),
];

/** Gradients of sum(matMul(a, b) * w) with respect to a and b. */
function gradients(c: Case, d: { a: Float32Array; b: Float32Array }, w: Float32Array) {
  return tf.tidy(() => {
    const a = tf.tensor(d.a, c.a), b = tf.tensor(d.b, c.b);
    const outShape = tf.matMul(a, b, c.ta, c.tb).shape;
    const wt = tf.tensor(w, outShape);
    const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(tf.matMul(x, y, c.ta, c.tb), wt))
    )([a, b]);
    return [da.dataSync().slice(), db.dataSync().slice()];
  });
}

/** Run `fn` on stock cpu, then with BLAS on `be`; returns both results. */
async function stockThenBlas<T>(be: Be, fn: () => T): Promise<{ stock: T; blas: T }> {
  disableBlas();
  await tf.setBackend("cpu");
  assertStock("cpu");
  const stock = fn();
  const s = enableBlas({ backends: [be] });
  assert.ok(s.enabled, s.reason);
  assert.deepEqual(s.backends, [be]);
  await tf.setBackend(be);
  assertBlas(be);
  try {
    return { stock, blas: fn() };
  } finally {
    disableBlas();
  }
}

const name = (c: Case) => `a [${c.a}]${c.ta ? "ᵀ" : ""} x b [${c.b}]${c.tb ? "ᵀ" : ""}`;

// Must come first: the wasm backend starts here, with the BLAS kernel already registered.
Deno.test({
  name: "blas: enabled before the wasm backend starts; stock kernel works after disable",
  ignore: NO_BLAS,
  async fn() {
    const s = enableBlas({ backends: ["wasm"] });
    assert.ok(s.enabled && s.reason.includes("via FFI"), s.reason);
    await tf.setBackend("wasm");
    const c: Case = { a: [7, 13], b: [13, 5], ta: false, tb: false };
    const d = inputs(c, 1);
    const ref = refMatMul(d.a, c.a, d.b, c.b, false, false);
    assert.ok(maxDiff(forward(c, d).values, ref.values) < 1e-4);
    disableBlas();
    assertStock("wasm");
    // The stock wasm kernel binds its C function in setupFunc; it must have been re-run.
    assert.ok(maxDiff(forward(c, d).values, ref.values) < 1e-4);
    const y = tf.tidy(() =>
      // the stock fused kernel too
      tf.fused.matMul({ a: tf.tensor(d.a, c.a), b: tf.tensor(d.b, c.b), activation: "relu" })
        .dataSync()
    );
    assert.ok(maxDiff(y, ref.values.map((v) => Math.max(v, 0))) < 1e-4);
  },
});

Deno.test({
  name: "blas: wasm memory growth inside and between calls",
  ignore: NO_BLAS,
  async fn() {
    await tf.setBackend("wasm");
    assert.ok(enableBlas({ backends: ["wasm"] }).enabled);
    try {
      const be = tf.backend() as unknown as { wasm: { HEAPF32: Float32Array } };
      const rng = new Rng(2);
      const c: Case = { a: [9, 11], b: [11, 6], ta: false, tb: true };
      c.b = stored(c.b, true);
      const d = inputs(c, 3);
      const first = forward(c, d).values;
      const a = tf.tensor(d.a, c.a), b = tf.tensor(d.b, c.b); // live across the growth

      // 1) The output alone is larger than the whole heap: makeOutput must grow it in the kernel.
      const before = be.wasm.HEAPF32.buffer.byteLength;
      const n = Math.ceil(Math.sqrt(before / 4)) + 16;
      const x = randn(rng, [n, 1]), z = randn(rng, [1, n]);
      const outer = tf.tidy(() => tf.matMul(tf.tensor(x, [n, 1]), tf.tensor(z, [1, n]))); // [n, n]
      assert.ok(be.wasm.HEAPF32.buffer.byteLength > before, "heap should have grown");
      const o = outer.dataSync();
      for (const i of [0, 1, n >> 1, n - 1]) {
        for (const j of [0, 7, n - 2, n - 1]) {
          assert.ok(Math.abs(o[i * n + j] - x[i] * z[j]) < 1e-5, `outer[${i}, ${j}]`);
        }
      }
      outer.dispose();

      // 2) A big allocation between two calls on tensors made before it.
      const before2 = be.wasm.HEAPF32.buffer.byteLength;
      const big = tf.zeros([before2 / 4 + (1 << 20)]);
      assert.ok(be.wasm.HEAPF32.buffer.byteLength > before2, "heap should have grown again");
      const again = tf.tidy(() => tf.matMul(a, b, c.ta, c.tb).dataSync().slice());
      assert.deepEqual(again, first);
      tf.dispose([big, a, b]);
    } finally {
      disableBlas();
    }
  },
});

for (const be of BACKENDS) {
  Deno.test({
    name: `blas: forward matMul on ${be} matches stock cpu and float64 (${CASES.length} cases)`,
    ignore: NO_BLAS,
    async fn() {
      for (const [i, c] of CASES.entries()) {
        const d = inputs(c, 100 + i);
        const { stock, blas } = await stockThenBlas(be, () => forward(c, d));
        const ref = refMatMul(d.a, c.a, d.b, c.b, c.ta, c.tb);
        assert.deepEqual(blas.shape, stock.shape, name(c));
        assert.deepEqual(blas.shape, ref.shape, name(c));
        const k = c.ta ? c.a[c.a.length - 2] : c.a[c.a.length - 1];
        const tol = 1e-5 * (1 + k);
        assert.ok(maxDiff(blas.values, stock.values) < tol, `${name(c)} vs stock cpu`);
        assert.ok(maxDiff(blas.values, ref.values) < tol, `${name(c)} vs float64`);
      }
    },
  });

  Deno.test({
    name: `blas: gradients through matMul on ${be} match stock cpu`,
    ignore: NO_BLAS,
    async fn() {
      const cases = [
        ...withFlags([7, 13], [13, 5]),
        ...withFlags([4, 7, 13], [4, 13, 5]),
        ...withFlags([2, 3, 5, 4], [2, 3, 4, 6]),
        ...withFlags([1, 9], [9, 1]),
      ];
      for (const [i, c] of cases.entries()) {
        const d = inputs(c, 200 + i);
        const rng = new Rng(300 + i);
        const outShape = refMatMul(d.a, c.a, d.b, c.b, c.ta, c.tb).shape;
        const w = randn(rng, outShape);
        const { stock, blas } = await stockThenBlas(be, () => gradients(c, d, w));
        assert.ok(maxDiff(blas[0], stock[0]) < 1e-4, `d/da ${name(c)}`);
        assert.ok(maxDiff(blas[1], stock[1]) < 1e-4, `d/db ${name(c)}`);
        // and the gradient is not trivially zero
        assert.ok(maxDiff(blas[0], new Float32Array(blas[0].length)) > 0.1);
      }
    },
  });

  Deno.test({
    name: `blas: fused matMul (bias, activations) and its gradient on ${be} match stock cpu`,
    ignore: NO_BLAS,
    async fn() {
      const rng = new Rng(400);
      const a = randn(rng, [3, 7, 13]), b = randn(rng, [3, 13, 5]);
      const bias = randn(rng, [5]), biasMN = randn(rng, [7, 5]), alpha = randn(rng, [5]);
      type Act = "linear" | "relu" | "relu6" | "elu" | "sigmoid" | "leakyrelu" | "prelu";
      const cases: { act: Act; bias?: Float32Array; biasShape?: number[]; ta?: boolean }[] = [
        { act: "linear" },
        { act: "linear", bias, biasShape: [5] },
        { act: "relu", bias, biasShape: [5] },
        { act: "relu6", bias: biasMN, biasShape: [7, 5] },
        { act: "elu", bias, biasShape: [5] },
        { act: "sigmoid" },
        { act: "leakyrelu", bias, biasShape: [5] },
        { act: "prelu", bias, biasShape: [5] },
        { act: "relu", bias, biasShape: [5], ta: true },
      ];
      for (const f of cases) {
        const aShape = f.ta ? [3, 13, 7] : [3, 7, 13];
        const run = () =>
          tf.tidy(() =>
            tf.fused.matMul({
              a: tf.tensor(a, aShape),
              b: tf.tensor(b, [3, 13, 5]),
              transposeA: f.ta ?? false,
              bias: f.bias ? tf.tensor(f.bias, f.biasShape) : undefined,
              activation: f.act,
              preluActivationWeights: f.act === "prelu" ? tf.tensor(alpha, [5]) : undefined,
              leakyreluAlpha: 0.1,
            }).dataSync().slice()
          );
        const { stock, blas } = await stockThenBlas(be, run);
        assert.ok(maxDiff(blas, stock) < 2e-4, `fused ${f.act}${f.bias ? " + bias" : ""}`);
      }
      // Under a gradient tape a linear fused product still runs _FusedMatMul (with bias).
      const grad = () =>
        tf.tidy(() => {
          const [da, db, dbias] = tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
            tf.sum(tf.square(tf.fused.matMul({ a: x, b: y, bias: z })))
          )([tf.tensor(a, [3, 7, 13]), tf.tensor(b, [3, 13, 5]), tf.tensor(bias, [5])]);
          return [da, db, dbias].map((t) => t.dataSync().slice());
        });
      const { stock, blas } = await stockThenBlas(be, grad);
      for (let i = 0; i < 3; i++) assert.ok(maxDiff(blas[i], stock[i]) < 1e-3, `fused grad ${i}`);
    },
  });
}

Deno.test({
  name: "blas: general batch broadcast ([2, 1] with [3]) is right, where tfjs's stock kernels are wrong",
  ignore: NO_BLAS,
  async fn() {
    const c: Case = { a: [2, 1, 4, 3], b: [3, 3, 5], ta: false, tb: false };
    const d = inputs(c, 500);
    const ref = refMatMul(d.a, c.a, d.b, c.b, false, false);
    for (const be of BACKENDS) {
      const { stock, blas } = await stockThenBlas(be, () => forward(c, d));
      assert.deepEqual(blas.shape, [2, 3, 4, 5]);
      assert.ok(maxDiff(blas.values, ref.values) < 1e-4, `${be} vs float64`);
      // Stock cpu computes max(2, 3) = 3 batches, not 6: too few values for its own shape.
      assert.equal(stock.values.length, 60, "stock cpu's known bug; if fixed, compare values");
    }
  },
});

Deno.test({
  name: "blas: empty products and K = 0 give zeros; int32 falls back to the stock cpu kernel",
  ignore: NO_BLAS,
  async fn() {
    for (const be of BACKENDS) {
      await tf.setBackend(be);
      assert.ok(enableBlas({ backends: [be] }).enabled);
      try {
        tf.tidy(() => {
          // Fill the heap with garbage first, so an unwritten output would show it.
          tf.fill([64, 64], 7).dataSync();
          const z = tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4])); // [3, 4]
          assert.deepEqual(z.shape, [3, 4]);
          assert.deepEqual(Array.from(z.dataSync()), new Array(12).fill(0));
          const e = tf.matMul(tf.zeros([0, 5]), tf.zeros([5, 4])); // [0, 4]
          assert.deepEqual(e.shape, [0, 4]);
          const eb = tf.matMul(tf.zeros([0, 2, 5]), tf.zeros([0, 5, 4])); // [0, 2, 4]
          assert.deepEqual(eb.shape, [0, 2, 4]);
          assert.throws(
            () => tf.matMul(tf.zeros([2, 3]), tf.zeros([4, 5])),
            /inner dimensions must match.*a \[2,3\].*3.*b \[4,5\].*4/,
          );
        });
        if (be === "cpu") {
          const y = tf.tidy(() =>
            tf.matMul(
              tf.tensor2d([[1, 2]], [1, 2], "int32"),
              tf.tensor2d([[3], [4]], [2, 1], "int32"),
            )
              .dataSync()
          );
          assert.ok(y instanceof Int32Array);
          assert.equal(y[0], 11);
        }
      } finally {
        disableBlas();
      }
    }
  },
});

Deno.test({
  name: "blas: no tensor or heap leaks across training-like steps on wasm",
  ignore: NO_BLAS,
  async fn() {
    await tf.setBackend("wasm");
    assert.ok(enableBlas({ backends: ["wasm"] }).enabled);
    try {
      const rng = new Rng(700);
      const x = tf.tensor(randn(rng, [8, 5, 6]), [8, 5, 6]);
      const w = tf.variable(tf.tensor(randn(rng, [6, 4]), [6, 4]));
      const bias = tf.variable(tf.tensor(randn(rng, [4]), [4]));
      const step = () =>
        tf.tidy(() => {
          const { value, grads } = tf.variableGrads(() => {
            const h = tf.fused.matMul({ a: tf.reshape(x, [40, 6]), b: w, bias }); // [40, 4]
            const att = tf.matMul(tf.reshape(h, [8, 5, 4]), tf.reshape(h, [8, 5, 4]), false, true);
            const y = tf.fused.matMul({ a: h, b: w, transposeB: true, activation: "relu" }); // [40, 6]
            return tf.add(tf.mean(tf.square(att)), tf.mean(y)) as tf.Scalar;
          });
          value.dataSync();
          for (const g of Object.values(grads)) g.dataSync();
        });
      step();
      const tensors = tf.memory().numTensors;
      const ids = tf.backend().numDataIds();
      for (let i = 0; i < 5; i++) {
        step();
        assert.equal(tf.memory().numTensors, tensors, `tensors after step ${i}`);
        assert.equal(tf.backend().numDataIds(), ids, `backend buffers after step ${i}`);
      }
      tf.dispose([x, w, bias]);
    } finally {
      disableBlas();
    }
  },
});

Deno.test({
  name: "blas: OpenBLAS's thread timeout is set only while the library loads; a user's value is kept",
  ignore: NO_BLAS,
  async fn() {
    const code = `import { setBackend } from "${new URL("../../lib/engine/backend.ts", import.meta.url)}";
const s = await setBackend("wasm", { quiet: true });
console.log(JSON.stringify({ on: s.blas?.enabled, timeout: Deno.env.get("OPENBLAS_THREAD_TIMEOUT") ?? null }));`;
    const run = async (env: Record<string, string>) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        cwd: new URL("../..", import.meta.url).pathname,
        env,
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      return JSON.parse(text.split("\n").pop()!);
    };
    const path = { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "" };
    // removed after the load, so that processes started later (the bench's PyTorch) do not inherit it
    assert.deepEqual(await run(path), { on: true, timeout: null });
    assert.deepEqual(await run({ ...path, OPENBLAS_THREAD_TIMEOUT: "7" }), { on: true, timeout: "7" });
  },
});
