/**
 * safetensors: the project's one weights format, read and written without tfjs; this file writes it
 * (`safetensors_read.ts` reads it).
 *
 * A safetensors file is an 8-byte little-endian length N, then N bytes of JSON header naming each
 * tensor's dtype, shape and byte range, then one flat data buffer:
 *
 * ```text
 * [u64 N][{"__metadata__": {...}, "blocks.0.attn.qkv.weight": {"dtype": "F32", "shape": [72, 24],
 *         "data_offsets": [0, 6912]}, ...}   (padded with spaces)][data ...]
 * ```
 *
 * Tensor names and layouts follow the official I-JEPA state dict (`blocks.0.attn.qkv.weight` is
 * [3D, D]); the metadata holds strings only (config JSON, preset name, format version). These files
 * take and hand out typed arrays; mapping names onto a model is the job of `weights.ts`.
 *
 * F16 and BF16 travel as their raw bits in a `Uint16Array` (bit-exact, NaN payloads kept);
 * {@link float16ToFloat32} / {@link float32ToFloat16} and the BF16 pair (in `half.ts`) convert.
 *
 * @example
 * ```ts
 * import { decodeSafetensors } from "./safetensors_read.ts";
 * import { encodeSafetensors } from "./safetensors_write.ts";
 * const bytes = encodeSafetensors(
 *   { "norm.weight": { dtype: "F32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) } },
 *   { preset: "tiny" },
 * );
 * const st = decodeSafetensors(bytes);
 * if (st.metadata.preset !== "tiny") throw new Error("metadata lost");
 * if (st.info("norm.weight").shape.join("x") !== "2x3") throw new Error("shape lost");
 * if (st.readFloat32("norm.weight")[5] !== 6) throw new Error("data lost");
 * ```
 * @module
 */

import { dirname } from "node:path";
import {
  DTYPE_NAMES,
  DTYPES,
  fmtShape,
  isDtype,
  product,
  type SafetensorsDtype,
  type TensorData,
  validShape,
} from "./dtypes.ts";

/**
 * One tensor as a safetensors file stores it: dtype, shape and row-major data of `product(shape)`
 * elements in host memory. Not a tfjs tensor (that is {@link Tensor} from lib/engine).
 */
export interface StoredTensor {
  /** Element type; decides which typed array `data` must be. */
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first; `[]` is a 0-d scalar (one element). */
  shape: readonly number[];
  /** The elements, row-major, in the typed array of `dtype` (see {@link TensorData}). */
  data: TensorData;
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

interface Plan {
  /** Length prefix plus padded header. */
  prefix: Uint8Array;
  /** Tensors in data-buffer order. */
  order: TensorData[];
  dataBytes: number;
}

function plan(tensors: Record<string, StoredTensor>, metadata: Record<string, string>): Plan {
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
    throw new TypeError(`safetensors: metadata must be an object of strings, got ${metadata}`);
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") {
      throw new TypeError(
        `safetensors: metadata "${k}" must be a string, got ${typeof v}; JSON.stringify it first`,
      );
    }
  }
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name];
    if (name === "__metadata__") {
      throw new TypeError(`safetensors: "__metadata__" is reserved and cannot name a tensor`);
    }
    if (!isDtype(t?.dtype)) {
      throw new TypeError(
        `safetensors: tensor "${name}": unknown dtype ${JSON.stringify(t?.dtype)}; ` +
          `expected one of ${DTYPE_NAMES}`,
      );
    }
    if (!validShape(t.shape)) {
      throw new TypeError(
        `safetensors: tensor "${name}": shape must be non-negative integers, got ${JSON.stringify(t.shape)}`,
      );
    }
    const { ctor } = DTYPES[t.dtype];
    if (!(t.data instanceof ctor)) {
      throw new TypeError(
        `safetensors: tensor "${name}": dtype ${t.dtype} needs a ${ctor.name}, got ${
          (t.data as object | undefined)?.constructor?.name ?? typeof t.data
        }`,
      );
    }
    const numel = product(t.shape);
    if (t.data.length !== numel) {
      throw new RangeError(
        `safetensors: tensor "${name}": shape ${
          fmtShape(t.shape)
        } needs ${numel} elements, data has ${t.data.length}`,
      );
    }
    if (t.dtype === "BOOL" && (t.data as Uint8Array).some((v) => v > 1)) {
      throw new RangeError(`safetensors: tensor "${name}": BOOL data must be 0 or 1`);
    }
  }
  // Data goes in order of decreasing element size (stable), so with an 8-aligned header every
  // tensor starts on a multiple of its element size and readers may view it in place.
  const dataOrder = names.map((n, i) => ({ n, i })).sort((a, b) =>
    DTYPES[tensors[b.n].dtype].size - DTYPES[tensors[a.n].dtype].size || a.i - b.i
  );
  const offsets = new Map<string, [number, number]>();
  let at = 0;
  for (const { n } of dataOrder) {
    const len = tensors[n].data.byteLength;
    offsets.set(n, [at, at + len]);
    at += len;
  }
  // The header lists tensors in the caller's order; __metadata__ first, as the official writer does.
  const parts: string[] = [];
  if (Object.keys(metadata).length > 0) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  for (const n of names) {
    const t = tensors[n];
    parts.push(
      `${JSON.stringify(n)}:{"dtype":"${t.dtype}","shape":${JSON.stringify(t.shape)},` +
        `"data_offsets":${JSON.stringify(offsets.get(n))}}`,
    );
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;
  const prefix = new Uint8Array(8 + headerLen).fill(0x20); // pad with spaces
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerLen), true);
  prefix.set(json, 8);
  return { prefix, order: dataOrder.map(({ n }) => tensors[n].data), dataBytes: at };
}

