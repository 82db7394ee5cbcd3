/**
 * Rebuild lib/engine/simd/kernels_wasm.ts from lib/engine/simd/kernels.c and gemm.c (a development tool; the toolkit
 * itself only loads the embedded bytes).
 *
 *     deno run -A lib/engine/simd/build.ts            # needs clang and wasm-ld (Debian: clang-14 lld-14)
 *
 * Each module is built twice: plain 128-bit SIMD, and with relaxed SIMD's fused multiply-add (MADD:
 * gemm.c's micro-kernel, attention's dot products, the erf and exp polynomials; `-mrelaxed-simd
 * -DIJ_FMA`), which lib/engine/fused_simd.ts prefers where the engine validates it (V8 since 11.4).
 *
 * The module shares tfjs-wasm's memory, so the build refuses a module that could write anywhere
 * it was not given: it must import nothing but `env.memory`, have no data section, and no function
 * may use the stack pointer (checked in clang's assembly output).
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
/** The C sources, compiled into one module; the embedded hash covers them in this order. */
const SOURCES = ["kernels.c", "gemm.c"];
const sources = SOURCES.map((f) => join(here, f));
const target = join(here, "kernels_wasm.ts");

function find(names: string[]): string {
  for (const n of names) {
    try {
      const r = new Deno.Command("which", { args: [n], stdout: "piped", stderr: "null" }).outputSync();
      if (r.success) return new TextDecoder().decode(r.stdout).trim();
    } catch {
      // which is missing: try the next name
    }
  }
  throw new Error(`build: none of ${names.join(", ")} found (install clang and lld)`);
}

function run(cmd: string, args: string[]): string {
  const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const err = new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`build: ${cmd} ${args.join(" ")} failed:\n${err}`);
  if (err.trim()) console.error(err.trim());
  return new TextDecoder().decode(r.stdout);
}

/** Section ids of a wasm binary, with the import section's entries. */
function sections(bytes: Uint8Array): { ids: number[]; imports: string[] } {
  let i = 8;
  const leb = () => {
    let r = 0, s = 0, x = 0;
    do {
      x = bytes[i++];
      r |= (x & 0x7f) << s;
      s += 7;
    } while (x & 0x80);
    return r >>> 0;
  };
  const name = () => {
    const n = leb();
    const s = new TextDecoder().decode(bytes.subarray(i, i + n));
    i += n;
    return s;
  };
  const ids: number[] = [];
  const imports: string[] = [];
  while (i < bytes.length) {
    const id = bytes[i++];
    const size = leb();
    const end = i + size;
    ids.push(id);
    if (id === 2) {
      const count = leb();
      for (let k = 0; k < count; k++) {
        const mod = name(), field = name();
        const kind = bytes[i++];
        imports.push(`${mod}.${field}:${kind}`);
        if (kind === 2) { // memory limits: flags, min, (max)
          const flags = leb();
          leb();
          if (flags & 1) leb();
        } else break; // anything but memory is refused below anyway
      }
    }
    i = end;
  }
  return { ids, imports };
}

const clang = find(["clang", "clang-16", "clang-15", "clang-14"]);
const wasmLd = find(["wasm-ld", "wasm-ld-16", "wasm-ld-15", "wasm-ld-14"]);
const flags = [
  "--target=wasm32",
  "-O3",
  "-msimd128",
  "-nostdlib",
  "-ffreestanding",
  "-fvisibility=default",
  "-Wall",
  "-Werror",
];

/** The relaxed-SIMD build's extra flags. */
const FMA = ["-mrelaxed-simd", "-DIJ_FMA"];

for (const source of sources) {
  for (const extra of [[], FMA]) {
    const asm = run(clang, [...flags, ...extra, "-S", "-o", "-", source]);
    if (/__stack_pointer/.test(asm)) {
      throw new Error(`build: a function of ${source} uses the stack; it would write into tfjs's memory`);
    }
  }
}

