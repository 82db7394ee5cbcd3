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
 * `checkpoint.ts`.
 *
 * Dicts come back as plain objects when every key is a string that is not an array index (so key
 * order is kept), otherwise as `Map`s (the optimizer's `state` has int keys); lists and tuples as
 * arrays (tuples frozen); ints as numbers (bigint beyond 2^53); `None` as null.
 *
 * @example
 * ```ts
 * import { openTorchCheckpoint, stateDict } from "./torch_checkpoint.ts";
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
import { type ByteSource, fileSource, type SafetensorsDtype, toFloat32 } from "./safetensors.ts";

/** Tensor element types the reader knows (PyTorch's names). */
export type TorchDtype =
  | "float32"
  | "float16"
  | "bfloat16"
  | "float64"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

/**
 * What {@link LazyTensor.read} returns per dtype: float32 Float32Array, float64 Float64Array,
 * float16/bfloat16 Uint16Array (raw bits), int64 BigInt64Array, int32 Int32Array, int16 Int16Array,
 * int8 Int8Array, uint8/bool Uint8Array.
 */
export type TorchTensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

type Ctor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => TorchTensorData;

/** The same element types in safetensors' spelling (for the shared float32 conversion). */
const SAFETENSORS_DTYPE: Record<TorchDtype, SafetensorsDtype> = {
  float32: "F32",
  float16: "F16",
  bfloat16: "BF16",
  float64: "F64",
  int64: "I64",
  int32: "I32",
  int16: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

const TORCH_DTYPES: Record<TorchDtype, { size: number; ctor: Ctor }> = {
  float32: { size: 4, ctor: Float32Array as unknown as Ctor },
  float16: { size: 2, ctor: Uint16Array as unknown as Ctor },
  bfloat16: { size: 2, ctor: Uint16Array as unknown as Ctor },
  float64: { size: 8, ctor: Float64Array as unknown as Ctor },
  int64: { size: 8, ctor: BigInt64Array as unknown as Ctor },
  int32: { size: 4, ctor: Int32Array as unknown as Ctor },
  int16: { size: 2, ctor: Int16Array as unknown as Ctor },
  int8: { size: 1, ctor: Int8Array as unknown as Ctor },
  uint8: { size: 1, ctor: Uint8Array as unknown as Ctor },
  bool: { size: 1, ctor: Uint8Array as unknown as Ctor },
};

/** The storage classes a pickle may name, and the element type each holds. */
const STORAGE_TYPES: Record<string, TorchDtype> = {
  "torch.FloatStorage": "float32",
  "torch.HalfStorage": "float16",
  "torch.BFloat16Storage": "bfloat16",
  "torch.DoubleStorage": "float64",
  "torch.LongStorage": "int64",
  "torch.IntStorage": "int32",
  "torch.ShortStorage": "int16",
  "torch.CharStorage": "int8",
  "torch.ByteStorage": "uint8",
  "torch.BoolStorage": "bool",
  // Written only when an untyped storage itself is saved (tensors always name a typed storage).
  "torch.storage.UntypedStorage": "uint8",
  "torch.UntypedStorage": "uint8",
};

// ---------------------------------------------------------------------------------------------
// Lazy tensors
// ---------------------------------------------------------------------------------------------

/** One storage record of the zip (`<top>/data/<key>`): the raw bytes behind one or more tensors. */
export interface TorchStorage {
  /** The record key from the persistent id (`"0"`, `"1"`, ...). */
  readonly key: string;
  /** Element type, from the storage class (`torch.FloatStorage` is float32). */
  readonly dtype: TorchDtype;
  /** Device the storage was saved from (`"cpu"`, `"cuda:0"`); informational. */
  readonly location: string;
  /** Element count the persistent id declares. */
  readonly numel: number;
  /** The zip record's full name, for messages. */
  readonly recordName: string;
  /** Bytes the zip record actually holds. */
  readonly recordBytes: number;
  /** `byteorder` record said "big": elements are byte-swapped on read. */
  readonly bigEndian: boolean;
  /** Exactly `byteLength` bytes from `byteOffset` within the record (a fresh copy). */
  readBytes(byteOffset: number, byteLength: number): Promise<Uint8Array>;
}

function fmt(xs: readonly number[]): string {
  return `[${xs.join(", ")}]`;
}

function contiguousStride(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i];
  }
  return out;
}

/**
 * A tensor of the checkpoint whose bytes have not been read yet: dtype and shape are known at
 * open; {@link LazyTensor.read} fetches exactly its bytes. Only contiguous (row-major) tensors can
 * be read; anything else is reported with its shape and stride.
 *
 * @example
 * ```ts
 * import { openTorchCheckpoint, LazyTensor } from "./torch_checkpoint.ts";
 * using ckpt = await openTorchCheckpoint("tests/fixtures/official-ijepa-tiny/checkpoint.pth.tar");
 * const opt = ckpt.root as { opt: { state: Map<number, { step: LazyTensor }> } };
 * const step = opt.opt.state.get(1)!.step; // AdamW's per-parameter step: a 0-d tensor
 * if (step.shape.length !== 0 || (await step.readFloat32())[0] !== 1) throw new Error("bad step");
 * ```
 */
export class LazyTensor {
  /** Element type. */
  readonly dtype: TorchDtype;
  /** Dimensions, outermost first; `[]` for a 0-d tensor. */
  readonly shape: readonly number[];
  /** Elements to step per dimension, as saved. */
  readonly stride: readonly number[];
  /** First element's index within the storage. */
  readonly storageOffset: number;
  /** product(shape). */
  readonly numel: number;
  /** numel * element size. */
  readonly byteLength: number;
  /** Where the bytes live. */
  readonly storage: TorchStorage;
  /** Where the tensor sits in the checkpoint, e.g. `encoder/module.pos_embed` (set after unpickling). */
  path = "";

  /** Built by the unpickler from `torch._utils._rebuild_tensor_v2`. */
  constructor(
    storage: TorchStorage,
    storageOffset: number,
    shape: readonly number[],
    stride: readonly number[],
  ) {
    this.storage = storage;
    this.dtype = storage.dtype;
    this.storageOffset = storageOffset;
    this.shape = Object.freeze(shape.slice());
    this.stride = Object.freeze(stride.slice());
    this.numel = shape.reduce((a, b) => a * b, 1);
    this.byteLength = this.numel * TORCH_DTYPES[this.dtype].size;
  }

  /** Whether the saved stride is row-major (dimensions of size 1 may have any stride). */
  get isContiguous(): boolean {
    if (this.numel === 0) return true;
    const want = contiguousStride(this.shape);
    return this.shape.every((d, i) => d === 1 || this.stride[i] === want[i]);
  }

  /** The tensor's elements, row-major, in their own typed array (see {@link TorchTensorData}). */
  async read(): Promise<TorchTensorData> {
    const { size, ctor } = TORCH_DTYPES[this.dtype];
    const name = this.path || `(storage ${this.storage.key})`;
    if (!this.isContiguous) {
      throw new RangeError(
        `tensor ${name} is not contiguous: shape ${fmt(this.shape)}, stride ${fmt(this.stride)}, ` +
          `expected stride ${fmt(contiguousStride(this.shape))}; save it with .contiguous()`,
      );
    }
    if (this.numel === 0) return new ctor(new ArrayBuffer(0), 0, 0);
    const need = (this.storageOffset + this.numel) * size;
    if (this.storage.recordBytes < need) {
      throw new RangeError(
        `storage record ${this.storage.recordName} (key ${this.storage.key}) holds ${this.storage.recordBytes} ` +
          `bytes, but tensor ${name} (${this.dtype} ${
            fmt(this.shape)
          } at storage offset ${this.storageOffset}) needs ${need}`,
      );
    }
    const bytes = await this.storage.readBytes(this.storageOffset * size, this.byteLength);
    if (this.storage.bigEndian && size > 1) {
      for (let at = 0; at < bytes.length; at += size) bytes.subarray(at, at + size).reverse();
    }
    return new ctor(bytes.buffer as ArrayBuffer, 0, this.numel);
  }

  /** The elements as float32 (float16/bfloat16/float64/integers converted; int64 via Number). */
  async readFloat32(): Promise<Float32Array> {
    return toFloat32(SAFETENSORS_DTYPE[this.dtype], await this.read());
  }

  /** Shown by `console.log` in Deno. */
  [Symbol.for("Deno.customInspect")](): string {
    return `LazyTensor(${this.dtype} ${fmt(this.shape)}${this.path ? ` ${this.path}` : ""})`;
  }
}

// ---------------------------------------------------------------------------------------------
// The restricted pickle machine
// ---------------------------------------------------------------------------------------------

/** A global the pickle named (`GLOBAL` / `STACK_GLOBAL`), after it passed the allow-list. */
export class PickleGlobal {
  /** Built by the unpickler only for allow-listed names. */
  constructor(
    /** `module.name`, e.g. `torch.FloatStorage`. */
    readonly qualname: string,
    /** The element type, for storage classes. */
    readonly storageDtype?: TorchDtype,
    /** Our implementation of calling it (REDUCE), if it may be called. */
    readonly call?: (args: unknown[]) => unknown,
    /** Our implementation of `cls.__new__(cls, *args)` (NEWOBJ), if allowed. */
    readonly newobj?: (args: unknown[]) => unknown,
  ) {}
}

/**
 * Key of the state a pickle attached to a dict with BUILD (an `OrderedDict`'s attributes, e.g. a
 * state dict's `_metadata`); kept off the enumerable keys.
 */
export const pickleState: unique symbol = Symbol("pickleState");

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /**
   * Resolves a persistent id (BINPERSID); `torch.save` writes `('storage', <storage class>,
   * key, location, numel)` tuples. Without it, a persistent id is an error.
   */
  persistentLoad?: (pid: unknown[]) => unknown;
  /** Named in error messages. */
  source?: string;
}

function newDict(args: unknown[], what: string): Map<unknown, unknown> {
  const d = new Map<unknown, unknown>();
  if (args.length === 0) return d;
  const items = args[0];
  if (args.length === 1 && Array.isArray(items)) {
    for (const kv of items) {
      if (!Array.isArray(kv) || kv.length !== 2) {
        throw new TypeError(`${what}: expected (key, value) pairs`);
      }
      d.set(kv[0], kv[1]);
    }
    return d;
  }
  throw new TypeError(`${what}: expected no arguments or a list of pairs, got ${args.length}`);
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

class StorageRef implements TorchStorage {
  constructor(
    readonly key: string,
    readonly dtype: TorchDtype,
    readonly location: string,
    readonly numel: number,
    readonly recordName: string,
    readonly recordBytes: number,
    readonly bigEndian: boolean,
    readonly readBytes: (byteOffset: number, byteLength: number) => Promise<Uint8Array>,
  ) {}
}

function rebuildTensorV2(args: unknown[]): LazyTensor {
  const what = "torch._utils._rebuild_tensor_v2";
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  if (args.length < 6 || args.length > 7) {
    throw new TypeError(`${what}: expected 6 or 7 arguments, got ${args.length}`);
  }
  const [storage, offset, size, stride, , hooks] = args;
  if (!(storage instanceof StorageRef)) {
    throw new TypeError(`${what}: argument 0 must be a storage from a persistent id`);
  }
  if (!isCount(offset)) throw new TypeError(`${what}: bad storage offset ${String(offset)}`);
  if (!Array.isArray(size) || !size.every(isCount)) {
    throw new TypeError(`${what}: size must be a tuple of non-negative ints`);
  }
  if (!Array.isArray(stride) || stride.length !== size.length || !stride.every(isCount)) {
    throw new TypeError(
      `${what}: stride must be ${size.length} non-negative ints, got ${JSON.stringify(stride)}`,
    );
  }
  if (!(hooks instanceof Map) || hooks.size !== 0) {
    throw new TypeError(`${what}: backward hooks are not supported (expected an empty dict)`);
  }
  return new LazyTensor(storage, offset, size, stride);
}

/** The allow-list: every global a pickle may name, each implemented here, never looked up. */
function makeGlobal(qualname: string): PickleGlobal | undefined {
  if (Object.hasOwn(STORAGE_TYPES, qualname)) {
    return new PickleGlobal(qualname, STORAGE_TYPES[qualname]);
  }
  switch (qualname) {
    case "collections.OrderedDict":
      return new PickleGlobal(
        qualname,
        undefined,
        (a) => newDict(a, qualname),
        (a) => newDict(a, qualname),
      );
    case "torch._utils._rebuild_tensor_v2":
      return new PickleGlobal(qualname, undefined, rebuildTensorV2);
    case "torch._utils._rebuild_parameter":
      // (data, requires_grad, backward_hooks): a Parameter is its tensor here.
      return new PickleGlobal(qualname, undefined, (a) => {
        if (a.length !== 3 || !(a[0] instanceof LazyTensor)) {
          throw new TypeError(`${qualname}: expected (tensor, requires_grad, hooks)`);
        }
        return a[0];
      });
  }
  return undefined;
}

const ALLOWED_GLOBALS = [
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  ...Object.keys(STORAGE_TYPES),
].join(", ");

/** Every opcode of pickle protocols 0-5, for messages. */
const OPCODE_NAMES: Record<number, string> = {
  0x28: "MARK",
  0x2e: "STOP",
  0x30: "POP",
  0x31: "POP_MARK",
  0x32: "DUP",
  0x46: "FLOAT",
  0x49: "INT",
  0x4a: "BININT",
  0x4b: "BININT1",
  0x4c: "LONG",
  0x4d: "BININT2",
  0x4e: "NONE",
  0x50: "PERSID",
  0x51: "BINPERSID",
  0x52: "REDUCE",
  0x53: "STRING",
  0x54: "BINSTRING",
  0x55: "SHORT_BINSTRING",
  0x56: "UNICODE",
  0x58: "BINUNICODE",
  0x61: "APPEND",
  0x62: "BUILD",
  0x63: "GLOBAL",
  0x64: "DICT",
  0x7d: "EMPTY_DICT",
  0x65: "APPENDS",
  0x67: "GET",
  0x68: "BINGET",
  0x69: "INST",
  0x6a: "LONG_BINGET",
  0x6c: "LIST",
  0x5d: "EMPTY_LIST",
  0x6f: "OBJ",
  0x70: "PUT",
  0x71: "BINPUT",
  0x72: "LONG_BINPUT",
  0x73: "SETITEM",
  0x74: "TUPLE",
  0x29: "EMPTY_TUPLE",
  0x75: "SETITEMS",
  0x47: "BINFLOAT",
  0x80: "PROTO",
  0x81: "NEWOBJ",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x85: "TUPLE1",
  0x86: "TUPLE2",
  0x87: "TUPLE3",
  0x88: "NEWTRUE",
  0x89: "NEWFALSE",
  0x8a: "LONG1",
  0x8b: "LONG4",
  0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES",
  0x8c: "SHORT_BINUNICODE",
  0x8d: "BINUNICODE8",
  0x8e: "BINBYTES8",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x92: "NEWOBJ_EX",
  0x93: "STACK_GLOBAL",
  0x94: "MEMOIZE",
  0x95: "FRAME",
  0x96: "BYTEARRAY8",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
};

function describe(x: unknown): string {
  if (x === null) return "None";
  if (Array.isArray(x)) return "a tuple or list";
  if (x instanceof Map) return "a dict";
  if (x instanceof PickleGlobal) return x.qualname;
  if (x instanceof LazyTensor) return "a tensor";
  if (x instanceof Uint8Array) return "bytes";
  return `a ${typeof x}`;
}

/**
 * Runs a pickle on a machine that knows only what `torch.save` writes (protocol 2 and the framing
 * of later protocols) and only the allow-listed globals: `collections.OrderedDict`,
 * `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and the `torch.*Storage`
 * classes. Every other global, and every other opcode, is refused with an error naming it; the
 * reader never runs code from a file. Truncation, stack underflow, a missing MARK or STOP and
 * unknown memo keys are errors too.
 *
 * @example
 * ```ts
 * import { unpickle } from "./torch_checkpoint.ts";
 * // {"epoch": 3, "ok": True} at protocol 2
 * const bytes = new Uint8Array([
 *   0x80, 2, 0x7d, 0x28, 0x58, 5, 0, 0, 0, ...new TextEncoder().encode("epoch"), 0x4b, 3,
 *   0x58, 2, 0, 0, 0, 0x6f, 0x6b, 0x88, 0x75, 0x2e,
 * ]);
 * const v = unpickle(bytes) as { epoch: number; ok: boolean };
 * if (v.epoch !== 3 || v.ok !== true) throw new Error("bad unpickle");
 * const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
 * const evil = latin1("\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.");
 * try {
 *   unpickle(evil);
 *   throw new Error("should have refused");
 * } catch (e) {
 *   if (!String(e).includes("refusing pickle global os.system")) throw e;
 * }
 * ```
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): unknown {
  const where = `pickle ${options.source ?? "<memory>"}`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = []; // stack heights at each MARK
  const memo = new Map<number, unknown>();
  const tuples = new WeakSet<object>();
  const states = new WeakMap<object, unknown>();
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let pos = 0;
  let opPos = 0;
  let op = 0;

  const opName = () => OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, "0")}`;
  const fail = (msg: string) => new Error(`${where}: ${msg} (opcode ${opName()} at byte ${opPos})`);
  const need = (n: number) => {
    if (n > bytes.length - pos) {
      throw fail(`truncated: needs ${n} more bytes, ${bytes.length - pos} left`);
    }
  };
  const u8 = () => {
    need(1);
    return bytes[pos++];
  };
  const u16 = () => {
    need(2);
    pos += 2;
    return dv.getUint16(pos - 2, true);
  };
  const u32 = () => {
    need(4);
    pos += 4;
    return dv.getUint32(pos - 4, true);
  };
  const u64 = () => {
    need(8);
    pos += 8;
    const v = dv.getBigUint64(pos - 8, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`length ${v} is too large`);
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const text = (b: Uint8Array) => {
    try {
      return utf8.decode(b);
    } catch {
      throw fail("invalid UTF-8 in a string");
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw fail("truncated: no newline ending the global's name");
    const s = text(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const floor = () => (marks.length ? marks[marks.length - 1] : 0);
  const pop = (): unknown => {
    if (stack.length <= floor()) throw fail("stack underflow");
    return stack.pop();
  };
  const peek = (): unknown => {
    if (stack.length <= floor()) throw fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    if (marks.length === 0) throw fail("no MARK on the stack");
    return stack.splice(marks.pop()!);
  };
  const tuple = (items: unknown[]) => {
    tuples.add(items);
    return items;
  };
  const list = (x: unknown): unknown[] => {
    if (!Array.isArray(x) || tuples.has(x)) throw fail(`expected a list, found ${describe(x)}`);
    return x;
  };
  const dict = (x: unknown): Map<unknown, unknown> => {
    if (!(x instanceof Map)) throw fail(`expected a dict, found ${describe(x)}`);
    return x;
  };
  const setItems = (d: Map<unknown, unknown>, items: unknown[]) => {
    if (items.length % 2) throw fail("odd number of items for a dict");
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  };
  const global = (module: string, name: string) => {
    const q = `${module}.${name}`;
    const g = makeGlobal(q);
    if (!g) {
      throw fail(
        `refusing pickle global ${q}: only ${ALLOWED_GLOBALS} are allowed ` +
          `(this reader never runs code from a file)`,
      );
    }
    return g;
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) throw fail(`memo key ${i} was never stored`);
    return memo.get(i);
  };
  const args = (x: unknown): unknown[] => {
    if (!Array.isArray(x) || !tuples.has(x)) {
      throw fail(`expected an argument tuple, found ${describe(x)}`);
    }
    return x;
  };
  const call = (fn: unknown, a: unknown[], how: "call" | "newobj") => {
    const impl = fn instanceof PickleGlobal ? fn[how] : undefined;
    if (!impl) {
      throw fail(`${describe(fn)} cannot be ${how === "call" ? "called" : "instantiated"}`);
    }
    try {
      return impl(a);
    } catch (e) {
      throw fail((e as Error).message);
    }
  };

  while (true) {
    if (pos >= bytes.length) {
      throw new Error(
        `${where}: ended at byte ${pos} without a STOP opcode (truncated, or not a pickle)`,
      );
    }
    opPos = pos;
    op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) throw fail(`unknown pickle protocol ${v}`);
        break;
      }
      case 0x95: // FRAME: a length prefix for buffering; nothing to do when all bytes are here.
        u64();
        break;
      case 0x2e: // STOP
        return finalize(pop(), tuples, states);
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push(tuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(tuple([pop(), b, c]));
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: { // APPEND
        const v = pop();
        list(peek()).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = list(peek());
        for (const v of items) l.push(v);
        break;
      }
      case 0x64: { // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        dict(peek()).set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(dict(peek()), items);
        break;
      }
      case 0x4a: // BININT
        need(4);
        pos += 4;
        stack.push(dv.getInt32(pos - 4, true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        const b = take(u8());
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
        const n = Number(v);
        stack.push(Number.isSafeInteger(n) ? n : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        pos += 8;
        stack.push(dv.getFloat64(pos - 8, false));
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x58: // BINUNICODE
        stack.push(text(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(take(u64())));
        break;
      case 0x54: { // BINSTRING (a Python 2 str; torch.load decodes it as UTF-8)
        need(4);
        const n = dv.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw fail(`negative string length ${n}`);
        stack.push(text(take(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(text(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()).slice());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), peek());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), peek());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, peek());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          throw fail("STACK_GLOBAL needs two strings");
        }
        stack.push(global(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const a = args(pop());
        stack.push(call(pop(), a, "call"));
        break;
      }
      case 0x81: { // NEWOBJ
        const a = args(pop());
        stack.push(call(pop(), a, "newobj"));
        break;
      }
      case 0x62: { // BUILD: only an OrderedDict's attributes (state dicts carry `_metadata`).
        const state = pop();
        const obj = peek();
        if (!(obj instanceof Map)) throw fail(`BUILD on ${describe(obj)} is not supported`);
        states.set(obj, state);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) throw fail("a persistent id, but no persistentLoad given");
        if (!Array.isArray(pid)) throw fail(`persistent id must be a tuple, got ${describe(pid)}`);
        try {
          stack.push(options.persistentLoad(pid));
        } catch (e) {
          throw fail((e as Error).message);
        }
        break;
      }
      default:
        if (OPCODE_NAMES[op]) {
          throw fail(`refusing pickle opcode ${opName()}: torch.save checkpoints do not use it`);
        }
        throw fail("unknown pickle opcode (the file is corrupt or not a pickle)");
    }
  }
}

function isArrayIndex(k: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(k) && Number(k) < 2 ** 32 - 1;
}

/** Turns dicts into objects or Maps, freezes tuples, and names each tensor by its path. */
function finalize(root: unknown, tuples: WeakSet<object>, states: WeakMap<object, unknown>) {
  const done = new Map<object, unknown>();
  const walk = (v: unknown, path: string, depth: number): unknown => {
    if (v === null || typeof v !== "object") return v;
    if (v instanceof LazyTensor) {
      if (!v.path) v.path = path;
      return v;
    }
    if (done.has(v)) return done.get(v);
    if (depth > 1000) throw new RangeError(`pickle: objects nested deeper than 1000 at ${path}`);
    const at = (seg: string) => (path ? `${path}/${seg}` : seg);
    if (Array.isArray(v)) {
      done.set(v, v);
      for (let i = 0; i < v.length; i++) v[i] = walk(v[i], at(String(i)), depth + 1);
      if (tuples.has(v)) Object.freeze(v);
      return v;
    }
    if (v instanceof Map) {
      const asObject = [...v.keys()].every((k) => typeof k === "string" && !isArrayIndex(k));
      const out: Record<string, unknown> | Map<unknown, unknown> = asObject ? {} : new Map();
      done.set(v, out);
      for (const [k, val] of v) {
        const value = walk(val, at(String(k)), depth + 1);
        if (out instanceof Map) out.set(walk(k, path, depth + 1), value);
        // defineProperty, not assignment: a key named "__proto__" stays an ordinary key.
        else {
          Object.defineProperty(out, k as string, {
            value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
      }
      if (states.has(v)) {
        Object.defineProperty(out, pickleState, { value: walk(states.get(v), path, depth + 1) });
      }
      return out;
    }
    return v;
  };
  return walk(root, "", 0);
}

// ---------------------------------------------------------------------------------------------
// The zip container
// ---------------------------------------------------------------------------------------------

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
async function readZipDirectory(src: ByteSource, where: string): Promise<ZipEntry[]> {
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
class ZipRecords {
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

// ---------------------------------------------------------------------------------------------
// Opening a checkpoint
// ---------------------------------------------------------------------------------------------

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
 * import { openTorchCheckpoint } from "./torch_checkpoint.ts";
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
 * import { openTorchCheckpoint, stateDict } from "./torch_checkpoint.ts";
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