/**
 * The bytes of a safetensors file, in memory.
 *
 * Throws (before producing anything) on an unknown dtype, a shape that does not match the data's
 * length, a data array of the wrong type for the dtype, or non-string metadata.
 *
 * @example
 * ```ts
 * import { encodeSafetensors } from "./safetensors_write.ts";
 * const b = encodeSafetensors({ step: { dtype: "I64", shape: [], data: new BigInt64Array([7n]) } });
 * const n = Number(new DataView(b.buffer).getBigUint64(0, true));
 * if (n % 8 !== 0 || b.length !== 8 + n + 8) throw new Error("bad layout");
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, StoredTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const p = plan(tensors, metadata);
  const out = new Uint8Array(p.prefix.length + p.dataBytes);
  out.set(p.prefix, 0);
  let at = p.prefix.length;
  for (const data of p.order) {
    out.set(bytesOf(data), at);
    at += data.byteLength;
  }
  return out;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let n = 0;
  while (n < bytes.length) n += await file.write(bytes.subarray(n));
}

/**
 * Writes a safetensors file atomically: the bytes go to `<path>.tmp-<pid>` in the same folder,
 * are flushed to disk, and the temp file is renamed over `path`. A crash leaves either the old
 * file or the new one, never a half-written one; on an error the temp file is removed.
 * Tensors are streamed one by one (no second copy of the whole model in memory).
 *
 * @example
 * ```ts
 * import { openSafetensors } from "./safetensors_read.ts";
 * import { writeSafetensors } from "./safetensors_write.ts";
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/w.safetensors`;
 * await writeSafetensors(path, { w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
 * using st = await openSafetensors(path);
 * if ((await st.readFloat32("w"))[1] !== 2) throw new Error("round trip failed");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, StoredTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const p = plan(tensors, metadata);
  const tmp = `${path}.tmp-${Deno.pid}`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, p.prefix);
    for (const data of p.order) await writeAll(file, bytesOf(data));
    await file.sync();
    file.close();
    await Deno.rename(tmp, path);
  } catch (e) {
    try {
      file.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dirname(path));
}

/** Flushes a folder's entries so the rename survives a power cut; best effort (not on Windows). */
async function syncDir(dir: string): Promise<void> {
  try {
    using d = await Deno.open(dir, { read: true });
    await d.sync();
  } catch { /* some platforms cannot open or sync a directory; the rename itself is done */ }
}
