/**
 * safetensors: the project's one weights format, read and written without tfjs.
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
 * [3D, D]); the metadata holds strings only (config JSON, preset name, format version). This file
 * hands out typed arrays; mapping names onto a model is the job of `checkpoint.ts`.
 *
 * F16 and BF16 travel as their raw bits in a `Uint16Array` (bit-exact, NaN payloads kept);
 * {@link float16ToFloat32} / {@link float32ToFloat16} and the BF16 pair convert.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
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

/** The element types this reader and writer know (the safetensors spelling). */
export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U8"
  | "BOOL";

/**
 * The typed array that holds each dtype: F64 Float64Array, F32 Float32Array, F16/BF16 Uint16Array
 * (raw bits), I64 BigInt64Array, I32 Int32Array, I16 Int16Array, I8 Int8Array, U8/BOOL Uint8Array.
 */
export type TensorData =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** One tensor to write: row-major data of `product(shape)` elements. */
export interface Tensor {
  /** Element type; decides which typed array `data` must be. */
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first; `[]` is a 0-d scalar (one element). */
  shape: readonly number[];
  /** The elements, row-major, in the typed array of `dtype` (see {@link TensorData}). */
  data: TensorData;
}

/** What the header says about one tensor. */
export interface TensorInfo {
  /** Element type as stored. */
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first (a copy; `[]` for 0-d). */
  shape: number[];
  /** Bytes the tensor takes in the data buffer: product(shape) * element size. */
  byteLength: number;
}

/**
 * A readable run of bytes: a file opened with {@link fileSource} or an array wrapped by
 * {@link memorySource}. Shared with `torch_checkpoint.ts`; tests wrap it to count bytes read.
 */
export interface ByteSource {
  /** Used in error messages (the path, or a label). */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from `offset`, in a fresh array (byteOffset 0); throws outside the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the file; reads after close fail. */
  close(): void;
}

type TypedArrayCtor = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): TensorData;
  new (length: number): TensorData;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

// Element size and holding array of each dtype. Typed arrays use the host byte order; every
// platform Deno ships for is little-endian, which is what safetensors stores.
const DTYPES: Record<SafetensorsDtype, { size: number; ctor: TypedArrayCtor }> = {
  F64: { size: 8, ctor: Float64Array as unknown as TypedArrayCtor },
  F32: { size: 4, ctor: Float32Array as unknown as TypedArrayCtor },
  F16: { size: 2, ctor: Uint16Array as unknown as TypedArrayCtor },
  BF16: { size: 2, ctor: Uint16Array as unknown as TypedArrayCtor },
  I64: { size: 8, ctor: BigInt64Array as unknown as TypedArrayCtor },
  I32: { size: 4, ctor: Int32Array as unknown as TypedArrayCtor },
  I16: { size: 2, ctor: Int16Array as unknown as TypedArrayCtor },
  I8: { size: 1, ctor: Int8Array as unknown as TypedArrayCtor },
  U8: { size: 1, ctor: Uint8Array as unknown as TypedArrayCtor },
  BOOL: { size: 1, ctor: Uint8Array as unknown as TypedArrayCtor },
};
const DTYPE_NAMES = Object.keys(DTYPES).join(", ");

/** The official library refuses headers over 100 MB; so do we, before allocating one. */
const MAX_HEADER_BYTES = 100_000_000;

function isDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === "string" && Object.hasOwn(DTYPES, x);
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function validShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0);
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Half-precision conversions
// ---------------------------------------------------------------------------------------------

/**
 * IEEE half-precision bits to float32 (exact: every half value is a float32).
 *
 * @example
 * ```ts
 * import { float16ToFloat32 } from "./safetensors.ts";
 * const f = float16ToFloat32(new Uint16Array([0x3c00, 0xc000, 0x0001]));
 * if (f[0] !== 1 || f[1] !== -2 || f[2] !== 2 ** -24) throw new Error("bad half decode");
 * ```
 */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      if (mant === 0) u32[i] = sign >>> 0;
      else out[i] = (sign ? -mant : mant) * 2 ** -24; // subnormal: exact in float32
    } else if (exp === 31) {
      u32[i] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / NaN, payload kept
    } else {
      u32[i] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return out;
}

