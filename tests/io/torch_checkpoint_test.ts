import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import { type ByteSource, fileSource, memorySource } from "../../lib/io/byte_source.ts";
import { openTorchCheckpoint, stateDict } from "../../lib/io/torch/checkpoint.ts";
import { unpickle } from "../../lib/io/torch/pickle.ts";
import { pickleState } from "../../lib/io/torch/pickle_values.ts";
import type { LazyTensor } from "../../lib/io/torch/tensors.ts";

const FIXTURE = new URL("../fixtures/official-ijepa-tiny/", import.meta.url);
const CKPT = fileURLToPath(new URL("checkpoint.pth.tar", FIXTURE));
const expected = JSON.parse(
  await Deno.readTextFile(new URL("expected.json", FIXTURE)),
) as { keys: Record<string, number[]>; config: { embed_dim: number; img_size: number; patch_size: number } };

const enc = new TextEncoder();
/** A string of byte values 0-255 as bytes (not UTF-8: "\x80" is one byte 0x80). */
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

// ---------------------------------------------------------------------------------------------
// A tiny pickle writer (protocol 2 opcodes, by hand) and zip writer, for building test files.
// ---------------------------------------------------------------------------------------------

type Op = number[];
const u32le = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const P = {
  str: (s: string): Op => {
    const b = enc.encode(s);
    return [0x58, ...u32le(b.length), ...b]; // BINUNICODE
  },
  int: (n: number): Op =>
    n >= 0 && n < 256
      ? [0x4b, n] // BININT1
      : n >= 0 && n < 65536
      ? [0x4d, n & 255, n >> 8] // BININT2
      : [0x4a, ...u32le(n)], // BININT
  global: (module: string, name: string): Op => [0x63, ...enc.encode(`${module}\n${name}\n`)],
  tuple: (...items: Op[]): Op => [0x28, ...items.flat(), 0x74],
  dict: (...pairs: [Op, Op][]): Op => [0x7d, 0x28, ...pairs.flatMap(([k, v]) => [...k, ...v]), 0x75],
  emptyOrderedDict: (): Op => [...P.global("collections", "OrderedDict"), 0x29, 0x52],
  tensor: (
    storage: string,
    key: string,
    numel: number,
    shape: number[],
    stride: number[],
    offset = 0,
  ): Op => [
    ...P.global("torch._utils", "_rebuild_tensor_v2"),
    0x28,
    ...P.tuple(P.str("storage"), P.global("torch", storage), P.str(key), P.str("cpu"), P.int(numel)),
    0x51, // BINPERSID
    ...P.int(offset),
    ...P.tuple(...shape.map(P.int)),
    ...P.tuple(...stride.map(P.int)),
    0x89, // requires_grad False
    ...P.emptyOrderedDict(),
    0x74, // TUPLE (the arguments)
    0x52, // REDUCE
  ],
  pickle: (body: Op): Uint8Array => new Uint8Array([0x80, 0x02, ...body, 0x2e]),
};

interface Rec {
  name: string;
  data: Uint8Array;
  method?: number;
  /** Instead of `data`: this many zero bytes left as a hole (a sparse file region), CRC 0. */
  hole?: number;
}

/** Little-endian bytes with a write cursor that can skip holes (written later as sparse gaps). */
class Bytes {
  chunks: { at: number; parts: number[] }[] = [];
  parts: number[] = [];
  base = 0;
  get length() {
    return this.base + this.parts.length;
  }
  u8(...v: number[]) {
    for (const x of v) this.parts.push(x);
  }
  u16(v: number) {
    this.u8(v & 255, v >>> 8);
  }
  u32(v: number) {
    this.u8(...u32le(v));
  }
  u64(v: number) {
    this.u32(v % 2 ** 32);
    this.u32(Math.floor(v / 2 ** 32));
  }
  bytes(b: Uint8Array) {
    for (const x of b) this.parts.push(x);
  }
  hole(n: number) {
    this.chunks.push({ at: this.base, parts: this.parts });
    this.base += this.parts.length + n;
    this.parts = [];
  }
  finish(): { at: number; bytes: Uint8Array }[] {
    return [...this.chunks, { at: this.base, parts: this.parts }].map((c) => ({
      at: c.at,
      bytes: new Uint8Array(c.parts),
    }));
  }
}

interface ZipOpts {
  /** Every size and offset through ZIP64 records, even for small data. */
  zip64?: boolean;
  /** A padding extra field in local headers only (torch aligns data to 64 bytes this way). */
  pad?: boolean;
  /** Flag bit 3, zero sizes in local headers and a data descriptor after the data, like torch. */
  descriptor?: boolean;
  /** Lie about a record's size in the central directory. */
  sizeOverride?: Map<string, number>;
}

/**
 * Writes a stored zip as chunks at offsets. With `zip64`, local and central headers saturate
 * their fields and carry ZIP64 extra fields, and a ZIP64 end record and locator precede a
 * saturated end record. With `pad`, local and central extra lengths differ.
 */
