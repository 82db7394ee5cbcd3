import assert from "node:assert/strict";
import { Rng } from "../../lib/engine/rng.ts";
import { type ByteSource, fileSource, memorySource } from "../../lib/io/byte_source.ts";
import type { SafetensorsDtype, TensorData } from "../../lib/io/dtypes.ts";
import {
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
} from "../../lib/io/half.ts";
import { decodeSafetensors, openSafetensors } from "../../lib/io/safetensors_read.ts";
import { encodeSafetensors, type StoredTensor, writeSafetensors } from "../../lib/io/safetensors_write.ts";

const enc = new TextEncoder();

function bytesOf(d: TensorData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Random bit patterns for every dtype (floats include NaNs with payloads, infinities, ...). */
function randomTensor(rng: Rng, dtype: SafetensorsDtype, shape: number[]): StoredTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const size = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 }[
    dtype
  ];
  const raw = new Uint8Array(n * size);
  for (let i = 0; i < raw.length; i++) raw[i] = rng.int(0, 256);
  const buf = raw.buffer;
  const data: TensorData = {
    F64: () => new Float64Array(buf),
    F32: () => new Float32Array(buf),
    F16: () => new Uint16Array(buf),
    BF16: () => new Uint16Array(buf),
    I64: () => new BigInt64Array(buf),
    I32: () => new Int32Array(buf),
    I16: () => new Int16Array(buf),
    I8: () => new Int8Array(buf),
    U8: () => new Uint8Array(buf),
    BOOL: () => raw.map((b) => b & 1),
  }[dtype]();
  return { dtype, shape, data };
}

const ALL: SafetensorsDtype[] = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"];

function sampleTensors(seed: number): Record<string, StoredTensor> {
  const rng = new Rng(seed);
  const out: Record<string, StoredTensor> = {};
  for (const dt of ALL) {
    out[`${dt}.matrix`] = randomTensor(rng, dt, [3, 5]);
    out[`${dt}.scalar`] = randomTensor(rng, dt, []); // 0-d: one element
    out[`${dt}.empty`] = randomTensor(rng, dt, [0, 4]);
  }
  out["blocks.0.attn.qkv.weight"] = randomTensor(rng, "F32", [72, 24]); // [3D, D]
  return out;
}

const META = {
  format: "ijepa-deno/1",
  preset: "tiny",
  config: JSON.stringify({ embedDim: 24, depth: 2, note: "ünïcødé ✓" }),
  ["__proto__"]: "a key like any other", // computed: an own key, not the prototype
};

function assertSameTensors(
  got: { names(): string[]; info(n: string): { dtype: string; shape: number[] } },
  read: (n: string) => TensorData,
  want: Record<string, StoredTensor>,
) {
  assert.deepEqual(got.names(), Object.keys(want));
  for (const [name, t] of Object.entries(want)) {
    const info = got.info(name);
    assert.equal(info.dtype, t.dtype, name);
    assert.deepEqual(info.shape, t.shape, name);
    const data = read(name);
    assert.equal(data.constructor, t.data.constructor, name);
    assert.deepEqual(bytesOf(data), bytesOf(t.data), `${name} is not bit-exact`);
  }
}

Deno.test("safetensors: in-memory round trip is bit-exact for every dtype, 0-d and empty", () => {
  const tensors = sampleTensors(1);
  const st = decodeSafetensors(encodeSafetensors(tensors, META));
  assertSameTensors(st, (n) => st.read(n), tensors);
  assert.deepEqual({ ...st.metadata }, { ...META });
  assert.equal(Object.getPrototypeOf(st.metadata), Object.prototype);
  assert.equal(st.metadata["__proto__"], "a key like any other");
});