/**
 * float32 to IEEE half-precision bits, rounding to nearest even (overflow gives infinity).
 *
 * @example
 * ```ts
 * import { float32ToFloat16 } from "./safetensors.ts";
 * const h = float32ToFloat16(new Float32Array([1, -2, 65520, 1e-8]));
 * if (h[0] !== 0x3c00 || h[1] !== 0xc000 || h[2] !== 0x7c00 || h[3] !== 0) throw new Error("bad");
 * ```
 */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const f = u32[i];
    const sign = (f >>> 16) & 0x8000;
    const exp = (f >>> 23) & 0xff;
    let mant = f & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // NaN stays NaN (quiet)
      continue;
    }
    const e = exp - 112; // half exponent field
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign; // below half of the smallest subnormal: rounds to zero
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rem > halfway || (rem === halfway && (half & 1))) half++;
      out[i] = sign | half;
    } else {
      let half = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // a carry may reach infinity
      out[i] = sign | half;
    }
  }
  return out;
}

/**
 * bfloat16 bits to float32 (exact: bfloat16 is the top half of a float32).
 *
 * @example
 * ```ts
 * import { bfloat16ToFloat32 } from "./safetensors.ts";
 * if (bfloat16ToFloat32(new Uint16Array([0x3f80]))[0] !== 1) throw new Error("bad bf16 decode");
 * ```
 */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u32[i] = bits[i] << 16 >>> 0;
  return out;
}

/**
 * float32 to bfloat16 bits, rounding to nearest even (what `tensor.to(torch.bfloat16)` does).
 *
 * @example
 * ```ts
 * import { float32ToBfloat16 } from "./safetensors.ts";
 * if (float32ToBfloat16(new Float32Array([1]))[0] !== 0x3f80) throw new Error("bad bf16 encode");
 * ```
 */