function zipChunks(records: Rec[], opts: ZipOpts = {}): { at: number; bytes: Uint8Array }[] {
  const out = new Bytes();
  const central = new Bytes();
  const z64 = opts.zip64 ?? false;
  for (const r of records) {
    const name = enc.encode(r.name);
    const size = r.hole ?? r.data.length;
    const crc = r.hole === undefined ? crc32(r.data) >>> 0 : 0;
    const offset = out.length;
    const flags = opts.descriptor ? 0x808 : 0x800;
    const local = new Bytes();
    if (z64) {
      local.u16(0x0001);
      local.u16(16);
      local.u64(opts.descriptor ? 0 : size);
      local.u64(opts.descriptor ? 0 : size);
    }
    if (opts.pad) {
      const before = offset + 30 + name.length + local.length + 4;
      const padLen = (64 - (before % 64)) % 64;
      local.u16(0x4246); // "FB", torch's padding field
      local.u16(padLen);
      local.u8(...new Array(padLen).fill(0x5a));
    }
    out.u32(0x04034b50);
    out.u16(z64 ? 45 : 20);
    out.u16(flags);
    out.u16(r.method ?? 0);
    out.u16(0);
    out.u16(0);
    out.u32(opts.descriptor ? 0 : crc);
    const localSize = opts.descriptor ? 0 : z64 ? 0xffffffff : size;
    out.u32(localSize);
    out.u32(localSize);
    out.u16(name.length);
    out.u16(local.length);
    out.bytes(name);
    out.u8(...local.parts);
    if (r.hole !== undefined) out.hole(r.hole);
    else out.bytes(r.data);
    if (opts.descriptor) {
      out.u32(0x08074b50);
      out.u32(crc);
      if (z64) {
        out.u64(size);
        out.u64(size);
      } else {
        out.u32(size);
        out.u32(size);
      }
    }
    const cSize = opts.sizeOverride?.get(r.name) ?? size;
    central.u32(0x02014b50);
    central.u16(z64 ? 45 : 20);
    central.u16(z64 ? 45 : 20);
    central.u16(flags);
    central.u16(r.method ?? 0);
    central.u16(0);
    central.u16(0);
    central.u32(crc);
    central.u32(z64 ? 0xffffffff : cSize);
    central.u32(z64 ? 0xffffffff : cSize);
    central.u16(name.length);
    central.u16(z64 ? 28 : 0);
    central.u16(0);
    central.u16(0);
    central.u16(0);
    central.u32(0);
    central.u32(z64 ? 0xffffffff : offset);
    central.bytes(name);
    if (z64) {
      central.u16(0x0001);
      central.u16(24);
      central.u64(cSize);
      central.u64(cSize);
      central.u64(offset);
    }
  }
  const cdOffset = out.length;
  out.u8(...central.parts);
  if (z64) {
    const recAt = out.length;
    out.u32(0x06064b50);
    out.u64(44);
    out.u16(45);
    out.u16(45);
    out.u32(0);
    out.u32(0);
    out.u64(records.length);
    out.u64(records.length);
    out.u64(central.length);
    out.u64(cdOffset);
    out.u32(0x07064b50);
    out.u32(0);
    out.u64(recAt);
    out.u32(1);
  }
  out.u32(0x06054b50);
  out.u16(0);
  out.u16(0);
  out.u16(z64 ? 0xffff : records.length);
  out.u16(z64 ? 0xffff : records.length);
  out.u32(z64 ? 0xffffffff : central.length);
  out.u32(z64 ? 0xffffffff : cdOffset);
  out.u16(0);
  return out.finish();
}

/** A zip in memory (no holes). */
function buildZip(records: Rec[], opts: ZipOpts = {}): Uint8Array {
  const chunks = zipChunks(records, opts);
  assert.equal(chunks.length, 1, "holes need writeSparseZip");
  return chunks[0].bytes;
}

/** A zip on disk, holes left unwritten (sparse). */
async function writeSparseZip(path: string, records: Rec[], opts: ZipOpts = {}): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (const { at, bytes } of zipChunks(records, opts)) {
    await file.seek(at, Deno.SeekMode.Start);
    let n = 0;
    while (n < bytes.length) n += await file.write(bytes.subarray(n));
  }
}

function f32bytes(...v: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(v).buffer);
}