Deno.test("safetensors: file round trip through write/open, lazy and bit-exact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/model.safetensors`;
    const tensors = sampleTensors(2);
    await writeSafetensors(path, tensors, META);
    using st = await openSafetensors(path);
    const read: Record<string, TensorData> = {};
    for (const n of st.names()) read[n] = await st.read(n);
    assertSameTensors(st, (n) => read[n], tensors);
    assert.deepEqual({ ...st.metadata }, { ...META });
    // The file is byte-identical to the in-memory encoding.
    assert.deepEqual(await Deno.readFile(path), encodeSafetensors(tensors, META));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: header is 8-aligned and every tensor starts on its element size", () => {
  const tensors = sampleTensors(3);
  const bytes = encodeSafetensors(tensors, { a: "b" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assert.deepEqual(Object.keys(header)[0], "__metadata__");
  for (const [name, t] of Object.entries(tensors)) {
    const size = (t.data.constructor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
    assert.equal(header[name].data_offsets[0] % size, 0, name);
  }
  assert.equal(bytes.length, 8 + n + Object.values(tensors).reduce((a, t) => a + t.data.byteLength, 0));
});

Deno.test("safetensors: no metadata round-trips as {}", () => {
  const st = decodeSafetensors(
    encodeSafetensors({ x: { dtype: "U8", shape: [2], data: new Uint8Array([1, 2]) } }),
  );
  assert.deepEqual({ ...st.metadata }, {});
  assert.deepEqual([...st.read("x")], [1, 2]);
});

Deno.test("safetensors: readFloat32 converts F16, BF16, F64, I64 and ints", () => {
  const st = decodeSafetensors(encodeSafetensors({
    h: { dtype: "F16", shape: [4], data: new Uint16Array([0x3c00, 0xc000, 0x3555, 0x7c00]) },
    b: { dtype: "BF16", shape: [2], data: new Uint16Array([0x3f80, 0xc0a0]) },
    d: { dtype: "F64", shape: [2], data: new Float64Array([0.5, -1e300]) },
    l: { dtype: "I64", shape: [2], data: new BigInt64Array([-3n, 1n << 40n]) },
    i: { dtype: "I8", shape: [2], data: new Int8Array([-128, 127]) },
  }));
  assert.deepEqual([...st.readFloat32("h")], [1, -2, 0.333251953125, Infinity]);
  assert.deepEqual([...st.readFloat32("b")], [1, -5]);
  assert.deepEqual([...st.readFloat32("d")], [0.5, -Infinity]);
  assert.deepEqual([...st.readFloat32("l")], [-3, 2 ** 40]);
  assert.deepEqual([...st.readFloat32("i")], [-128, 127]);
  assert.ok(st.read("l") instanceof BigInt64Array);
});

Deno.test("safetensors: readInt32 narrows I64 and refuses values outside Int32", () => {
  const st = decodeSafetensors(encodeSafetensors({
    ok: { dtype: "I64", shape: [3], data: new BigInt64Array([0n, -2147483648n, 2147483647n]) },
    big: { dtype: "I64", shape: [1], data: new BigInt64Array([2147483648n]) },
    f: { dtype: "F32", shape: [1], data: new Float32Array([1]) },
    flags: { dtype: "BOOL", shape: [2], data: new Uint8Array([1, 0]) },
  }));
  assert.deepEqual([...st.readInt32("ok")], [0, -2147483648, 2147483647]);
  assert.deepEqual([...st.readInt32("flags")], [1, 0]);
  assert.throws(() => st.readInt32("big"), /I64 element 0 = 2147483648 does not fit in an Int32/);
  assert.throws(() => st.readInt32("f"), /needs an integer or BOOL tensor, got F32/);
});

Deno.test("float16 <-> float32: every half decodes exactly and re-encodes to itself", () => {
  const bits = new Uint16Array(65536).map((_, i) => i);
  const f = float16ToFloat32(bits);
  const back = float32ToFloat16(f);
  for (let i = 0; i < 65536; i++) {
    const isNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
    if (isNaN) assert.ok(Number.isNaN(f[i]), `0x${i.toString(16)}`);
    else assert.equal(back[i], i, `0x${i.toString(16)} -> ${f[i]} -> 0x${back[i].toString(16)}`);
  }
  // A reference where the runtime has one (Float16Array, V8 >= 13.x).
  const F16 = (globalThis as { Float16Array?: new (b: ArrayBuffer) => ArrayLike<number> })
    .Float16Array;
  if (F16) {
    const ref = new F16(bits.buffer);
    for (let i = 0; i < 65536; i++) {
      if (!Number.isNaN(ref[i])) assert.equal(f[i], ref[i], `0x${i.toString(16)}`);
    }
  }
});

Deno.test("float32 -> float16 rounds to nearest even, like Math.f16round", () => {
  const rng = new Rng(7);
  const x = new Float32Array(20000);
  const u = new Uint32Array(x.buffer);
  for (let i = 0; i < u.length; i++) u[i] = rng.nextUint32();
  // Values around the half range, halfway cases, subnormals and overflow.
  const edge = [
    0,
    -0,
    1,
    1 + 2 ** -11, // halfway between 1 and the next half: rounds to even (1)
    1 + 3 * 2 ** -11, // halfway, rounds up to even
    65504,
    65519.99,
    65520, // rounds to infinity
    2 ** -24,
    2 ** -25, // halfway to the smallest subnormal: rounds to 0
    2 ** -25 * 1.0000001,
    2 ** -14 - 2 ** -25, // just below the smallest normal
    -3e-8,
    Infinity,
    -Infinity,
  ];
  for (let i = 0; i < 2000; i++) x[i] = rng.uniform(-70000, 70000) * (i % 2 ? 1 : 1e-6);
  x.set(edge, 2000);
  const h = float32ToFloat16(x);
  const back = float16ToFloat32(h);
  const f16round = (Math as { f16round?: (v: number) => number }).f16round;
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i])) {
      assert.ok(Number.isNaN(back[i]));
      continue;
    }
    if (f16round) assert.equal(back[i], f16round(x[i]), `x=${x[i]}`);
  }
  assert.deepEqual([...float16ToFloat32(float32ToFloat16(new Float32Array(edge)))].slice(0, 10), [
    0,
    -0,
    1,
    1,
    1 + 2 * 2 ** -10,
    65504,
    65504,
    Infinity,
    2 ** -24,
    0,
  ]);
});