export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const f = u32[i];
    if ((f & 0x7f800000) === 0x7f800000 && (f & 0x7fffff) !== 0) {
      out[i] = (f >>> 16) | 0x40; // NaN: keep it NaN even if the payload sits in the low half
    } else {
      out[i] = (f + 0x7fff + ((f >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/** Any tensor's elements as float32 (halves decoded, integers and float64 converted; int64 via Number). */
export function toFloat32(dtype: SafetensorsDtype, data: TensorData): Float32Array {
  switch (dtype) {
    case "F32":
      return data as Float32Array;
    case "F16":
      return float16ToFloat32(data as Uint16Array);
    case "BF16":
      return bfloat16ToFloat32(data as Uint16Array);
    case "I64": {
      const src = data as BigInt64Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
      return out;
    }
    default:
      return Float32Array.from(data as Float64Array);
  }
}

function toInt32(dtype: SafetensorsDtype, data: TensorData, what: string): Int32Array {
  switch (dtype) {
    case "I32":
      return data as Int32Array;
    case "I64": {
      const src = data as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = src[i];
        if (v < -2147483648n || v > 2147483647n) {
          throw new RangeError(`${what}: I64 element ${i} = ${v} does not fit in an Int32`);
        }
        out[i] = Number(v);
      }
      return out;
    }
    case "I16":
    case "I8":
    case "U8":
    case "BOOL":
      return Int32Array.from(data as Int16Array);
    default:
      throw new TypeError(`${what}: readInt32 needs an integer or BOOL tensor, got ${dtype}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

interface Plan {
  /** Length prefix plus padded header. */
  prefix: Uint8Array;
  /** Tensors in data-buffer order. */
  order: TensorData[];
  dataBytes: number;
}

function plan(tensors: Record<string, Tensor>, metadata: Record<string, string>): Plan {
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
 * import { encodeSafetensors } from "./safetensors.ts";
 * const b = encodeSafetensors({ step: { dtype: "I64", shape: [], data: new BigInt64Array([7n]) } });
 * const n = Number(new DataView(b.buffer).getBigUint64(0, true));
 * if (n % 8 !== 0 || b.length !== 8 + n + 8) throw new Error("bad layout");
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, Tensor>,
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
 * import { openSafetensors, writeSafetensors } from "./safetensors.ts";
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
  tensors: Record<string, Tensor>,
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

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/** A tensor's header entry: its info plus where its bytes lie in the data buffer. */
export interface TensorEntry extends TensorInfo {
  /** First byte, relative to the start of the data buffer (the byte after the header). */
  begin: number;
  /** One past the last byte. */
  end: number;
}

/** Parses and validates a header against a data buffer of `bufferLength` bytes. */
function parseHeader(
  headerBytes: Uint8Array,
  bufferLength: number,
  where: string,
): { metadata: Record<string, string>; entries: Map<string, TensorEntry> } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    throw new SyntaxError(`${where}: header is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(
      `${where}: header is not JSON (${(e as Error).message}); starts with ${
        JSON.stringify(text.slice(0, 40))
      }`,
    );
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new SyntaxError(`${where}: header must be a JSON object, got ${JSON.stringify(header)}`);
  }
  const metadata: Record<string, string> = {};
  const entries = new Map<string, TensorEntry>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (raw === null) continue;
      if (typeof raw !== "object" || Array.isArray(raw)) {
        throw new TypeError(`${where}: __metadata__ must be an object, got ${JSON.stringify(raw)}`);
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") {
          throw new TypeError(
            `${where}: metadata "${k}" must be a string, got ${JSON.stringify(v)}`,
          );
        }
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true });
      }
      continue;
    }
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (t === null || typeof t !== "object") {
      throw new TypeError(`${where}: tensor "${name}": expected an object, got ${raw}`);
    }
    if (!isDtype(t.dtype)) {
      throw new TypeError(
        `${where}: tensor "${name}": unknown dtype ${
          JSON.stringify(t.dtype)
        }; this reader knows ${DTYPE_NAMES}`,
      );
    }
    if (!validShape(t.shape)) {
      throw new TypeError(
        `${where}: tensor "${name}": shape must be non-negative integers, got ${JSON.stringify(t.shape)}`,
      );
    }
    const off = t.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x)) ||
      off[0] < 0 || off[1] < off[0] || off[1] > bufferLength
    ) {
      throw new RangeError(
        `${where}: tensor "${name}": data_offsets ${
          JSON.stringify(off)
        } out of range; the data buffer holds ${bufferLength} bytes`,
      );
    }
    const byteLength = product(t.shape) * DTYPES[t.dtype].size;
    if (off[1] - off[0] !== byteLength) {
      throw new RangeError(
        `${where}: tensor "${name}": ${t.dtype} ${
          fmtShape(t.shape)
        } needs ${byteLength} bytes, data_offsets [${off[0]}, ${off[1]}] give ${off[1] - off[0]}`,
      );
    }
    entries.set(name, {
      dtype: t.dtype,
      shape: t.shape.slice(),
      byteLength,
      begin: off[0],
      end: off[1],
    });
  }
  // The tensors must tile the data buffer exactly: no overlap, no gap, nothing left over.
  const sorted = [...entries].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let covered = 0;
  let last = "";
  for (const [name, e] of sorted) {
    if (e.begin < covered) {
      throw new RangeError(
        `${where}: tensor "${name}" [${e.begin}, ${e.end}) overlaps tensor "${last}" (ends at ${covered})`,
      );
    }
    if (e.begin > covered) {
      throw new RangeError(
        `${where}: bytes [${covered}, ${e.begin}) of the data buffer belong to no tensor`,
      );
    }
    covered = e.end;
    last = name;
  }
  if (covered !== bufferLength) {
    throw new RangeError(
      `${where}: tensors cover ${covered} bytes but the data buffer holds ${bufferLength}`,
    );
  }
  return { metadata, entries };
}

