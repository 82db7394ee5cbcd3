// Tests of lib/engine/blas.ts and blas_library.ts: turning BLAS on and off (the exact stock kernels
// come back), IJEPA_BLAS and the library option, threads, no FFI permission, each OpenBLAS build
// here, the search order. Run with `deno test -A tests/engine/blas_library_test.ts`.
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import {
  assertBlas,
  assertStock,
  BACKENDS,
  type Case,
  forward,
  inputs,
  maxDiff,
  NO_BLAS,
  PROBE,
  refMatMul,
} from "./_blas.ts";
import { blasStatus, disableBlas, enableBlas, setBlasThreads } from "../../lib/engine/blas.ts";

/** Run `script` in a child Deno from the repo root (stdin), with `perms`: a crash there cannot kill the runner. */
async function runScript(
  script: string,
  perms: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...perms, "-"],
    cwd: new URL("../..", import.meta.url),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(script));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "blas: disableBlas restores the exact stock kernels and results stay right",
  ignore: NO_BLAS,
  async fn() {
    const c: Case = { a: [4, 7, 13], b: [4, 5, 13], ta: false, tb: true };
    const d = inputs(c, 600);
    const ref = refMatMul(d.a, c.a, d.b, c.b, c.ta, c.tb);
    for (const be of BACKENDS) {
      await tf.setBackend(be);
      const s = enableBlas(); // both backends
      assert.ok(s.enabled);
      assert.deepEqual(s.backends, ["wasm", "cpu"]);
      assertBlas("wasm");
      assertBlas("cpu");
      assert.ok(maxDiff(forward(c, d).values, ref.values) < 1e-4);
      assert.ok(enableBlas().enabled, "enabling twice is allowed"); // undoes, then redoes
      disableBlas();
      assertStock("wasm");
      assertStock("cpu");
      assert.equal(blasStatus().enabled, false);
      assert.equal(blasStatus().reason, "off: disableBlas() called");
      assert.ok(maxDiff(forward(c, d).values, ref.values) < 1e-4, `${be} stock after disable`);
      disableBlas(); // twice is a no-op
      assertStock(be);
    }
  },
});

Deno.test({
  name: "blas: IJEPA_BLAS=off, IJEPA_BLAS=<path>, bad paths and bad options",
  ignore: NO_BLAS,
  fn() {
    const saved = Deno.env.get("IJEPA_BLAS");
    try {
      Deno.env.set("IJEPA_BLAS", "off");
      let s = enableBlas();
      assert.deepEqual(s, { enabled: false, reason: "off: IJEPA_BLAS=off", backends: [] });
      assertStock("wasm");
      assertStock("cpu");
      // An explicit option wins over the environment.
      s = enableBlas({ library: PROBE.library, backends: ["cpu"] });
      assert.ok(s.enabled && s.library === PROBE.library, s.reason);
      disableBlas();

      Deno.env.set("IJEPA_BLAS", PROBE.library!);
      s = enableBlas({ backends: ["cpu"] });
      assert.ok(s.enabled, s.reason);
      assert.equal(s.library, PROBE.library);
      assert.ok(s.reason.includes(`(${PROBE.library})`), s.reason);
      disableBlas();

      Deno.env.set("IJEPA_BLAS", "/no/such/libopenblas.so");
      s = enableBlas();
      assert.equal(s.enabled, false);
      assert.match(
        s.reason,
        /^off: cannot load BLAS library \/no\/such\/libopenblas\.so \(from IJEPA_BLAS\): .+/,
      );
      assert.ok(!s.reason.includes("\n"));
      assertStock("wasm");
      assertStock("cpu");
      assert.deepEqual(blasStatus(), s);
    } finally {
      if (saved === undefined) Deno.env.delete("IJEPA_BLAS");
      else Deno.env.set("IJEPA_BLAS", saved);
    }
    // A library without cblas_sgemm.
    const s = enableBlas({ library: "libc.so.6" });
    assert.equal(s.enabled, false);
    assert.match(s.reason, /^off: cannot load BLAS library libc\.so\.6 .*cblas_sgemm/);
    assertStock("cpu");
    assert.throws(() => enableBlas({ libary: "x" } as never), /unknown option "libary"/);
    assert.throws(
      () => enableBlas({ backends: ["webgpu" as never] }),
      /"wasm" or "cpu", got "webgpu"/,
    );
    assert.throws(() => setBlasThreads(0), /integer >= 1, got 0/);
  },
});