Deno.test("float32 <-> bfloat16: exact decode, round-to-nearest-even encode, NaN kept", () => {
  const bits = new Uint16Array(65536).map((_, i) => i);
  const f = bfloat16ToFloat32(bits);
  const back = float32ToBfloat16(f);
  for (let i = 0; i < 65536; i++) {
    if (Number.isNaN(f[i])) assert.ok(Number.isNaN(bfloat16ToFloat32(back.subarray(i, i + 1))[0]));
    else assert.equal(back[i], i);
  }
  const x = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, NaN]);
  const b = float32ToBfloat16(x);
  assert.equal(b[0], 0x3f80); // halfway: to even
  assert.equal(b[1], 0x3f82); // halfway: to even (up)
  assert.equal(b[2], 0x3f81); // above halfway: up
  assert.ok(Number.isNaN(bfloat16ToFloat32(b.subarray(3))[0]));
  // A NaN whose payload sits only in the low 16 bits must not become infinity.
  const lowNaN = new Float32Array(new Uint32Array([0x7f800001]).buffer);
  assert.ok(Number.isNaN(bfloat16ToFloat32(float32ToBfloat16(lowNaN))[0]));
});

// ---------------------------------------------------------------------------------------------
// Corrupt files
// ---------------------------------------------------------------------------------------------

