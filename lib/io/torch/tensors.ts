/**
 * PyTorch element types and lazy tensors: a checkpoint's tensors, whose dtype and shape are known
 * at open and whose bytes are read from their storage record only when asked for.
 *
 * @module
 */

import { DTYPES, type SafetensorsDtype, type TensorData, toFloat32 } from "../dtypes.ts";

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
 * int8 Int8Array, uint8/bool Uint8Array: the same arrays as safetensors' {@link TensorData}.
 */
export type TorchTensorData = TensorData;

/** The same element types in safetensors' spelling (for the shared dtype table and float32 conversion). */
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
 * import { openTorchCheckpoint } from "./checkpoint.ts";
 * import { LazyTensor } from "./tensors.ts";
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
    this.byteLength = this.numel * DTYPES[SAFETENSORS_DTYPE[this.dtype]].size;
  }

  /** Whether the saved stride is row-major (dimensions of size 1 may have any stride). */
  get isContiguous(): boolean {
    if (this.numel === 0) return true;
    const want = contiguousStride(this.shape);
    return this.shape.every((d, i) => d === 1 || this.stride[i] === want[i]);
  }

  /** The tensor's elements, row-major, in their own typed array (see {@link TorchTensorData}). */
  async read(): Promise<TorchTensorData> {
    const { size, ctor } = DTYPES[SAFETENSORS_DTYPE[this.dtype]];
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

/** A {@link TorchStorage} built from a persistent id: a zip record plus a reader of its bytes. */
export class StorageRef implements TorchStorage {
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
