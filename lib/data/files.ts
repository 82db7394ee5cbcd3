/**
 * Reading dataset files: bytes with a not-found error, gzip detected from the magic bytes,
 * sorted directory listings without hidden files, and one-name-a-line text files.
 *
 * @module
 */

import { gunzipSync } from "node:zlib";
import { DataError } from "./dataset.ts";

/** The bytes of `path`; a missing file is a {@link DataError}. */
export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new DataError(`${path}: file not found`);
    throw e;
  }
}

/** Gunzip when the bytes start with the gzip magic 1f 8b; a `.gz` name without it is an error. */
export function maybeGunzip(bytes: Uint8Array, file: string): Uint8Array {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    let out: Uint8Array;
    try {
      out = gunzipSync(bytes);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new DataError(
        `${file}: corrupt gzip data (${why}); the file is probably truncated, fetch it again`,
      );
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  if (file.endsWith(".gz")) {
    throw new DataError(
      `${file}: expected gzip data (magic 1f 8b) for a .gz file, got ${hex(bytes.subarray(0, 2))}`,
    );
  }
  return bytes;
}

/** Bytes as hex pairs, e.g. "1f 8b", for error messages. */
export function hex(b: Uint8Array): string {
  return b.length === 0 ? "no bytes" : Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}

/** Whether `path` is a directory (false when it is missing or not readable). */
export async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotCapable) return false;
    throw e;
  }
}

/** The entries of `dir` without hidden ones, sorted by name; a missing folder is a {@link DataError}. */
export async function listDir(dir: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (!e.name.startsWith(".")) out.push(e);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new DataError(`${dir}: directory not found`);
    throw e;
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The non-empty trimmed lines of a text file, or undefined when it is missing. */
export async function readNames(path: string): Promise<string[] | undefined> {
  try {
    const text = await Deno.readTextFile(path);
    return text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}