/** Reads the 8-byte length, checks it against the total size, and returns it. */
function headerLength(first8: Uint8Array, total: number, where: string): number {
  if (total < 8) {
    throw new RangeError(
      `${where}: ${total} bytes is shorter than the 8-byte header length of a safetensors file`,
    );
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(total - 8)) {
    throw new RangeError(
      `${where}: header length ${n} is larger than the file (${total - 8} bytes after the length)`,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new RangeError(`${where}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  return Number(n);
}

/**
 * Names, dtypes, shapes and metadata of a safetensors file: what {@link SafetensorsBytes} and
 * {@link SafetensorsFile} share. Made by {@link decodeSafetensors} / {@link openSafetensors}.
 */
export abstract class SafetensorsHeader {
  /** The `__metadata__` strings ({} when the file has none). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Where the bytes came from (path or label), for messages. */
  readonly source: string;
  /** Header entries by name, in header order. */
  protected readonly entries: Map<string, TensorEntry>;
  /** Byte offset of the data buffer from the start of the file. */
  protected readonly dataStart: number;

  /** Takes a validated header; use {@link decodeSafetensors} or {@link openSafetensors}. */
  constructor(
    source: string,
    parsed: { metadata: Record<string, string>; entries: Map<string, TensorEntry> },
    dataStart: number,
  ) {
    this.source = source;
    this.metadata = parsed.metadata;
    this.entries = parsed.entries;
    this.dataStart = dataStart;
  }

  /** Tensor names in header order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** Whether a tensor of that name exists. */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Dtype, shape and byte length of one tensor; throws naming the file for an unknown name. */
  info(name: string): TensorInfo {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: e.shape.slice(), byteLength: e.byteLength };
  }

  /** The header entry of a tensor, or an error listing the names there are. */
  protected entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) {
      const names = this.names();
      const shown = names.slice(0, 8).join(", ") + (names.length > 8 ? ", ..." : "");
      throw new RangeError(
        `safetensors ${this.source}: no tensor named "${name}"; it has ${names.length}: ${shown}`,
      );
    }
    return e;
  }

  /** A typed array over a fresh copy of one tensor's bytes. */
  protected view(e: TensorEntry, bytes: Uint8Array): TensorData {
    // `bytes` is a fresh copy at byteOffset 0, so any element size is aligned.
    return new DTYPES[e.dtype].ctor(
      bytes.buffer as ArrayBuffer,
      0,
      e.byteLength / DTYPES[e.dtype].size,
    );
  }
}

/** A safetensors file decoded from memory: every read is synchronous and returns a copy. */
export class SafetensorsBytes extends SafetensorsHeader {
  readonly #bytes: Uint8Array;

  /** Use {@link decodeSafetensors}. */
  constructor(bytes: Uint8Array, source: string) {
    const where = `safetensors ${source}`;
    const n = headerLength(bytes.subarray(0, 8), bytes.length, where);
    super(source, parseHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, where), 8 + n);
    this.#bytes = bytes;
  }

  /** The tensor in its own typed array (see {@link TensorData}). */
  read(name: string): TensorData {
    const e = this.entry(name);
    return this.view(e, this.#bytes.slice(this.dataStart + e.begin, this.dataStart + e.end));
  }

  /** The tensor as float32, converting F16/BF16/F64/integers. */
  readFloat32(name: string): Float32Array {
    return toFloat32(this.entry(name).dtype, this.read(name));
  }

  /** An integer or BOOL tensor as Int32 (I64 values outside the Int32 range throw). */
  readInt32(name: string): Int32Array {
    return toInt32(this.entry(name).dtype, this.read(name), `safetensors ${this.source} "${name}"`);
  }
}

/**
 * A safetensors file opened for lazy reading: only the header is read up front; each `read`
 * fetches exactly that tensor's bytes. Close it (or declare it with `using`) when done.
 */
export class SafetensorsFile extends SafetensorsHeader {
  readonly #src: ByteSource;

  /** Use {@link openSafetensors}. */
  constructor(
    src: ByteSource,
    parsed: { metadata: Record<string, string>; entries: Map<string, TensorEntry> },
    dataStart: number,
  ) {
    super(src.name, parsed, dataStart);
    this.#src = src;
  }

  /** The tensor in its own typed array (see {@link TensorData}); reads only its bytes. */
  async read(name: string): Promise<TensorData> {
    const e = this.entry(name);
    return this.view(e, await this.#src.read(this.dataStart + e.begin, e.byteLength));
  }

  /** The tensor as float32, converting F16/BF16/F64/integers. */
  async readFloat32(name: string): Promise<Float32Array> {
    return toFloat32(this.entry(name).dtype, await this.read(name));
  }

  /** An integer or BOOL tensor as Int32 (I64 values outside the Int32 range throw). */
  async readInt32(name: string): Promise<Int32Array> {
    const e = this.entry(name);
    return toInt32(e.dtype, await this.read(name), `safetensors ${this.source} "${name}"`);
  }

  /** Closes the file. */
  close(): void {
    this.#src.close();
  }

  /** Lets `using st = await openSafetensors(path)` close it. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Decodes safetensors bytes held in memory, validating the header as {@link openSafetensors} does.
 *
 * @example
 * ```ts
 * import { decodeSafetensors } from "./safetensors.ts";
 * try {
 *   decodeSafetensors(new Uint8Array(4), "tiny.bin");
 *   throw new Error("should have failed");
 * } catch (e) {
 *   if (!String(e).includes("shorter than the 8-byte header length")) throw e;
 * }
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array, source = "<memory>"): SafetensorsBytes {
  return new SafetensorsBytes(bytes, source);
}

/**
 * Opens a safetensors file (a path, or any {@link ByteSource}), reading and validating only its
 * header: file shorter than 8 bytes, header length beyond the file, header not JSON, unknown
 * dtype, byte length != product(shape) * element size, offsets out of range, overlapping or not
 * tiling the data buffer, non-string metadata: each throws an error naming the file.
 *
 * @example
 * ```ts
 * import { encodeSafetensors, memorySource, openSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({
 *   a: { dtype: "BF16", shape: [1], data: new Uint16Array([0x4040]) },
 *   b: { dtype: "U8", shape: [0], data: new Uint8Array(0) },
 * });
 * using st = await openSafetensors(memorySource(bytes, "demo"));
 * if (st.names().join() !== "a,b") throw new Error("names");
 * if ((await st.readFloat32("a"))[0] !== 3) throw new Error("bf16 value");
 * ```
 */
export async function openSafetensors(pathOrSource: string | ByteSource): Promise<SafetensorsFile> {
  const src = typeof pathOrSource === "string" ? await fileSource(pathOrSource) : pathOrSource;
  try {
    const where = `safetensors ${src.name}`;
    const first = src.size >= 8 ? await src.read(0, 8) : new Uint8Array(0);
    const n = headerLength(first, src.size, where);
    const parsed = parseHeader(await src.read(8, n), src.size - 8 - n, where);
    return new SafetensorsFile(src, parsed, 8 + n);
  } catch (e) {
    src.close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Byte sources
// ---------------------------------------------------------------------------------------------

/**
 * Opens a file for positioned reads (seek + read). Reads are queued, so concurrent `read` calls
 * never interleave their seeks.
 *
 * @example
 * ```ts
 * import { fileSource } from "./safetensors.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array([1, 2, 3, 4]));
 * const src = await fileSource(path);
 * const [a, b] = await Promise.all([src.read(2, 2), src.read(0, 1)]);
 * src.close();
 * await Deno.remove(path);
 * if (a[0] !== 3 || b[0] !== 1 || src.size !== 4) throw new Error("bad read");
 * ```
 */
export async function fileSource(path: string): Promise<ByteSource> {
  const file = await Deno.open(path, { read: true });
  let size: number;
  try {
    size = (await file.stat()).size;
  } catch (e) {
    file.close();
    throw e;
  }
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  const readNow = async (offset: number, length: number): Promise<Uint8Array> => {
    if (closed) throw new Error(`${path}: read after close`);
    checkRange(path, size, offset, length);
    const out = new Uint8Array(length);
    await file.seek(offset, Deno.SeekMode.Start);
    let n = 0;
    while (n < length) {
      const got = await file.read(out.subarray(n));
      if (got === null) {
        throw new RangeError(
          `${path}: the file ended at byte ${offset + n} while reading [${offset}, ${
            offset + length
          }) (was it truncated while open?)`,
        );
      }
      n += got;
    }
    return out;
  };
  return {
    name: path,
    size,
    read(offset, length) {
      const p = queue.then(() => readNow(offset, length));
      queue = p.catch(() => {});
      return p;
    },
    close() {
      if (!closed) {
        closed = true;
        file.close();
      }
    },
  };
}

/**
 * Wraps bytes already in memory as a {@link ByteSource} (each read returns a copy).
 *
 * @example
 * ```ts
 * import { memorySource } from "./safetensors.ts";
 * const src = memorySource(new Uint8Array([5, 6, 7]), "three bytes");
 * if ((await src.read(1, 2))[1] !== 7) throw new Error("bad read");
 * ```
 */
export function memorySource(bytes: Uint8Array, name = "<memory>"): ByteSource {
  return {
    name,
    size: bytes.length,
    read(offset, length) {
      try {
        checkRange(name, bytes.length, offset, length);
      } catch (e) {
        return Promise.reject(e);
      }
      return Promise.resolve(bytes.slice(offset, offset + length));
    },
    close() {},
  };
}

function checkRange(name: string, size: number, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
    offset + length > size
  ) {
    throw new RangeError(
      `${name}: bytes [${offset}, ${offset + length}) lie outside the file (${size} bytes)`,
    );
  }
}