/** A file with the given header text (padded) and `dataBytes` zero bytes of data. */
function rawFile(header: string | object, dataBytes: number, lengthField?: bigint): Uint8Array {
  const json = enc.encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({
  dtype: "F32",
  shape,
  data_offsets: [begin, end],
});

Deno.test("safetensors: each corrupt case fails with a message naming the problem", () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["short file", new Uint8Array(5), /5 bytes is shorter than the 8-byte header length/],
    [
      "header length beyond the file (truncated in the header)",
      rawFile({}, 0, 1000n),
      /truncated or corrupt: its first 8 bytes give a header of 1000 bytes, but only 2 bytes follow them \(the file is 10 bytes\)/,
    ],
    [
      "header length 2^64-1",
      rawFile({}, 0, (1n << 64n) - 1n),
      /truncated or corrupt: its first 8 bytes give a header of 18446744073709551615 bytes/,
    ],
    [
      "a text file",
      enc.encode("# ijepa-deno\n\nA Deno-first toolkit"),
      /not a safetensors file: expected an 8-byte little-endian header length followed by a JSON header starting with "\{", but it starts with "# ijepa-" \(23 20 69 6a 65 70 61 2d\)$/,
    ],
    [
      "a zip (torch.save)",
      enc.encode("PK\x03\x04\x00\x00\x08\x08rest of a zip"),
      /not a safetensors file: .* it starts with "PK\.\.\.\.\.\." \(50 4b 03 04 00 00 08 08\), a zip archive as torch\.save writes .* loadModel opens either kind/,
    ],
    [
      "a 5-byte text",
      enc.encode("hello"),
      /5 bytes is shorter than the 8-byte header length of a safetensors file \(it starts with "hello"/,
    ],
    ["header not JSON", rawFile("{not json", 0), /header is not JSON .*"\{not json"/],
    ["header is an array", rawFile("[1, 2]", 0), /not a safetensors file: .*JSON header starting with "\{"/],
    [
      "invalid UTF-8",
      (() => {
        const b = rawFile('{"a":1}', 0);
        b[10] = 0xff;
        return b;
      })(),
      /header is not valid UTF-8/,
    ],
    [
      "offsets past the buffer (truncated in the data)",
      rawFile({ a: f32([2], 0, 8), b: f32([2], 8, 16) }, 12),
      /truncated or corrupt: the header places tensor data up to byte 16 after it \(tensor "b"\), but only 12 bytes follow the header \(4 missing\)/,
    ],
    [
      "offsets out of range",
      rawFile({ a: f32([2], -8, 0) }, 8),
      /tensor "a": data_offsets \[-8,0\] out of range; the data buffer holds 8 bytes/,
    ],
    [
      "offsets reversed",
      rawFile({ a: f32([0], 8, 0) }, 8),
      /tensor "a": data_offsets \[8,0\] out of range/,
    ],
    [
      "overlap",
      rawFile({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12),
      /tensor "b" \[4, 12\) overlaps tensor "a" \(ends at 8\)/,
    ],
    [
      "gap",
      rawFile({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12),
      /bytes \[4, 8\) of the data buffer belong to no tensor/,
    ],
    [
      "trailing bytes",
      rawFile({ a: f32([1], 0, 4) }, 10),
      /tensors cover 4 bytes but the data buffer holds 10/,
    ],
    [
      "byte length != shape",
      rawFile({ a: f32([2, 3], 0, 20) }, 20),
      /tensor "a": F32 \[2, 3\] needs 24 bytes, data_offsets \[0, 20\] give 20/,
    ],
    [
      "unknown dtype",
      rawFile({ a: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }, 1),
      /tensor "a": unknown dtype "F8_E4M3"; this reader knows F64, F32/,
    ],
    [
      "bad shape",
      rawFile({ a: { dtype: "U8", shape: [-1], data_offsets: [0, 0] } }, 0),
      /tensor "a": shape must be non-negative integers, got \[-1\]/,
    ],
    [
      "non-string metadata",
      rawFile({ __metadata__: { epoch: 3 } }, 0),
      /metadata "epoch" must be a string, got 3/,
    ],
    [
      "metadata not an object",
      rawFile({ __metadata__: "x" }, 0),
      /__metadata__ must be an object, got "x"/,
    ],
  ];
  for (const [what, bytes, re] of cases) {
    assert.throws(() => decodeSafetensors(bytes, "bad.safetensors"), (e: Error) => {
      assert.match(e.message, /^safetensors bad\.safetensors: /, what);
      assert.match(e.message, re, what);
      return true;
    }, what);
  }
});

Deno.test("safetensors: opening a corrupt file names the path and closes it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/broken.safetensors`;
    await Deno.writeFile(path, rawFile({ a: f32([2], 0, 8) }, 4));
    await assert.rejects(
      () => openSafetensors(path),
      new RegExp(
        `safetensors ${path}: truncated or corrupt: .* only 4 bytes follow the header \\(4 missing\\)`,
      ),
    );
    await Deno.writeFile(path, new Uint8Array(3));
    await assert.rejects(() => openSafetensors(path), /3 bytes is shorter than the 8-byte/);
    await assert.rejects(() => openSafetensors(`${dir}/missing`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: encode refuses wrong arrays, shapes, dtypes and metadata", () => {
  const t = (dtype: string, shape: number[], data: unknown) => ({
    x: { dtype, shape, data } as StoredTensor,
  });
  assert.throws(
    () => encodeSafetensors(t("F32", [2], new Float64Array(2))),
    /tensor "x": dtype F32 needs a Float32Array, got Float64Array/,
  );
  assert.throws(
    () => encodeSafetensors(t("F16", [2], new Float32Array(2))),
    /dtype F16 needs a Uint16Array, got Float32Array/,
  );
  assert.throws(
    () => encodeSafetensors(t("F32", [2, 2], new Float32Array(3))),
    /shape \[2, 2\] needs 4 elements, data has 3/,
  );
  assert.throws(() => encodeSafetensors(t("Q4", [1], new Uint8Array(1))), /unknown dtype "Q4"/);
  assert.throws(() => encodeSafetensors(t("F32", [1.5], new Float32Array(1))), /shape must be/);
  assert.throws(() => encodeSafetensors(t("BOOL", [1], new Uint8Array([2]))), /BOOL data must be 0 or 1/);
  assert.throws(
    () => encodeSafetensors({}, { epoch: 3 } as unknown as Record<string, string>),
    /metadata "epoch" must be a string, got number/,
  );
  assert.throws(
    () => encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array() } }),
    /"__metadata__" is reserved/,
  );
});

// ---------------------------------------------------------------------------------------------
// Lazy reads and atomic writes
// ---------------------------------------------------------------------------------------------

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

