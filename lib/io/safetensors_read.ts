/**
 * Reading safetensors: the header parsed and validated (`safetensors_header.ts`: dtypes, shapes,
 * byte ranges tiling the data buffer, string metadata; files of another kind and truncated ones
 * named as such), then tensors read from bytes in memory or lazily from a file.
 *
 * @module
 */

import { type ByteSource, fileSource } from "./byte_source.ts";
import { DTYPES, type TensorData, toFloat32, toInt32 } from "./dtypes.ts";
import { headerLength, parseHeader, type TensorEntry, type TensorInfo } from "./safetensors_header.ts";

export type { TensorEntry, TensorInfo } from "./safetensors_header.ts";

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
    const n = headerLength(bytes.subarray(0, 16), bytes.length, where);
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
    const first = await src.read(0, Math.min(16, src.size));
    const n = headerLength(first, src.size, where);
    const parsed = parseHeader(await src.read(8, n), src.size - 8 - n, where);
    return new SafetensorsFile(src, parsed, 8 + n);
  } catch (e) {
    src.close();
    throw e;
  }
}