/** A small checkpoint: several dtypes, a 0-d tensor, shared storage, plain values. */
function smallCheckpoint(top = "my_run-ep3"): Rec[] {
  const pkl = P.pickle(P.dict(
    [P.str("w"), P.tensor("FloatStorage", "0", 6, [2, 3], [3, 1])],
    [P.str("w_row1"), P.tensor("FloatStorage", "0", 6, [3], [1], 3)], // a view into storage 0
    [P.str("h"), P.tensor("HalfStorage", "1", 2, [2], [1])],
    [P.str("b"), P.tensor("BFloat16Storage", "2", 2, [2], [1])],
    [P.str("step"), P.tensor("LongStorage", "3", 1, [], [])],
    [P.str("mask"), P.tensor("BoolStorage", "4", 3, [3], [1])],
    [P.str("epoch"), P.int(3)],
    [P.str("neg"), [0x4a, ...u32le(-5 >>> 0)]],
    [P.str("huge"), [0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1]], // LONG1: 2^64
    [P.str("lr"), [0x47, ...new Uint8Array(new Float64Array([1e-3]).buffer).reverse()]],
    [P.str("flags"), P.tuple([0x88], [0x89], [0x4e])],
  ));
  return [
    { name: `${top}/data.pkl`, data: pkl },
    { name: `${top}/data/0`, data: f32bytes(1, 2, 3, 4, 5, 6) },
    { name: `${top}/data/1`, data: new Uint8Array(new Uint16Array([0x3c00, 0xc000]).buffer) },
    { name: `${top}/data/2`, data: new Uint8Array(new Uint16Array([0x3f80, 0x4040]).buffer) },
    { name: `${top}/data/3`, data: new Uint8Array(new BigInt64Array([12345678901n]).buffer) },
    { name: `${top}/data/4`, data: new Uint8Array([1, 0, 1]) },
    { name: `${top}/version`, data: enc.encode("3\n") },
    { name: `${top}/byteorder`, data: enc.encode("little") },
    { name: `${top}/.data/serialization_id`, data: enc.encode("1234567890") },
  ];
}