Deno.test("safetensors: open reads only the header; read(name) reads only that tensor", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/lazy.safetensors`;
    const rng = new Rng(4);
    const tensors = {
      big1: randomTensor(rng, "F32", [256, 256]),
      small: randomTensor(rng, "BF16", [3, 7]),
      big2: randomTensor(rng, "I64", [128, 128]),
    };
    await writeSafetensors(path, tensors, { k: "v" });
    const fileSize = (await Deno.stat(path)).size;
    const { src, reads } = counting(await fileSource(path));
    using st = await openSafetensors(src);
    const headerBytes = reads.reduce((a, [, n]) => a + n, 0);
    assert.equal(reads.length, 2); // the length and the header's first bytes, then the header
    assert.equal(reads[0][1], 16);
    assert.ok(headerBytes < 400, `open read ${headerBytes} bytes`);
    reads.length = 0;
    const small = await st.read("small");
    assert.deepEqual(reads.map(([, n]) => n), [st.info("small").byteLength]);
    assert.equal(st.info("small").byteLength, 42);
    assert.deepEqual(bytesOf(small), bytesOf(tensors.small.data));
    assert.ok(headerBytes + 42 < fileSize / 1000);
    // Concurrent reads on one file do not interleave their seeks.
    const [a, b, c] = await Promise.all([st.read("big2"), st.read("small"), st.read("big1")]);
    assert.deepEqual(bytesOf(a), bytesOf(tensors.big2.data));
    assert.deepEqual(bytesOf(b), bytesOf(tensors.small.data));
    assert.deepEqual(bytesOf(c), bytesOf(tensors.big1.data));
    await assert.rejects(() => st.read("nope"), /no tensor named "nope"; it has 3: big1, small, big2/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: memorySource gives the same lazy API without a file", async () => {
  const tensors = sampleTensors(5);
  using st = await openSafetensors(memorySource(encodeSafetensors(tensors), "mem"));
  for (const [name, t] of Object.entries(tensors)) {
    assert.deepEqual(bytesOf(await st.read(name)), bytesOf(t.data), name);
  }
  await assert.rejects(
    () => openSafetensors(memorySource(new Uint8Array(2), "two")),
    /safetensors two: 2 bytes is shorter/,
  );
});

async function tempFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.includes(".tmp-")) out.push(e.name);
  return out;
}

Deno.test("safetensors: atomic write leaves no temp file; an interrupted write keeps the old file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/ckpt.safetensors`;
    const v1 = { w: { dtype: "F32" as const, shape: [2], data: new Float32Array([1, 2]) } };
    const v2 = { w: { dtype: "F32" as const, shape: [3], data: new Float32Array([7, 8, 9]) } };
    await writeSafetensors(path, v1, { version: "1" });
    assert.deepEqual(await tempFiles(dir), []);

    // A crash mid-write leaves a partial temp file and never reaches the rename.
    const tmp = `${path}.tmp-${Deno.pid}`;
    await Deno.writeFile(tmp, encodeSafetensors(v2, { version: "2" }).subarray(0, 30));
    {
      using st = await openSafetensors(path);
      assert.equal(st.metadata.version, "1");
      assert.deepEqual([...(await st.readFloat32("w"))], [1, 2]);
    }

    // A write that fails validation touches nothing and removes nothing but its own temp file.
    await assert.rejects(
      () => writeSafetensors(path, { w: { dtype: "F32", shape: [5], data: new Float32Array(2) } }),
      /needs 5 elements/,
    );
    assert.equal((await Deno.readFile(path)).length, encodeSafetensors(v1, { version: "1" }).length);

    // The next good write replaces the stale temp file and the old checkpoint.
    await writeSafetensors(path, v2, { version: "2" });
    assert.deepEqual(await tempFiles(dir), []);
    using st = await openSafetensors(path);
    assert.equal(st.metadata.version, "2");
    assert.deepEqual([...(await st.readFloat32("w"))], [7, 8, 9]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: a write that fails at the file system leaves the old file and no temp", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/out.safetensors`;
    await writeSafetensors(path, { a: { dtype: "U8", shape: [1], data: new Uint8Array([1]) } });
    // Renaming a file over a non-empty directory fails after the temp file was written.
    const blocked = `${dir}/blocked`;
    await Deno.mkdir(`${blocked}/inner`, { recursive: true });
    await assert.rejects(() =>
      writeSafetensors(blocked, { a: { dtype: "U8", shape: [1], data: new Uint8Array([2]) } })
    );
    assert.deepEqual(await tempFiles(dir), []);
    const st = decodeSafetensors(await Deno.readFile(path));
    assert.deepEqual([...st.read("a")], [1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
