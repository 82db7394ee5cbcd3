/**
 * The copies of lib/engine/gemm_pool.ts where tfjs-wasm's memory is not shared: each worker's share
 * of a product's operands, placed in the pool's own shared memory.
 *
 * @module
 */
/** One product in gemm.c's terms (pointers are float offsets into `heap`). */
export interface GemmJob {
  batch: number;
  m: number;
  n: number;
  k: number;
  rsA: number;
  csA: number;
  bsA: number;
  rsB: number;
  csB: number;
  bsB: number;
  a: number;
  b: number;
  c: number;
}

/**
 * The arguments gemm.c's single-product functions (`ij_gemm_claim`, `ij_gemm_deep`) start with: A, B
 * and C in bytes, then M, N, K and the strides of op(A) and op(B).
 */
export function productArgs(job: GemmJob): number[] {
  return [4 * job.a, 4 * job.b, 4 * job.c, job.m, job.n, job.k, job.rsA, job.csA, job.rsB, job.csB];
}

/** tfjs-wasm's memory and allocator, for workers that compute in it (when it is shared). */
export interface GemmHeap {
  memory: WebAssembly.Memory;
  malloc(bytes: number): number;
  free(ptr: number): void;
}

/** A share of a product: batch items [b0, b1) and rows [i0, i1). */
export interface Part {
  b0: number;
  b1: number;
  i0: number;
  i1: number;
}

/** n rounded up to a multiple of 4 floats (16 bytes). */
function pad4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Offset and length (floats) of the elements of an operand a part reads. */
function span(
  b0: number,
  b1: number,
  bs: number,
  r0: number,
  r1: number,
  rs: number,
  cols: number,
  cs: number,
) {
  const start = b0 * bs + r0 * rs;
  const last = (b1 - 1) * bs + (r1 - 1) * rs + (cols - 1) * cs;
  return { start, length: last - start + 1 };
}

/**
 * Copy each busy worker's share of A and B into the pool's memory from float `data` on (growing it first), with room
 * for its rows of C; pointers in floats.
 */
export function copyIn(
  memory: WebAssembly.Memory,
  data: number,
  job: GemmJob,
  busy: { part: Part; w: number }[],
  src: Float32Array,
) {
  let top = data;
  const plans = busy.map(({ part, w }) => {
    const rows = part.i1 - part.i0;
    const a = span(part.b0, part.b1, job.bsA, part.i0, part.i1, job.rsA, job.k, job.csA);
    const b = span(part.b0, part.b1, job.bsB, 0, job.k, job.rsB, job.n, job.csB);
    const cLen = (part.b1 - part.b0) * rows * job.n;
    const cFrom = part.b0 * job.m * job.n + part.i0 * job.n;
    return { part, w, a, b, cLen, cFrom };
  });
  const need = plans.reduce((s, q) => s + pad4(q.a.length) + pad4(q.b.length) + pad4(q.cLen), 0);
  const have = memory.buffer.byteLength / 4 - top;
  if (need > have) {
    try {
      memory.grow(Math.ceil((need - have) * 4 / 65536));
    } catch {
      return null; // past the pool memory's maximum: this product stays on the main thread
    }
  }
  const shared = new Float32Array(memory.buffer);
  return plans.map((q) => {
    const a = top;
    shared.set(src.subarray(job.a + q.a.start, job.a + q.a.start + q.a.length), a);
    top += pad4(q.a.length);
    const b = top;
    shared.set(src.subarray(job.b + q.b.start, job.b + q.b.start + q.b.length), b);
    top += pad4(q.b.length);
    const c = top;
    top += pad4(q.cLen);
    return { part: q.part, w: q.w, a, b, c, cLen: q.cLen, cFrom: q.cFrom };
  });
}
