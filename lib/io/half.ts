/**
 * Half-precision conversions: IEEE float16 and bfloat16 bits (held in a `Uint16Array`) to and from
 * float32, rounding to nearest even, NaN kept NaN.
 *
 * @module
 */

/**
 * IEEE half-precision bits to float32 (exact: every half value is a float32).
 *
 * @example
 * ```ts
 * import { float16ToFloat32 } from "./half.ts";
 * const f = float16ToFloat32(new Uint16Array([0x3c00, 0xc000, 0x0001]));
 * if (f[0] !== 1 || f[1] !== -2 || f[2] !== 2 ** -24) throw new Error("bad half decode");
 * ```
 */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      if (mant === 0) u32[i] = sign >>> 0;
      else out[i] = (sign ? -mant : mant) * 2 ** -24; // subnormal: exact in float32
    } else if (exp === 31) {
      u32[i] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / NaN, payload kept
    } else {
      u32[i] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return out;
}

/**
 * float32 to IEEE half-precision bits, rounding to nearest even (overflow gives infinity).
 *
 * @example
 * ```ts
 * import { float32ToFloat16 } from "./half.ts";
 * const h = float32ToFloat16(new Float32Array([1, -2, 65520, 1e-8]));
 * if (h[0] !== 0x3c00 || h[1] !== 0xc000 || h[2] !== 0x7c00 || h[3] !== 0) throw new Error("bad");
 * ```
 */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const f = u32[i];
    const sign = (f >>> 16) & 0x8000;
    const exp = (f >>> 23) & 0xff;
    let mant = f & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // NaN stays NaN (quiet)
      continue;
    }
    const e = exp - 112; // half exponent field
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign; // below half of the smallest subnormal: rounds to zero
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rem > halfway || (rem === halfway && (half & 1))) half++;
      out[i] = sign | half;
    } else {
      let half = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // a carry may reach infinity
      out[i] = sign | half;
    }
  }
  return out;
}

/**
 * bfloat16 bits to float32 (exact: bfloat16 is the top half of a float32).
 *
 * @example
 * ```ts
 * import { bfloat16ToFloat32 } from "./half.ts";
 * if (bfloat16ToFloat32(new Uint16Array([0x3f80]))[0] !== 1) throw new Error("bad bf16 decode");
 * ```
 */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u32[i] = bits[i] << 16 >>> 0;
  return out;
}

/**
 * float32 to bfloat16 bits, rounding to nearest even (what `tensor.to(torch.bfloat16)` does).
 *
 * @example
 * ```ts
 * import { float32ToBfloat16 } from "./half.ts";
 * if (float32ToBfloat16(new Float32Array([1]))[0] !== 0x3f80) throw new Error("bad bf16 encode");
 * ```
 */
export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const f = u32[i];
    if ((f & 0x7f800000) === 0x7f800000 && (f & 0x7fffff) !== 0) {
      out[i] = (f >>> 16) | 0x40; // NaN: keep it NaN even if the payload sits in the low half
    } else {
      out[i] = (f + 0x7fff + ((f >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}
