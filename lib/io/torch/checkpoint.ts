/**
 * A safe, lazy reader for PyTorch checkpoints (`torch.save`, the `.pth.tar` files the official
 * I-JEPA code writes), without PyTorch and without running code from the file.
 *
 * A `torch.save` file is a zip of stored (uncompressed) records under one top folder whose name
 * varies: `<top>/data.pkl` (a pickle of the saved object), `<top>/data/<key>` (the raw bytes of
 * each tensor storage), `<top>/version`, and in newer PyTorch `<top>/byteorder` and
 * `<top>/.data/serialization_id`. Three layers read it:
 *
 * 1. the zip directory (end-of-central-directory record, ZIP64 locator and record, ZIP64 extra
 *    fields), read from the end of the file; each record's data offset comes from its local header;
 * 2. a restricted pickle machine ({@link unpickle}): the opcodes `torch.save` writes and an
 *    allow-list of globals, each implemented here in TypeScript; anything else is refused;
 * 3. {@link LazyTensor} leaves that read their bytes only when asked.
 *
 * Released checkpoints are large (ViT-H/14 is about 10 GB: both encoders, the predictor and the
 * AdamW moments), so nothing is read that is not asked for: opening reads the zip directory and the
 * pickle; `read()` fetches one tensor's bytes. Mapping state-dict names onto the model is the job of
 * `official.ts`.
 *
 * Dicts come back as plain objects when every key is a string that is not an array index (so key
 * order is kept), otherwise as `Map`s (the optimizer's `state` has int keys); lists and tuples as
 * arrays (tuples frozen); ints as numbers (bigint beyond 2^53); `None` as null.
 *
 * @example
 * ```ts
 * import { openTorchCheckpoint, stateDict } from "./checkpoint.ts";
 * using ckpt = await openTorchCheckpoint("tests/fixtures/official-ijepa-tiny/checkpoint.pth.tar");
 * const root = ckpt.root as { epoch: number };
 * const encoder = stateDict(ckpt.root, "target_encoder", { stripPrefix: "module." });
 * const qkv = encoder.get("blocks.0.attn.qkv.weight")!;
 * if (qkv.shape.join("x") !== "72x24" || root.epoch !== 1) throw new Error("unexpected content");
 * const w = await qkv.readFloat32(); // [3D, D], row-major
 * if (w.length !== 72 * 24) throw new Error("short read");
 * ```
 * @module
 */

import { crc32 } from "node:zlib";
import { type ByteSource, fileSource } from "../byte_source.ts";
import { describe, isCount, PickleGlobal } from "./globals.ts";
import { unpickle } from "./pickle.ts";
import { LazyTensor, StorageRef } from "./tensors.ts";
import { readZipDirectory, type ZipEntry, ZipRecords } from "./zip.ts";

/** An opened `torch.save` file. Close it (or declare it with `using`) when done. */
export interface TorchCheckpoint {
  /**
   * The unpickled object: plain objects or Maps for dicts, arrays for lists and tuples,
   * numbers/bigint, strings, null, booleans, Uint8Array for bytes, {@link LazyTensor} leaves.
   */
  readonly root: unknown;
  /** Every record of the zip, in central-directory order. */
  readonly entries: readonly ZipEntry[];
  /** The top folder, with its slash (`checkpoint.pth/`). */
  readonly prefix: string;
  /** The path or source name. */
  readonly source: string;
  /** From the `byteorder` record; files without one (PyTorch < 2.1) are little-endian. */
  readonly byteOrder: "little" | "big";
  /** The raw bytes of one record by full name (e.g. `${prefix}version`). */
  readRecord(name: string): Promise<Uint8Array>;
  /** Closes the file; tensors cannot be read afterwards. */
  close(): void;
  /** Lets `using ckpt = await openTorchCheckpoint(path)` close it. */
  [Symbol.dispose](): void;
}

/**
 * Opens a `torch.save` checkpoint (a path, or any {@link ByteSource}): reads the zip directory
 * and the pickle, and returns the object with {@link LazyTensor} leaves. Records it does not need
 * (`version`, `byteorder`, `.data/serialization_id`) are ignored; the top folder's name is found,
 * not assumed.
 *
 * Errors name the file and what was wrong: a bad zip signature, a truncated file (the missing
 * record or byte range), a pickle CRC mismatch, a refused global or opcode, a storage record
 * missing from the zip.
 *
 * @example
 * ```ts
 * import { openTorchCheckpoint } from "./checkpoint.ts";
 * using ckpt = await openTorchCheckpoint("tests/fixtures/official-ijepa-tiny/checkpoint.pth.tar");
 * if (ckpt.prefix !== "checkpoint.pth/") throw new Error(`top folder ${ckpt.prefix}`);
 * const version = new TextDecoder().decode(await ckpt.readRecord(`${ckpt.prefix}version`));
 * if (version.trim() !== "3") throw new Error(`version ${version}`);
 * ```
 */