async function expectSmall(src: ByteSource) {
  using ckpt = await openTorchCheckpoint(src);
  assert.equal(ckpt.prefix, "my_run-ep3/");
  const r = ckpt.root as Record<string, unknown>;
  const t = (k: string) => r[k] as LazyTensor;
  assert.deepEqual([...(await t("w").readFloat32())], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(t("w").shape, [2, 3]);
  assert.deepEqual([...(await t("w_row1").readFloat32())], [4, 5, 6]);
  assert.equal(t("h").dtype, "float16");
  assert.deepEqual([...(await t("h").read())], [0x3c00, 0xc000]);
  assert.deepEqual([...(await t("h").readFloat32())], [1, -2]);
  assert.deepEqual([...(await t("b").readFloat32())], [1, 3]);
  assert.deepEqual(t("step").shape, []);
  assert.equal(t("step").numel, 1);
  assert.deepEqual([...(await t("step").read())], [12345678901n]);
  assert.deepEqual([...(await t("mask").read())], [1, 0, 1]);
  assert.equal(r.epoch, 3);
  assert.equal(r.neg, -5);
  assert.equal(r.huge, 1n << 64n);
  assert.equal(r.lr, 1e-3);
  assert.deepEqual(r.flags, [true, false, null]);
  assert.ok(Object.isFrozen(r.flags));
  assert.equal(t("w").path, "w");
  assert.equal(t("w").storage, t("w_row1").storage); // one storage, two views
}

// ---------------------------------------------------------------------------------------------
// The official fixture
// ---------------------------------------------------------------------------------------------

/** The official 2-D sin-cos embedding: first half of channels = column, second half = row. */
function sincos2d(dim: number, grid: number): Float64Array {
  const out = new Float64Array(grid * grid * dim);
  const q = dim / 4;
  for (let p = 0; p < grid * grid; p++) {
    const row = Math.floor(p / grid);
    const col = p % grid;
    for (let i = 0; i < q; i++) {
      const omega = 1 / 10000 ** (i / q);
      out[p * dim + i] = Math.sin(col * omega);
      out[p * dim + q + i] = Math.cos(col * omega);
      out[p * dim + 2 * q + i] = Math.sin(row * omega);
      out[p * dim + 3 * q + i] = Math.cos(row * omega);
    }
  }
  return out;
}

Deno.test("torch checkpoint: official fixture has the target encoder's keys and shapes", async () => {
  using ckpt = await openTorchCheckpoint(CKPT);
  assert.equal(ckpt.prefix, "checkpoint.pth/");
  assert.equal(ckpt.byteOrder, "little");
  const target = stateDict(ckpt.root, "target_encoder");
  assert.deepEqual(
    [...target].map(([k, t]) => [k, [...t.shape]]),
    Object.entries(expected.keys),
  );
  for (const t of target.values()) assert.equal(t.dtype, "float32");
  const stripped = stateDict(ckpt.root, "encoder", { stripPrefix: "module." });
  assert.deepEqual([...stripped.keys()], Object.keys(expected.keys).map((k) => k.slice(7)));
  const qkv = stripped.get("blocks.0.attn.qkv.weight")!;
  assert.deepEqual(qkv.shape, [72, 24]); // [3D, D]
  assert.equal((await qkv.readFloat32()).length, 72 * 24);
  assert.throws(
    () => stateDict(ckpt.root, "decoder"),
    /no "decoder" entry; its top-level keys are encoder, predictor/,
  );
  assert.throws(() => stateDict(ckpt.root, "opt"), /opt: "state" is a dict, not a tensor/);
});

Deno.test("torch checkpoint: official fixture's plain values and optimizer state", async () => {
  using ckpt = await openTorchCheckpoint(CKPT);
  const root = ckpt.root as {
    epoch: number;
    batch_size: number;
    world_size: number;
    scaler: null;
    lr: number;
    loss: number;
    opt: {
      state: Map<number, { step: LazyTensor; exp_avg: LazyTensor; exp_avg_sq: LazyTensor }>;
      param_groups: { params: number[]; weight_decay: number; WD_exclude?: boolean }[];
    };
  };
  assert.equal(root.epoch, 1);
  assert.equal(root.batch_size, 2);
  assert.equal(root.world_size, 1);
  assert.equal(root.scaler, null);
  assert.equal(typeof root.loss, "number");
  const { state, param_groups: groups } = root.opt;
  assert.equal(groups.length, 4);
  assert.deepEqual(groups.map((g) => g.WD_exclude ?? false), [false, false, true, true]);
  assert.deepEqual(groups.slice(2).map((g) => g.weight_decay), [0, 0]);
  // Int keys make `state` a Map, in saved order.
  assert.ok(state instanceof Map);
  const params = new Set(groups.flatMap((g) => g.params));
  assert.ok(state.size > 0 && state.size <= params.size);
  for (const [k, s] of state) {
    assert.equal(typeof k, "number");
    assert.ok(params.has(k), `state key ${k} is in no param group`);
    assert.deepEqual(s.step.shape, [], "step is 0-d");
    assert.deepEqual([...(await s.step.readFloat32())], [1], "one training step");
    assert.deepEqual(s.exp_avg.shape, s.exp_avg_sq.shape);
    assert.ok((await s.exp_avg_sq.readFloat32()).every((v) => v >= 0));
  }
  assert.equal(state.get(1)!.exp_avg.path, "opt/state/1/exp_avg");
});

Deno.test("torch checkpoint: pos_embed matches the official 2-D sin-cos within 1e-5", async () => {
  using ckpt = await openTorchCheckpoint(CKPT);
  const { embed_dim: dim, img_size, patch_size } = expected.config;
  const grid = img_size / patch_size;
  const want = sincos2d(dim, grid);
  for (const which of ["encoder", "target_encoder"]) {
    const pe = stateDict(ckpt.root, which).get("module.pos_embed")!;
    assert.deepEqual(pe.shape, [1, grid * grid, dim]);
    const got = await pe.readFloat32(); // [1, N, D]
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    assert.ok(worst < 1e-5, `${which}: max |error| ${worst}`);
  }
  // A sanity check of the formula itself: patch 5 = row 1, col 1, channel 0 = sin(1).
  assert.equal(want[5 * dim], Math.sin(1));
  assert.equal(want[5 * dim + dim / 2], Math.sin(1));
});

function counting(src: ByteSource): { src: ByteSource; reads: [number, number][] } {
  const reads: [number, number][] = [];
  return {
    reads,
    src: {
      name: src.name,
      size: src.size,
      read(offset, length) {
        reads.push([offset, length]);
        return src.read(offset, length);
      },
      close: () => src.close(),
    },
  };
}

Deno.test("torch checkpoint: opening reads the directory and pickle only; a tensor reads its bytes", async () => {
  const { src, reads } = counting(await fileSource(CKPT));
  using ckpt = await openTorchCheckpoint(src);
  const atOpen = reads.reduce((a, [, n]) => a + n, 0);
  const pkl = ckpt.entries.find((e) => e.name.endsWith("data.pkl"))!;
  assert.ok(atOpen < src.size / 2, `open read ${atOpen} of ${src.size} bytes`);
  assert.ok(atOpen < 66000 + 20000 + pkl.size, `open read ${atOpen} bytes`);
  reads.length = 0;
  const t = stateDict(ckpt.root, "predictor").get("module.predictor_embed.weight")!;
  const data = await t.readFloat32();
  assert.equal(data.length, t.numel);
  // One read of the local header (fixed part + name), one of exactly the tensor's bytes.
  assert.equal(reads.length, 2);
  assert.equal(reads[0][1], 30 + `${ckpt.prefix}data/${t.storage.key}`.length);
  assert.equal(reads[1][1], t.byteLength);
  // The local header is cached: a second read costs only the tensor.
  reads.length = 0;
  await t.read();
  assert.deepEqual(reads.map(([, n]) => n), [t.byteLength]);
});

Deno.test("torch checkpoint: concurrent reads equal sequential reads", async () => {
  using ckpt = await openTorchCheckpoint(CKPT);
  const tensors = [...stateDict(ckpt.root, "target_encoder").values()];
  const together = await Promise.all(tensors.map((t) => t.readFloat32()));
  for (let i = 0; i < tensors.length; i++) {
    assert.deepEqual(together[i], await tensors[i].readFloat32(), tensors[i].path);
  }
});

// ---------------------------------------------------------------------------------------------
// Built archives: ZIP64, newer-PyTorch records, byte order
// ---------------------------------------------------------------------------------------------

Deno.test("torch checkpoint: a ZIP64 archive (records, extras, padded local headers) reads back", async () => {
  const zip = buildZip(smallCheckpoint(), { zip64: true, pad: true });
  // The archive really is ZIP64: saturated end record, locator, ZIP64 end record.
  const dv = new DataView(zip.buffer);
  assert.equal(dv.getUint32(zip.length - 22, true), 0x06054b50);
  assert.equal(dv.getUint32(zip.length - 22 + 16, true), 0xffffffff);
  assert.equal(dv.getUint32(zip.length - 42, true), 0x07064b50);
  await expectSmall(memorySource(zip, "zip64.pth"));
  // The same through a file, with torch's data-descriptor flag and no padding.
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/zip64.pth.tar`;
    await Deno.writeFile(path, buildZip(smallCheckpoint(), { zip64: true, descriptor: true }));
    await expectSmall(await fileSource(path));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("torch checkpoint: ZIP64 offsets past 4 GiB in a sparse file, read lazily", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Skip where the file system would really write the 5 GiB hole.
    const probe = `${dir}/probe`;
    await Deno.writeFile(probe, new Uint8Array(0));
    await Deno.truncate(probe, 5 * 2 ** 30);
    const { blocks } = await Deno.stat(probe);
    await Deno.remove(probe);
    if (blocks === null || blocks * 512 > 1 << 20) {
      console.warn("skipped: this file system has no sparse files");
      return;
    }
    const recs = smallCheckpoint();
    // A 5 GiB record after the pickle puts every tensor record past 4 GiB.
    recs.splice(1, 0, { name: "my_run-ep3/.data/filler", data: new Uint8Array(0), hole: 5 * 2 ** 30 });
    const path = `${dir}/huge.pth.tar`;
    await writeSparseZip(path, recs, { zip64: true, pad: true, descriptor: true });
    const { src, reads } = counting(await fileSource(path));
    assert.ok(src.size > 5 * 2 ** 30);
    await expectSmall(src);
    assert.ok(reads.some(([at]) => at > 2 ** 32), "read past 4 GiB");
    const total = reads.reduce((a, [, n]) => a + n, 0);
    assert.ok(total < 100_000, `read ${total} bytes of ${src.size}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("torch checkpoint: a plain zip with newer-PyTorch records reads back", async () => {
  await expectSmall(memorySource(buildZip(smallCheckpoint(), { pad: true, descriptor: true })));
  using ckpt = await openTorchCheckpoint(memorySource(buildZip(smallCheckpoint())));
  assert.equal(ckpt.entries.length, 9);
  assert.equal(new TextDecoder().decode(await ckpt.readRecord("my_run-ep3/version")), "3\n");
});

Deno.test("torch checkpoint: a big-endian byteorder record swaps elements on read", async () => {
  const recs = smallCheckpoint();
  const be = (arr: Uint8Array, size: number) => {
    const out = arr.slice();
    for (let i = 0; i < out.length; i += size) out.subarray(i, i + size).reverse();
    return out;
  };
  for (const r of recs) {
    if (r.name.endsWith("byteorder")) r.data = enc.encode("big");
    if (r.name.endsWith("data/0")) r.data = be(r.data, 4);
    if (r.name.endsWith("data/1") || r.name.endsWith("data/2")) r.data = be(r.data, 2);
    if (r.name.endsWith("data/3")) r.data = be(r.data, 8);
  }
  using ckpt = await openTorchCheckpoint(memorySource(buildZip(recs)));
  assert.equal(ckpt.byteOrder, "big");
  const r = ckpt.root as Record<string, LazyTensor>;
  assert.deepEqual([...(await r.w.readFloat32())], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...(await r.h.readFloat32())], [1, -2]);
  assert.deepEqual([...(await r.step.read())], [12345678901n]);
});

// ---------------------------------------------------------------------------------------------
// Failures: truncation, bad zips, tampered pickles, refused globals, bad tensors
// ---------------------------------------------------------------------------------------------

Deno.test("torch checkpoint: truncated copies of the fixture fail, naming what is missing", async () => {
  const full = await Deno.readFile(CKPT);
  for (const keep of [Math.floor(full.length / 2), full.length - 1, full.length - 30]) {
    await assert.rejects(
      () => openTorchCheckpoint(memorySource(full.subarray(0, keep), "cut.pth.tar")),
      new RegExp(
        `torch checkpoint cut\\.pth\\.tar: no end-of-central-directory record .*the file ` +
          `\\(${keep} bytes\\) is truncated or not a zip`,
      ),
    );
  }
  await assert.rejects(
    () => openTorchCheckpoint(memorySource(full.subarray(0, 10), "ten")),
    /torch checkpoint ten: 10 bytes is too short for a zip/,
  );
});

Deno.test("torch checkpoint: a record running past the end of the file is reported with its byte range", async () => {
  const recs = smallCheckpoint();
  const zip = buildZip(recs, { descriptor: true, sizeOverride: new Map([["my_run-ep3/data/0", 1 << 20]]) });
  using ckpt = await openTorchCheckpoint(memorySource(zip, "lies.pth"));
  const w = (ckpt.root as Record<string, LazyTensor>).w;
  await assert.rejects(
    () => w.read(),
    /torch checkpoint lies\.pth: record my_run-ep3\/data\/0: needs bytes \[\d+, \d+\) but the file ends at byte \d+: truncated/,
  );
});

Deno.test("torch checkpoint: a missing storage record is named at open", async () => {
  const recs = smallCheckpoint().filter((r) => !r.name.endsWith("data/2"));
  await assert.rejects(
    () => openTorchCheckpoint(memorySource(buildZip(recs), "gap.pth")),
    /storage record my_run-ep3\/data\/2 is missing from the zip/,
  );
});

Deno.test("torch checkpoint: a storage record shorter than its tensor names key and byte counts", async () => {
  const recs = smallCheckpoint();
  recs[1].data = recs[1].data.subarray(0, 8); // data/0 keeps 8 of 24 bytes
  using ckpt = await openTorchCheckpoint(memorySource(buildZip(recs)));
  const r = ckpt.root as Record<string, LazyTensor>;
  await assert.rejects(
    () => r.w.read(),
    /storage record my_run-ep3\/data\/0 \(key 0\) holds 8 bytes, but tensor w \(float32 \[2, 3\] at storage offset 0\) needs 24/,
  );
  await assert.rejects(() => r.w_row1.read(), /holds 8 bytes, but tensor w_row1 .*needs 24/);
});

Deno.test("torch checkpoint: not a zip, legacy format, compressed records", async () => {
  await assert.rejects(
    () =>
      openTorchCheckpoint(
        memorySource(latin1("\x80\x02\x8a\x0alz\xfc\x9cF\xf9 j\xa8P\x19.".padEnd(64)), "old.pt"),
      ),
    /torch checkpoint old\.pt: bad zip signature: expected 50 4b 03 04 .* found 80 02 8a 0a .*legacy torch\.save file/,
  );
  await assert.rejects(
    () => openTorchCheckpoint(memorySource(enc.encode("hello, this is not a checkpoint at all"), "x")),
    /bad zip signature: expected 50 4b 03 04 \("PK\\3\\4"\) at byte 0, found 68 65 6c 6c/,
  );
  const recs = smallCheckpoint();
  recs[1].method = 8;
  using ckpt = await openTorchCheckpoint(memorySource(buildZip(recs)));
  await assert.rejects(
    () => (ckpt.root as Record<string, LazyTensor>).w.read(),
    /record my_run-ep3\/data\/0 is compressed \(method 8\)/,
  );
  const noPickle = buildZip([{ name: "a/b.txt", data: enc.encode("x") }]);
  await assert.rejects(
    () => openTorchCheckpoint(memorySource(noPickle)),
    /expected one <top>\/data\.pkl record, found 0 \(records: a\/b\.txt\)/,
  );
});

/** The fixture's records, for rebuilding it with one record changed. */
async function fixtureRecords(): Promise<Rec[]> {
  using ckpt = await openTorchCheckpoint(CKPT);
  const out: Rec[] = [];
  for (const e of ckpt.entries) out.push({ name: e.name, data: await ckpt.readRecord(e.name) });
  return out;
}

Deno.test("torch checkpoint: the fixture rebuilt by the test writer reads the same", async () => {
  const recs = await fixtureRecords();
  using a = await openTorchCheckpoint(memorySource(buildZip(recs, { zip64: true, pad: true })));
  using b = await openTorchCheckpoint(CKPT);
  const ta = stateDict(a.root, "target_encoder");
  const tb = stateDict(b.root, "target_encoder");
  for (const [k, t] of tb) assert.deepEqual(await ta.get(k)!.readFloat32(), await t.readFloat32(), k);
});

Deno.test("torch checkpoint: tampered pickles fail with the opcode and byte", async () => {
  const recs = await fixtureRecords();
  const pkl = recs.find((r) => r.name.endsWith("data.pkl"))!;
  const original = pkl.data;
  const withPickle = (bytes: Uint8Array) => {
    pkl.data = bytes;
    return memorySource(buildZip(recs), "tampered.pth");
  };
  // Byte 2 is EMPTY_DICT; make it an opcode that does not exist.
  const bad = original.slice();
  assert.equal(bad[2], 0x7d);
  bad[2] = 0xff;
  await assert.rejects(
    () => openTorchCheckpoint(withPickle(bad)),
    /pickle tampered\.pth:checkpoint\.pth\/data\.pkl: unknown pickle opcode .*\(opcode 0xff at byte 2\)/,
  );
  // STOP missing: the last byte cut off.
  await assert.rejects(
    () => openTorchCheckpoint(withPickle(original.subarray(0, original.length - 1))),
    /ended at byte \d+ without a STOP opcode/,
  );
  // Cut in the middle of a string.
  await assert.rejects(
    () => openTorchCheckpoint(withPickle(original.subarray(0, 14))),
    /truncated: needs 7 more bytes, 3 left \(opcode BINUNICODE at byte 6\)/,
  );
  // Stack underflow: REDUCE on an empty stack.
  await assert.rejects(
    () => openTorchCheckpoint(withPickle(latin1("\x80\x02R."))),
    /stack underflow \(opcode REDUCE at byte 2\)/,
  );
  // A changed byte in the stored fixture (no re-zip) is caught by the CRC.
  const raw = (await Deno.readFile(CKPT)).slice();
  const at = raw.indexOf(0x7d, 64); // the pickle's EMPTY_DICT, inside data.pkl
  raw[at] = 0xff;
  await assert.rejects(
    () => openTorchCheckpoint(memorySource(raw, "flipped.pth")),
    /record checkpoint\.pth\/data\.pkl fails its CRC/,
  );
});

Deno.test("torch checkpoint: pickles asking for os.system or builtins.eval are refused", async () => {
  const asZip = (pkl: Uint8Array) =>
    memorySource(
      buildZip([{ name: "evil/data.pkl", data: pkl }, { name: "evil/data/0", data: f32bytes(1) }]),
      "evil.pth",
    );
  const system = latin1("\x80\x02cos\nsystem\nq\x00X\x08\x00\x00\x00touch /x\x85R.");
  await assert.rejects(
    () => openTorchCheckpoint(asZip(system)),
    /refusing pickle global os\.system: only collections\.OrderedDict, torch\._utils\._rebuild_tensor_v2, .* are allowed \(this reader never runs code from a file\) \(opcode GLOBAL at byte 2\)/,
  );
  // Protocol 4 style: STACK_GLOBAL with the names as SHORT_BINUNICODE strings.
  const evalP4 = latin1(
    "\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x031+1\x94\x85\x94R\x94.",
  );
  await assert.rejects(
    () => openTorchCheckpoint(asZip(evalP4)),
    /refusing pickle global builtins\.eval: only .* \(opcode STACK_GLOBAL at byte \d+\)/,
  );
  // Even inside a real-looking checkpoint, after valid tensors.
  const sneaky = P.pickle(P.dict(
    [P.str("w"), P.tensor("FloatStorage", "0", 1, [1], [1])],
    [P.str("x"), [...P.global("subprocess", "Popen"), ...P.tuple(P.str("ls")), 0x52]],
  ));
  await assert.rejects(() => openTorchCheckpoint(asZip(sneaky)), /refusing pickle global subprocess\.Popen/);
  // Opcodes that build arbitrary objects are refused by name.
  assert.throws(() => unpickle(latin1("\x80\x02(ios\nsystem\n.")), /refusing pickle opcode INST/);
  assert.throws(
    () => unpickle(latin1("\x80\x02ctorch\nFloatStorage\n)R.")),
    /torch\.FloatStorage cannot be called/,
  );
  assert.throws(() => unpickle(latin1("\x80\x06N.")), /unknown pickle protocol 6/);
});

Deno.test("torch checkpoint: non-contiguous tensors are refused on read; size-1 strides are free", async () => {
  const pkl = P.pickle(P.dict(
    [P.str("t"), P.tensor("FloatStorage", "0", 6, [2, 3], [1, 2])], // a transpose
    [P.str("row"), P.tensor("FloatStorage", "0", 6, [1, 3], [99, 1])],
    [P.str("empty"), P.tensor("FloatStorage", "0", 6, [0, 3], [7, 7])],
  ));
  const zip = buildZip([
    { name: "nc/data.pkl", data: pkl },
    { name: "nc/data/0", data: f32bytes(1, 2, 3, 4, 5, 6) },
  ]);
  using ckpt = await openTorchCheckpoint(memorySource(zip));
  const r = ckpt.root as Record<string, LazyTensor>;
  assert.equal(r.t.isContiguous, false);
  await assert.rejects(
    () => r.t.read(),
    /tensor t is not contiguous: shape \[2, 3\], stride \[1, 2\], expected stride \[3, 1\]/,
  );
  assert.deepEqual([...(await r.row.readFloat32())], [1, 2, 3]);
  assert.equal((await r.empty.read()).length, 0);
});

// ---------------------------------------------------------------------------------------------
// The pickle machine on its own
// ---------------------------------------------------------------------------------------------

Deno.test("unpickle: the opcodes torch.save uses, memo, and dict representation", () => {
  // Built by hand; the same bytes disassemble cleanly with Python's pickletools.
  const framed = [
    0x7d,
    0x94, // EMPTY_DICT, MEMOIZE -> memo 0
    0x28, // MARK
    0x8c,
    1,
    0x61,
    0x8d,
    3,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0x78,
    0x79,
    0x7a, // "a": BINUNICODE8 "xyz"
    0x55,
    1,
    0x62,
    0x54,
    2,
    0,
    0,
    0,
    0x68,
    0x69, // "b": BINSTRING "hi"
    0x8c,
    1,
    0x63,
    0x43,
    2,
    1,
    2, // "c": SHORT_BINBYTES
    0x8c,
    1,
    0x64,
    0x42,
    1,
    0,
    0,
    0,
    9, // "d": BINBYTES
    0x8c,
    1,
    0x65,
    0x8a,
    1,
    0xff, // "e": LONG1 -1
    0x8c,
    1,
    0x66,
    0x8a,
    0, // "f": LONG1 0 (no bytes)
    0x8c,
    1,
    0x67,
    0x28,
    0x4b,
    1,
    0x4b,
    2,
    0x6c,
    0x72,
    7,
    0,
    0,
    0,
    0x4b,
    3,
    0x61, // "g": LIST [1, 2] + APPEND 3, LONG_BINPUT 7
    0x8c,
    1,
    0x68,
    0x6a,
    7,
    0,
    0,
    0, // "h": LONG_BINGET 7: the same list
    0x8c,
    1,
    0x69,
    0x4b,
    1,
    0x85,
    0x4b,
    1,
    0x4b,
    2,
    0x86,
    0x4b,
    1,
    0x4b,
    2,
    0x4b,
    3,
    0x87,
    0x87, // TUPLE1/2/3
    0x8c,
    1,
    0x6a,
    0x28,
    0x4b,
    5,
    0x8c,
    1,
    0x7a,
    0x64, // "j": DICT {5: "z"}
    0x8c,
    1,
    0x6b,
    0x63,
    ...enc.encode("collections\nOrderedDict\n"),
    0x29,
    0x81, // NEWOBJ
    0x8c,
    1,
    0x6b,
    0x8c,
    1,
    0x6b,
    0x73, // ... SETITEM "k" -> "k"
    0x7d,
    0x8c,
    9,
    ...enc.encode("_metadata"),
    0x4b,
    1,
    0x73,
    0x62, // BUILD {"_metadata": 1}
    0x8c,
    1,
    0x6c,
    0x68,
    0, // "l": BINGET 0: the root itself (a cycle)
    0x75, // SETITEMS
    0x2e, // STOP
  ];
  // PROTO 4, then one FRAME (a length prefix the reader skips) around everything else.
  const bytes = new Uint8Array([0x80, 4, 0x95, ...u32le(framed.length), 0, 0, 0, 0, ...framed]);
  const v = unpickle(bytes) as Record<string, unknown>;
  assert.deepEqual(Object.keys(v), ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]);
  assert.equal(v.a, "xyz");
  assert.equal(v.b, "hi");
  assert.deepEqual(v.c, new Uint8Array([1, 2]));
  assert.deepEqual(v.d, new Uint8Array([9]));
  assert.equal(v.e, -1);
  assert.equal(v.f, 0);
  assert.deepEqual(v.g, [1, 2, 3]);
  assert.equal(v.h, v.g); // memo keeps identity
  assert.deepEqual(v.i, [[1], [1, 2], [1, 2, 3]]);
  assert.ok(v.j instanceof Map && v.j.get(5) === "z");
  assert.deepEqual(v.k, { k: "k" });
  assert.deepEqual((v.k as unknown as { [pickleState]: unknown })[pickleState], { _metadata: 1 });
  assert.equal(v.l, v); // cycles survive
});

Deno.test("unpickle: key order is kept; index-like or non-string keys give a Map", () => {
  const d = (pairs: [number[], number[]][]) => unpickle(P.pickle(P.dict(...pairs)));
  const o = d([[P.str("b"), P.int(1)], [P.str("a"), P.int(2)]]) as Record<string, number>;
  assert.deepEqual(Object.keys(o), ["b", "a"]);
  const m = d([[P.str("b"), P.int(1)], [P.str("0"), P.int(2)]]);
  assert.ok(m instanceof Map);
  assert.deepEqual([...m.keys()], ["b", "0"]);
  const p = d([[P.str("__proto__"), P.int(1)]]) as Record<string, number>;
  assert.equal(Object.getPrototypeOf(p), Object.prototype);
  assert.deepEqual(Object.keys(p), ["__proto__"]);
});

Deno.test("unpickle: malformed pickles name the problem", () => {
  const cases: [string, RegExp][] = [
    ["\x80\x02", /ended at byte 2 without a STOP opcode/],
    ["\x80\x02t.", /no MARK on the stack \(opcode TUPLE at byte 2\)/],
    ["\x80\x02(.", /stack underflow \(opcode STOP at byte 3\)/],
    ["\x80\x02h\x05.", /memo key 5 was never stored \(opcode BINGET at byte 2\)/],
    ["\x80\x02K\x01K\x02a.", /expected a list, found a number \(opcode APPEND at byte 6\)/],
    ["\x80\x02)K\x01a.", /expected a list, found a tuple or list/],
    ["\x80\x02}(K\x01u.", /odd number of items for a dict/],
    ["\x80\x02X\x02\x00\x00\x00\xff\xfe.", /invalid UTF-8 in a string \(opcode BINUNICODE at byte 2\)/],
    ["\x80\x02cos\nsys", /no newline ending the global's name/],
    ["\x80\x02(X\x01\x00\x00\x00aQ.", /a persistent id, but no persistentLoad given/],
    ["\x80\x02K\x01K\x02b.", /BUILD on a number is not supported/],
  ];
  for (const [src, re] of cases) {
    assert.throws(() => unpickle(latin1(src), { source: "case" }), (e: Error) => {
      assert.match(e.message, /^pickle case: /);
      assert.match(e.message, re);
      return true;
    }, JSON.stringify(src));
  }
  // Bad arguments to an allowed global.
  const badTensor = P.pickle([
    ...P.global("torch._utils", "_rebuild_tensor_v2"),
    ...P.tuple(P.int(1), P.int(2)),
    0x52,
  ]);
  assert.throws(() => unpickle(badTensor), /_rebuild_tensor_v2: expected 6 or 7 arguments, got 2/);
});
