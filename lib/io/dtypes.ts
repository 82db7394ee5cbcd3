/**
 * Tensor element types in safetensors' spelling, the typed array that holds each, the shape checks
 * both the reader and the writer make, and conversion of any element type to float32 or int32.
 *
 * @module
 */

import { bfloat16ToFloat32, float16ToFloat32 } from "./half.ts";

/** The element types this reader and writer know (the safetensors spelling). */
export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U8"
  | "BOOL";

/**
 * The typed array that holds each dtype: F64 Float64Array, F32 Float32Array, F16/BF16 Uint16Array
 * (raw bits), I64 BigInt64Array, I32 Int32Array, I16 Int16Array, I8 Int8Array, U8/BOOL Uint8Array.
 */
export type TensorData =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** A typed array's constructor, as {@link DTYPES} holds it. */
export type TypedArrayCtor = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): TensorData;
  new (length: number): TensorData;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

/**
 * Element size and holding array of each dtype. Typed arrays use the host byte order; every
 * platform Deno ships for is little-endian, which is what safetensors stores.
 */
export const DTYPES: Record<SafetensorsDtype, { size: number; ctor: TypedArrayCtor }> = {
  F64: { size: 8, ctor: Float64Array as unknown as TypedArrayCtor },
  F32: { size: 4, ctor: Float32Array as unknown as TypedArrayCtor },
  F16: { size: 2, ctor: Uint16Array as unknown as TypedArrayCtor },
  BF16: { size: 2, ctor: Uint16Array as unknown as TypedArrayCtor },
  I64: { size: 8, ctor: BigInt64Array as unknown as TypedArrayCtor },
  I32: { size: 4, ctor: Int32Array as unknown as TypedArrayCtor },
  I16: { size: 2, ctor: Int16Array as unknown as TypedArrayCtor },
  I8: { size: 1, ctor: Int8Array as unknown as TypedArrayCtor },
  U8: { size: 1, ctor: Uint8Array as unknown as TypedArrayCtor },
  BOOL: { size: 1, ctor: Uint8Array as unknown as TypedArrayCtor },
};
/** The dtype names, listed in error messages. */
export const DTYPE_NAMES = Object.keys(DTYPES).join(", ");

/** Whether `x` names a dtype of {@link DTYPES}. */
export function isDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === "string" && Object.hasOwn(DTYPES, x);
}

/** Element count of a shape (1 for `[]`). */
export function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A shape as `[a, b, c]`, for messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Whether `shape` is an array of non-negative safe integers. */
export function validShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Any tensor's elements as float32 (halves decoded, integers and float64 converted; int64 via Number). */
export function toFloat32(dtype: SafetensorsDtype, data: TensorData): Float32Array {
  switch (dtype) {
    case "F32":
      return data as Float32Array;
    case "F16":
      return float16ToFloat32(data as Uint16Array);
    case "BF16":
      return bfloat16ToFloat32(data as Uint16Array);
    case "I64": {
      const src = data as BigInt64Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
      return out;
    }
    default:
      return Float32Array.from(data as Float64Array);
  }
}

/** An integer or BOOL tensor's elements as Int32; `what` names it in errors. */
export function toInt32(dtype: SafetensorsDtype, data: TensorData, what: string): Int32Array {
  switch (dtype) {
    case "I32":
      return data as Int32Array;
    case "I64": {
      const src = data as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = src[i];
        if (v < -2147483648n || v > 2147483647n) {
          throw new RangeError(`${what}: I64 element ${i} = ${v} does not fit in an Int32`);
        }
        out[i] = Number(v);
      }
      return out;
    }
    case "I16":
    case "I8":
    case "U8":
    case "BOOL":
      return Int32Array.from(data as Int16Array);
    default:
      throw new TypeError(`${what}: readInt32 needs an integer or BOOL tensor, got ${dtype}`);
  }
}
