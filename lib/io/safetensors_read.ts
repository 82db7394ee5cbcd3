/**
 * Reading safetensors: the header parsed and validated (dtypes, shapes, byte ranges tiling the
 * data buffer, string metadata), then tensors read from bytes in memory or lazily from a file.
 *
 * @module
 */

import { type ByteSource, fileSource } from "./byte_source.ts";
import {
  DTYPE_NAMES,
  DTYPES,
  fmtShape,
  isDtype,
  product,
  type SafetensorsDtype,
  type TensorData,
  toFloat32,
  toInt32,
  validShape,
} from "./dtypes.ts";

/** What the header says about one tensor. */
export interface TensorInfo {
  /** Element type as stored. */
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first (a copy; `[]` for 0-d). */
  shape: number[];
  /** Bytes the tensor takes in the data buffer: product(shape) * element size. */
  byteLength: number;
}

/** The official library refuses headers over 100 MB; so do we, before allocating one. */
const MAX_HEADER_BYTES = 100_000_000;

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
 * import { decodeSafetensors } from "./safetensors_read.ts";
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
 * import { memorySource } from "./byte_source.ts";
 * import { openSafetensors } from "./safetensors_read.ts";
 * import { encodeSafetensors } from "./safetensors_write.ts";
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
