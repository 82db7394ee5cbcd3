/**
 * The zip container of a `torch.save` file: the central directory read from the end of the file
 * (end records, ZIP64 locator and record, ZIP64 extra fields), and stored records read by byte
 * range through their local headers.
 *
 * @module
 */

import type { ByteSource } from "../byte_source.ts";

/** One record of the checkpoint's zip, from the central directory. */
export interface ZipEntry {
  /** Full name, e.g. `checkpoint.pth/data/7`. */
  readonly name: string;
  /** Uncompressed size in bytes. */
  readonly size: number;
  /** Stored size in bytes (equal to `size` for stored records). */
  readonly compressedSize: number;
  /** 0 = stored (what torch.save writes); anything else is refused when read. */
  readonly method: number;
  /** General-purpose bit flags (bit 3: sizes follow the data, as torch.save writes). */
  readonly flags: number;
  /** CRC-32 of the data; checked for the pickle record. */
  readonly crc32: number;
  /** Where the record's local header starts. */
  readonly localHeaderOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;

function u64At(dv: DataView, at: number, what: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${what}: ${v} is too large`);
  return Number(v);
}

function hex4(b: Uint8Array): string {
  return [...b.subarray(0, 4)].map((x) => x.toString(16).padStart(2, "0")).join(" ");
}

/** Reads the ZIP64 extra field (id 1): the 8-byte values for fields saturated at 0xFFFFFFFF. */
function zip64Extra(
  extra: Uint8Array,
  wanted: { size: boolean; csize: boolean; offset: boolean },
  what: string,
): { size?: number; csize?: number; offset?: number } {
  const dv = new DataView(extra.buffer, extra.byteOffset, extra.byteLength);
  for (let at = 0; at + 4 <= extra.length;) {
    const id = dv.getUint16(at, true);
    const len = dv.getUint16(at + 2, true);
    if (at + 4 + len > extra.length) break;
    if (id === 0x0001) {
      const out: { size?: number; csize?: number; offset?: number } = {};
      let p = at + 4;
      const next = (field: string) => {
        if (p + 8 > at + 4 + len) throw new RangeError(`${what}: ZIP64 extra field lacks ${field}`);
        p += 8;
        return u64At(dv, p - 8, `${what}: ZIP64 ${field}`);
      };
      // The order is fixed by the spec; only saturated fields are present.
      if (wanted.size) out.size = next("uncompressed size");
      if (wanted.csize) out.csize = next("compressed size");
      if (wanted.offset) out.offset = next("local header offset");
      return out;
    }
    at += 4 + len;
  }
  if (wanted.size || wanted.csize || wanted.offset) {
    throw new RangeError(`${what}: fields are 0xFFFFFFFF but there is no ZIP64 extra field`);
  }
  return {};
}

/** Parses the zip's end records and central directory (reads only the file's tail). */
export async function readZipDirectory(src: ByteSource, where: string): Promise<ZipEntry[]> {
  const size = src.size;
  if (size < 22) {
    throw new RangeError(`${where}: ${size} bytes is too short for a zip (the smallest is 22)`);
  }
  const head = await src.read(0, 4);
  const headSig = new DataView(head.buffer).getUint32(0, true);
  if (headSig !== SIG_LOCAL && headSig !== SIG_EOCD) {
    const legacy = head[0] === 0x80
      ? " (it starts like a bare pickle: a legacy torch.save file from PyTorch < 1.6, which this " +
        "reader does not support; re-save it with a newer PyTorch)"
      : "";
    throw new SyntaxError(
      `${where}: bad zip signature: expected 50 4b 03 04 ("PK\\3\\4") at byte 0, found ${
        hex4(head)
      }${legacy}`,
    );
  }
  // End of central directory: the last 22 bytes plus a comment of up to 65535 bytes.
  const tailLen = Math.min(size, 22 + 0xffff);
  const tailStart = size - tailLen;
  const tail = await src.read(tailStart, tailLen);
  const tv = new DataView(tail.buffer);
  let e = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD && i + 22 + tv.getUint16(i + 20, true) === tailLen) {
      e = i;
      break;
    }
  }
  if (e < 0) {
    throw new RangeError(
      `${where}: no end-of-central-directory record in the last ${tailLen} bytes: the file ` +
        `(${size} bytes) is truncated or not a zip`,
    );
  }
  const eocdAt = tailStart + e;
  let disk = tv.getUint16(e + 4, true);
  let cdDisk = tv.getUint16(e + 6, true);
  let count = tv.getUint16(e + 10, true);
  let cdSize = tv.getUint32(e + 12, true);
  let cdOffset = tv.getUint32(e + 16, true);
  let endOfCd = eocdAt;
  const saturated = count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff;
  const hasLocator = eocdAt >= 20 &&
    new DataView((await src.read(eocdAt - 20, 4)).buffer).getUint32(0, true) === SIG_ZIP64_LOCATOR;
  if (hasLocator) {
    const loc = new DataView((await src.read(eocdAt - 20, 20)).buffer);
    const recAt = u64At(loc, 8, `${where}: ZIP64 locator`);
    if (recAt + 56 > eocdAt - 20) {
      throw new RangeError(
        `${where}: ZIP64 locator points to byte ${recAt}, past the end records (truncated?)`,
      );
    }
    const rec = new DataView((await src.read(recAt, 56)).buffer);
    if (rec.getUint32(0, true) !== SIG_ZIP64_EOCD) {
      throw new SyntaxError(
        `${where}: no ZIP64 end-of-central-directory record at byte ${recAt}, where its locator points`,
      );
    }
    disk = rec.getUint32(16, true);
    cdDisk = rec.getUint32(20, true);
    count = u64At(rec, 32, `${where}: ZIP64 entry count`);
    cdSize = u64At(rec, 40, `${where}: ZIP64 central directory size`);
    cdOffset = u64At(rec, 48, `${where}: ZIP64 central directory offset`);
    endOfCd = recAt;
  } else if (saturated) {
    throw new SyntaxError(
      `${where}: the end record's fields are saturated (ZIP64) but there is no ZIP64 locator before it`,
    );
  }
  if (disk !== 0 || cdDisk !== 0) {
    throw new SyntaxError(`${where}: multi-disk zips are not supported (disk ${disk})`);
  }
  if (cdOffset + cdSize > endOfCd) {
    throw new RangeError(
      `${where}: central directory [${cdOffset}, ${cdOffset + cdSize}) runs past the end records ` +
        `at byte ${endOfCd} (truncated or corrupt)`,
    );
  }
  const cd = await src.read(cdOffset, cdSize);
  const cv = new DataView(cd.buffer);
  const utf8 = new TextDecoder();
  const entries: ZipEntry[] = [];
  let at = 0;
  for (let n = 0; n < count; n++) {
    if (at + 46 > cd.length || cv.getUint32(at, true) !== SIG_CENTRAL) {
      throw new SyntaxError(
        `${where}: bad central directory entry ${n} of ${count} at byte ${cdOffset + at}`,
      );
    }
    const nameLen = cv.getUint16(at + 28, true);
    const extraLen = cv.getUint16(at + 30, true);
    const commentLen = cv.getUint16(at + 32, true);
    if (at + 46 + nameLen + extraLen + commentLen > cd.length) {
      throw new SyntaxError(`${where}: central directory entry ${n} runs past the directory`);
    }
    const name = utf8.decode(cd.subarray(at + 46, at + 46 + nameLen));
    let csize = cv.getUint32(at + 20, true);
    let usize = cv.getUint32(at + 24, true);
    let offset = cv.getUint32(at + 42, true);
    const z = zip64Extra(
      cd.subarray(at + 46 + nameLen, at + 46 + nameLen + extraLen),
      { size: usize === 0xffffffff, csize: csize === 0xffffffff, offset: offset === 0xffffffff },
      `${where}: record ${name}`,
    );
    usize = z.size ?? usize;
    csize = z.csize ?? csize;
    offset = z.offset ?? offset;
    entries.push({
      name,
      size: usize,
      compressedSize: csize,
      method: cv.getUint16(at + 10, true),
      flags: cv.getUint16(at + 8, true),
      crc32: cv.getUint32(at + 16, true),
      localHeaderOffset: offset,
    });
    at += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** Reads records' bytes, finding each record's data through its local header (cached). */
export class ZipRecords {
  readonly #src: ByteSource;
  readonly #where: string;
  readonly #dataAt = new Map<ZipEntry, Promise<number>>();

  constructor(src: ByteSource, where: string) {
    this.#src = src;
    this.#where = where;
  }

  async #dataOffset(e: ZipEntry): Promise<number> {
    const where = `${this.#where}: record ${e.name}`;
    const nameBytes = new TextEncoder().encode(e.name);
    const headLen = 30 + nameBytes.length;
    if (e.localHeaderOffset + headLen > this.#src.size) {
      throw new RangeError(
        `${where}: its local header [${e.localHeaderOffset}, ${
          e.localHeaderOffset + headLen
        }) lies past the end of the file (${this.#src.size} bytes): truncated`,
      );
    }
    const h = await this.#src.read(e.localHeaderOffset, headLen);
    const hv = new DataView(h.buffer);
    if (hv.getUint32(0, true) !== SIG_LOCAL) {
      throw new SyntaxError(
        `${where}: bad local header signature at byte ${e.localHeaderOffset}: found ${hex4(h)}`,
      );
    }
    const nameLen = hv.getUint16(26, true);
    const extraLen = hv.getUint16(28, true);
    if (nameLen !== nameBytes.length || !nameBytes.every((b, i) => h[30 + i] === b)) {
      throw new SyntaxError(`${where}: the local header names a different record`);
    }
    const start = e.localHeaderOffset + 30 + nameLen + extraLen;
    // With bit 3 set (torch.save sets it), sizes follow the data; else check they agree.
    if (!(e.flags & 0x8)) {
      let csize = hv.getUint32(18, true);
      let usize = hv.getUint32(22, true);
      if (csize === 0xffffffff || usize === 0xffffffff) {
        const extra = await this.#src.read(e.localHeaderOffset + 30 + nameLen, extraLen);
        const z = zip64Extra(
          extra,
          { size: usize === 0xffffffff, csize: csize === 0xffffffff, offset: false },
          `${where} (local header)`,
        );
        usize = z.size ?? usize;
        csize = z.csize ?? csize;
      }
      if (usize !== e.size || csize !== e.compressedSize) {
        throw new SyntaxError(
          `${where}: local header says ${usize} bytes, the central directory ${e.size}`,
        );
      }
    }
    if (start + e.compressedSize > this.#src.size) {
      throw new RangeError(
        `${where}: needs bytes [${start}, ${
          start + e.compressedSize
        }) but the file ends at byte ${this.#src.size}: truncated`,
      );
    }
    return start;
  }

  /** `length` bytes from `offset` within the record's data. */
  async read(e: ZipEntry, offset: number, length: number): Promise<Uint8Array> {
    if (e.method !== 0) {
      throw new SyntaxError(
        `${this.#where}: record ${e.name} is compressed (method ${e.method}); torch.save stores ` +
          `records uncompressed and this reader reads only those`,
      );
    }
    if (e.flags & 0x1) throw new SyntaxError(`${this.#where}: record ${e.name} is encrypted`);
    if (offset + length > e.size) {
      throw new RangeError(
        `${this.#where}: record ${e.name} holds ${e.size} bytes, asked for [${offset}, ${offset + length})`,
      );
    }
    let p = this.#dataAt.get(e);
    if (!p) {
      p = this.#dataOffset(e);
      this.#dataAt.set(e, p);
      p.catch(() => this.#dataAt.delete(e));
    }
    return await this.#src.read((await p) + offset, length);
  }
}