/** Link `files` into one module importing nothing but `env.memory`, without data: checked. */
async function link(files: string[], extra: string[]): Promise<Uint8Array> {
  const out = await Deno.makeTempFile({ suffix: ".wasm" });
  run(clang, [
    ...flags,
    ...extra,
    `-fuse-ld=${wasmLd}`,
    "-Wl,--no-entry",
    "-Wl,--export-dynamic",
    "-Wl,--import-memory",
    "-Wl,--strip-all",
    "-o",
    out,
    ...files,
  ]);
  const bytes = await Deno.readFile(out);
  await Deno.remove(out);
  const { ids, imports } = sections(bytes);
  if (ids.includes(11) || ids.includes(12)) throw new Error("build: the module has a data section");
  if (imports.length !== 1 || imports[0] !== `env.memory:2`) {
    throw new Error(`build: the module must import only env.memory, got ${imports.join(", ")}`);
  }
  return bytes;
}

/** base64 of `bytes` as source lines of 100 characters. */
function base64Lines(bytes: Uint8Array): string {
  let b64 = "";
  for (let k = 0; k < bytes.length; k += 0x8000) b64 += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
  b64 = btoa(b64);
  const lines: string[] = [];
  for (let k = 0; k < b64.length; k += 100) lines.push(`  "${b64.slice(k, k + 100)}"`);
  return lines.join(",\n");
}

// The same module importing a shared memory (declared shared, max 4 GiB as tfjs-wasm's own), for
// worker threads and for tfjs-wasm's memory made shared (lib/engine/shared_heap.ts).
const SHARED = ["-matomics", "-mbulk-memory", "-Wl,--shared-memory", "-Wl,--max-memory=4294967296"];
const bytes = await link(sources, []);
const shared = await link(sources, SHARED);
const bytesFma = await link(sources, FMA);
const sharedFma = await link(sources, [...SHARED, ...FMA]);

const src = new Uint8Array(
  (await Promise.all(sources.map((f) => Deno.readFile(f)))).flatMap((b) => [...b]),
);
const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", src)))
  .map((b) => b.toString(16).padStart(2, "0")).join("");
const version = run(clang, ["--version"]).split("\n")[0];
await Deno.writeTextFile(
  target,
  `/**
 * Generated by lib/engine/simd/build.ts from lib/engine/simd/{${
    SOURCES.join(",")
  }} (${version}); do not edit.
 * tests/engine/fused_kernels_test.ts checks that {@link KERNELS_C_SHA256} matches the sources, so they cannot drift.
 *
 * @module
 */

/** The C files (in lib/engine/simd/) these bytes were built from, in the order hashed. */
export const KERNELS_SOURCES = ${JSON.stringify(SOURCES)};
/** SHA-256 of those files' bytes, concatenated. */
export const KERNELS_C_SHA256 = "${hash}";

/** The WebAssembly module (${bytes.length} bytes), base64. */
export const KERNELS_WASM_BASE64 = [
${base64Lines(bytes)},
].join("");

/** The same module importing a shared memory (max 4 GiB), for worker threads and a shared tfjs heap (${shared.length} bytes), base64. */
export const KERNELS_SHARED_WASM_BASE64 = [
${base64Lines(shared)},
].join("");

/** {@link KERNELS_WASM_BASE64} with relaxed SIMD's fused multiply-add in gemm.c (${bytesFma.length} bytes), base64. */
export const KERNELS_FMA_WASM_BASE64 = [
${base64Lines(bytesFma)},
].join("");

/** {@link KERNELS_SHARED_WASM_BASE64} with relaxed SIMD's fused multiply-add (${sharedFma.length} bytes), base64. */
export const KERNELS_SHARED_FMA_WASM_BASE64 = [
${base64Lines(sharedFma)},
].join("");
`,
);
run(Deno.execPath(), ["fmt", "--quiet", target]);
console.log(`wrote ${target}: ${bytes.length} bytes, source sha256 ${hash.slice(0, 12)}...`);
