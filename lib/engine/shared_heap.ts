/**
 * tfjs-wasm's memory made shared, so that worker threads compute on tensors where they are:
 * {@link installSharedHeap}, called before the wasm backend starts.
 *
 * tfjs-wasm runs its single-threaded build under Deno (its threaded one needs classic workers), and
 * that build defines a plain, unshared memory: a worker could only be handed copies of tensors
 * (lib/engine/gemm_pool.ts copied each worker's share of a product in and out). The build's memory is
 * declared once, in its memory section, with a maximum; setting the section's "shared" flag is the
 * whole change (the code never relies on the memory being unshared: plain loads and stores are valid
 * on a shared memory, and `memory.grow` works on one with a maximum). The patched bytes are handed to
 * tfjs through its own loader (`setWasmPaths` with the platform's fetch), nothing is written to disk.
 *
 * With the heap shared, our SIMD module loads in its shared build on the main thread and in every
 * worker (lib/engine/fused_simd.ts), and a product is split between threads without copies. Where
 * anything does not fit (another tfjs version whose memory section differs, `IJEPA_SHARED_HEAP=off`),
 * tfjs loads its file unchanged and the copying path runs, as before.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { envSaysOff } from "./fused_simd.ts";

/** The tfjs-wasm build that runs here (SIMD, not threaded), whose memory is made shared. */
const SIMD_FILE = "tfjs-backend-wasm-simd.wasm";
/** The path tfjs is given for the patched build; served from memory by our fetch. */
const PATCHED_PATH = "ijepa-shared-heap:" + SIMD_FILE;

let installed: string | undefined;

/** LEB128 unsigned at `i`: [value, next offset]. */
function leb(bytes: Uint8Array, i: number): [number, number] {
  let r = 0, s = 0, x = 0;
  do {
    x = bytes[i++];
    r += (x & 0x7f) * 2 ** s;
    s += 7;
  } while (x & 0x80);
  return [r, i];
}

/**
 * A copy of a wasm module whose one defined memory (with a maximum) is declared shared, or a reason
 * why it cannot be (no such memory section, an imported memory, already shared).
 */
export function shareMemory(bytes: Uint8Array): Uint8Array<ArrayBuffer> | string {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    return "not a wasm module";
  }
  for (let i = 8; i < bytes.length;) {
    const id = bytes[i];
    const [size, body] = leb(bytes, i + 1);
    if (id === 2) {
      // an imported memory would be created by tfjs's JavaScript, which we do not change
      const text = new TextDecoder().decode(bytes.subarray(body, body + size));
      if (text.includes("memory")) return "its memory may be imported";
    }
    if (id === 5) {
      const [count, at] = leb(bytes, body);
      if (count !== 1) return `expected one memory, found ${count}`;
      const flags = bytes[at];
      if (flags === 3) return "its memory is shared already";
      if (flags !== 1) return `expected a memory with a maximum (flags 1), found flags ${flags}`;
      const out = bytes.slice();
      out[at] = 3; // has a maximum, shared
      return out;
    }
    i = body + size;
  }
  return "no memory section";
}

/**
 * Have tfjs-wasm load its SIMD build with a shared memory (once, before the backend starts; later
 * calls return the first answer). Returns undefined when installed, else why not (tfjs then loads
 * its files as they are). Needs `--allow-read` for the .wasm file, as tfjs itself does.
 */
export async function installSharedHeap(): Promise<string | undefined> {
  if (installed !== undefined) return installed === "" ? undefined : installed;
  installed = await install().catch((e) => `could not patch tfjs-wasm: ${(e as Error).message}`) ?? "";
  return installed === "" ? undefined : installed;
}

async function install(): Promise<string | undefined> {
  if (envSaysOff("IJEPA_SHARED_HEAP")) return "IJEPA_SHARED_HEAP=off";
  if (typeof SharedArrayBuffer === "undefined") return "no SharedArrayBuffer here";
  const { setWasmPaths } = await import("@tensorflow/tfjs-backend-wasm");
  const dist = (f: string) => new URL(import.meta.resolve(`@tensorflow/tfjs-backend-wasm/dist/${f}`));
  const simd = dist(SIMD_FILE);
  if (simd.protocol !== "file:") return `tfjs-wasm's files are not local (${simd.href})`;
  const patched = shareMemory(await Deno.readFile(simd));
  if (typeof patched === "string") return `tfjs-wasm's ${SIMD_FILE}: ${patched}`;
  // an engine that cannot make the memory shared would fail tfjs's start: load the file as it is then
  if (!WebAssembly.validate(patched)) {
    return `this engine does not validate ${SIMD_FILE} with a shared memory`;
  }
  // tfjs fetches a path through its platform when told to; serve ours from memory, pass the rest on
  const platform = tf.env().platform as unknown as {
    fetch: (path: string, init?: RequestInit) => Promise<Response>;
  };
  const fetchOf = platform.fetch.bind(platform);
  platform.fetch = (path, init) =>
    path === PATCHED_PATH
      ? Promise.resolve(
        new Response(patched as Uint8Array<ArrayBuffer>, { headers: { "content-type": "application/wasm" } }),
      )
      : fetchOf(path, init);
  setWasmPaths({
    [SIMD_FILE]: PATCHED_PATH,
    // the other builds, for engines without SIMD or with threads, load unchanged
    "tfjs-backend-wasm.wasm": dist("tfjs-backend-wasm.wasm").href,
    "tfjs-backend-wasm-threaded-simd.wasm": dist("tfjs-backend-wasm-threaded-simd.wasm").href,
  }, true);
  return undefined;
}

/** Why tfjs-wasm's memory is not shared, once {@link installSharedHeap} has run; undefined when it is. */
export function sharedHeapReason(): string | undefined {
  return installed === "" ? undefined : installed;
}