export async function openTorchCheckpoint(
  pathOrSource: string | ByteSource,
): Promise<TorchCheckpoint> {
  const src = typeof pathOrSource === "string" ? await fileSource(pathOrSource) : pathOrSource;
  const where = `torch checkpoint ${src.name}`;
  try {
    const entries = await readZipDirectory(src, where);
    const byName = new Map(entries.map((e) => [e.name, e]));
    const zip = new ZipRecords(src, where);
    const pickles = entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
    if (pickles.length !== 1) {
      const shown = entries.slice(0, 6).map((e) => e.name).join(", ");
      throw new SyntaxError(
        `${where}: expected one <top>/data.pkl record, found ${pickles.length} ` +
          `(records: ${shown}${entries.length > 6 ? ", ..." : ""}); was it written by torch.save?`,
      );
    }
    const pklEntry = pickles[0];
    const prefix = pklEntry.name.slice(0, -"data.pkl".length);
    const pkl = await zip.read(pklEntry, 0, pklEntry.size);
    const crc = crc32(pkl) >>> 0;
    if (crc !== pklEntry.crc32) {
      throw new SyntaxError(
        `${where}: record ${pklEntry.name} fails its CRC (stored ${pklEntry.crc32.toString(16)}, computed ${
          crc.toString(16)
        }): the file is corrupt`,
      );
    }
    let byteOrder: "little" | "big" = "little";
    const bo = byName.get(`${prefix}byteorder`);
    if (bo) {
      const s = new TextDecoder().decode(await zip.read(bo, 0, bo.size)).trim();
      if (s !== "little" && s !== "big") {
        throw new SyntaxError(`${where}: byteorder record says "${s}", expected little or big`);
      }
      byteOrder = s;
    }
    const storages = new Map<string, StorageRef>();
    const persistentLoad = (pid: unknown[]) => {
      const [tag, type, key, location, numel] = pid;
      if (
        pid.length !== 5 || tag !== "storage" || !(type instanceof PickleGlobal) ||
        !type.storageDtype || typeof key !== "string" || typeof location !== "string" ||
        !isCount(numel)
      ) {
        throw new TypeError(
          `persistent id must be ('storage', storage_type, key, location, numel), got (${
            pid.map(describe).join(", ")
          })`,
        );
      }
      const known = storages.get(key);
      if (known) return known;
      const recordName = `${prefix}data/${key}`;
      const rec = byName.get(recordName);
      if (!rec) {
        throw new RangeError(
          `storage record ${recordName} is missing from the zip (truncated, or not written by torch.save)`,
        );
      }
      const s = new StorageRef(
        key,
        type.storageDtype,
        location,
        numel,
        recordName,
        rec.size,
        byteOrder === "big",
        (off, len) => zip.read(rec, off, len),
      );
      storages.set(key, s);
      return s;
    };
    const root = unpickle(pkl, { persistentLoad, source: `${src.name}:${pklEntry.name}` });
    return {
      root,
      entries,
      prefix,
      source: src.name,
      byteOrder,
      readRecord(name: string) {
        const e = byName.get(name);
        if (!e) return Promise.reject(new RangeError(`${where}: no record named ${name}`));
        return zip.read(e, 0, e.size);
      },
      close: () => src.close(),
      [Symbol.dispose]: () => src.close(),
    };
  } catch (e) {
    src.close();
    throw e;
  }
}

function keysOf(x: unknown): string[] {
  if (x instanceof Map) return [...x.keys()].map(String);
  if (x !== null && typeof x === "object") return Object.keys(x);
  return [];
}

/**
 * The tensors of one state dict in the checkpoint, in saved order: `stateDict(root, "encoder")`
 * for the official `{encoder, predictor, target_encoder, opt, ...}` layout, or `stateDict(root)`
 * when the file is a bare state dict. `stripPrefix` removes a prefix (e.g. `module.`, which
 * distributed training adds) from the names that have it.
 *
 * @example
 * ```ts
 * import { openTorchCheckpoint, stateDict } from "./checkpoint.ts";
 * using ckpt = await openTorchCheckpoint("tests/fixtures/official-ijepa-tiny/checkpoint.pth.tar");
 * const enc = stateDict(ckpt.root, "encoder");
 * if (!enc.has("module.pos_embed") || enc.get("module.norm.weight")!.numel !== 24) {
 *   throw new Error("unexpected keys");
 * }
 * ```
 */
export function stateDict(
  root: unknown,
  key?: string,
  options: { stripPrefix?: string } = {},
): Map<string, LazyTensor> {
  let dict: unknown = root;
  if (key !== undefined) {
    const has = root instanceof Map
      ? root.has(key)
      : root !== null && typeof root === "object" && Object.hasOwn(root, key);
    if (!has) {
      throw new RangeError(
        `checkpoint has no "${key}" entry; its top-level keys are ${keysOf(root).join(", ")}`,
      );
    }
    dict = root instanceof Map ? root.get(key) : (root as Record<string, unknown>)[key];
  }
  const label = key ?? "the checkpoint";
  if (dict === null || typeof dict !== "object" || Array.isArray(dict)) {
    throw new TypeError(`${label} is ${describe(dict)}, not a state dict`);
  }
  const pairs = dict instanceof Map ? [...dict] : Object.entries(dict);
  const out = new Map<string, LazyTensor>();
  const strip = options.stripPrefix;
  for (const [k, v] of pairs) {
    if (typeof k !== "string") throw new TypeError(`${label}: key ${String(k)} is not a string`);
    if (!(v instanceof LazyTensor)) {
      throw new TypeError(`${label}: "${k}" is ${describe(v)}, not a tensor`);
    }
    out.set(strip && k.startsWith(strip) ? k.slice(strip.length) : k, v);
  }
  return out;
}
