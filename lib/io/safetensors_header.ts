/**
 * The safetensors header: the 8-byte length and the JSON it announces, validated against the file
 * (dtypes, shapes, byte ranges tiling the data buffer, string metadata). A file of another kind and
 * a truncated one are told apart and named as such. `safetensors_read.ts` reads tensors through it.
 *
 * @module
 */
import { describeStart, startsLikeZip } from "./byte_source.ts";
import {
  DTYPE_NAMES,
  DTYPES,
  fmtShape,
  isDtype,
  product,
  type SafetensorsDtype,
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

/**
 * A file cut short keeps its header but loses the end of the data buffer: name that before the
 * per-tensor checks, which would blame whichever tensor came first.
 */
function checkNotTruncated(header: Record<string, unknown>, bufferLength: number, where: string): void {
  let end = 0, last = "";
  for (const [name, raw] of Object.entries(header)) {
    const off = (raw as { data_offsets?: unknown } | null)?.data_offsets;
    if (name === "__metadata__" || !Array.isArray(off) || off.length !== 2) continue;
    if (Number.isSafeInteger(off[1]) && off[1] > end && off[1] >= off[0]) [end, last] = [off[1], name];
  }
  if (end > bufferLength) {
    throw new RangeError(
      `${where}: truncated or corrupt: the header places tensor data up to byte ${end} after it ` +
        `(tensor "${last}"), but only ${bufferLength} bytes follow the header (${
          end - bufferLength
        } missing)`,
    );
  }
}

/** Parses and validates a header against a data buffer of `bufferLength` bytes. */
export function parseHeader(
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
  checkNotTruncated(header as Record<string, unknown>, bufferLength, where);
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

/**
 * Reads the 8-byte header length from the file's first bytes (`head`, up to 16 of them), checks the
 * file starts as a safetensors file does (that length, then a JSON object), and that the header
 * fits the file. A file of another kind and a truncated one get different messages.
 */
export function headerLength(head: Uint8Array, total: number, where: string): number {
  if (total < 8) {
    throw new RangeError(
      `${where}: ${total} bytes is shorter than the 8-byte header length of a safetensors file` +
        (total > 0 ? ` (it starts with ${describeStart(head)})` : ""),
    );
  }
  // Every writer starts the JSON header with "{"; a text file, a zip (torch.save) or a pickle does not.
  if (head.length > 8 && head[8] !== 0x7b) {
    throw new SyntaxError(`${where}: ${notSafetensors(head)}`);
  }
  const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(total - 8)) {
    throw new RangeError(
      `${where}: truncated or corrupt: its first 8 bytes give a header of ${n} bytes, but only ${
        total - 8
      } bytes follow them (the file is ${total} bytes)`,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new RangeError(`${where}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  return Number(n);
}

/** The message for a file that does not start as a safetensors file, saying what it starts with. */
function notSafetensors(head: Uint8Array): string {
  return `not a safetensors file: expected an 8-byte little-endian header length followed by a JSON ` +
    `header starting with "{", but it starts with ${describeStart(head)}` +
    (startsLikeZip(head)
      ? `, a zip archive as torch.save writes (.pth, .pth.tar): official checkpoints open with ` +
        `loadOfficialCheckpoint, and loadModel opens either kind`
      : "");
}
