/**
 * Byte sources: a file opened for positioned reads, or bytes already in memory, behind one
 * interface the safetensors and PyTorch checkpoint readers read through.
 *
 * @module
 */

/**
 * A readable run of bytes: a file opened with {@link fileSource} or an array wrapped by
 * {@link memorySource}. Shared with `torch/checkpoint.ts`; tests wrap it to count bytes read.
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

/**
 * Opens a file for positioned reads (seek + read). Reads are queued, so concurrent `read` calls
 * never interleave their seeks.
 *
 * @example
 * ```ts
 * import { fileSource } from "./byte_source.ts";
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
 * import { memorySource } from "./byte_source.ts";
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

/** Whether bytes start as a zip archive does ("PK\x03\x04"): torch.save's container. */
export function startsLikeZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

/**
 * A file's first bytes for an error message: up to 8 as text (other bytes as ".") and in hex, e.g.
 * `"# ijepa-" (23 20 69 6a 65 70 61 2d)`.
 *
 * @example
 * ```ts
 * import { describeStart } from "./byte_source.ts";
 * const s = describeStart(new TextEncoder().encode("PK\x03\x04rest"));
 * if (s !== '"PK..rest" (50 4b 03 04 72 65 73 74)') throw new Error(s);
 * ```
 */
export function describeStart(head: Uint8Array): string {
  const first = head.subarray(0, 8);
  const text = String.fromCharCode(...first).replace(/[^\x20-\x7e]/g, ".");
  const hex = [...first].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  return `${JSON.stringify(text)} (${hex})`;
}