Deno.test({
  name: "blas: setBlasThreads changes the OpenBLAS thread count",
  ignore: NO_BLAS || PROBE.threads === undefined,
  fn() {
    try {
      assert.ok(enableBlas({ backends: ["cpu"] }).enabled);
      assert.ok(setBlasThreads(1));
      assert.equal(blasStatus().threads, 1);
      assert.ok(setBlasThreads(PROBE.threads!));
      assert.equal(blasStatus().threads, PROBE.threads);
    } finally {
      disableBlas();
    }
    assert.equal(setBlasThreads(1), false, "no library loaded");
  },
});

Deno.test({
  name: "blas: without --allow-ffi it stays off and says why",
  async fn() {
    const script = `
      import * as tf from "@tensorflow/tfjs";
      import { enableBlas } from "./lib/engine/blas.ts";
      const before = tf.getKernel("BatchMatMul", "cpu");
      const s = enableBlas();
      console.log(JSON.stringify({ ...s, same: tf.getKernel("BatchMatMul", "cpu") === before }));
    `;
    const out = await runScript(script, ["--allow-read", "--allow-env"]);
    assert.equal(out.code, 0, out.stderr);
    const r = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
    assert.deepEqual(r, {
      enabled: false,
      reason: "off: FFI not permitted (run deno with --allow-ffi)",
      backends: [],
      same: true,
    });
  },
});
// Every OpenBLAS build this machine has (Debian installs them side by side; update-alternatives
// picks one as libopenblas.so.0). Machines without any skip these tests and say so.
const TRIPLET = `${Deno.build.arch}-linux-gnu`;
const BUILDS = (["pthread", "openmp", "serial"] as const)
  .map((build) => ({ build, path: `/usr/lib/${TRIPLET}/openblas-${build}/libopenblas.so.0` }))
  .filter(({ path }) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
if (BUILDS.length === 0) {
  console.warn("blas_test: no Debian OpenBLAS build under /usr/lib; build tests skipped");
}

Deno.test({
  name: "blas: each OpenBLAS build here computes right and survives close and reopen (OpenMP crashed)",
  ignore: BUILDS.length === 0,
  async fn() {
    // In a child process: unloading the OpenMP build under libgomp's parked threads killed the
    // whole process with SIGSEGV, which would take the test runner down with it.
    const label = { pthread: "pthreads", openmp: "OpenMP", serial: "serial" };
    for (const { build, path } of BUILDS) {
      const script = `
        import * as tf from "@tensorflow/tfjs";
        import "@tensorflow/tfjs-backend-wasm";
        import { disableBlas, enableBlas } from "./lib/engine/blas.ts";
        await tf.setBackend("wasm");
        // Big enough that OpenBLAS wakes its worker threads (tiny products run on the caller's).
        const a = tf.fill([256, 256], 0.5), b = tf.fill([256, 256], 2);
        const out = [];
        for (let round = 0; round < 3; round++) {
          const s = enableBlas({ library: ${JSON.stringify(path)}, backends: ["wasm"] });
          if (!s.enabled) throw new Error(s.reason);
          const y = await tf.matMul(a, b).data();
          out.push({ reason: s.reason, y: [y[0], y[y.length - 1], y.every((v) => v === 256)] });
          disableBlas();
          await new Promise((r) => setTimeout(r, 20)); // let the library's threads park
        }
        console.log(JSON.stringify(out));
      `;
      const r = await runScript(script, ["--allow-read", "--allow-env", "--allow-ffi"]);
      assert.equal(r.code, 0, `${build} build (${path}): exit ${r.code}\n${r.stderr}`);
      const rounds = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
      assert.equal(rounds.length, 3);
      for (const { reason, y } of rounds) {
        assert.deepEqual(y, [256, 256, true], `${build}: ${reason}`);
        assert.ok(reason.includes(`, ${label[build]})`), `${build}: ${reason}`);
        assert.ok(reason.includes(path), reason);
      }
    }
  },
});

Deno.test({
  name: "blas: the search prefers the pthreads build when it is installed",
  ignore: !BUILDS.some((b) => b.build === "pthread"),
  fn() {
    const saved = Deno.env.get("IJEPA_BLAS");
    try {
      Deno.env.delete("IJEPA_BLAS");
      const s = enableBlas({ backends: ["cpu"] });
      assert.ok(s.enabled, s.reason);
      assert.equal(s.library, BUILDS.find((b) => b.build === "pthread")!.path);
      assert.match(s.reason, /pthreads\)/);
    } finally {
      disableBlas();
      if (saved !== undefined) Deno.env.set("IJEPA_BLAS", saved);
    }
  },
});
