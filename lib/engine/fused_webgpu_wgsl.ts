/**
 * The building blocks of the WebGPU fused kernels (lib/engine/fused_webgpu_forward.ts and
 * fused_webgpu_grad.ts): binding declarations generated from one list, and three shader shapes.
 *
 * - Elementwise ({@link elementwiseShader}): one thread per element, 256 a workgroup, the grid
 *   split over y past 65535 workgroups.
 * - Row kernels ({@link rowPlan}, {@link rowHelpers}): the threads of a workgroup split into
 *   segments of `TPR` threads, one segment per row; each thread keeps its `CPT` columns of the row
 *   (columns `lane`, `lane + TPR`, ...) in registers, so a row is read from memory once, and
 *   the segment combines its partial sums with a tree in workgroup memory. Short rows (softmax over
 *   49 keys, test sizes) share a workgroup; rows of 256 and more get one of their own.
 * - Column sums ({@link colShader}, {@link sumColumns}): a workgroup owns `TC` columns and a chunk
 *   of rows, `TR` threads down each column, each summing every TR-th row of the chunk, then a tree
 *   over the TR partial sums. Many rows take two dispatches: chunks into a partial-sums buffer,
 *   then one chunk over the partial sums. Everything accumulates in float32 (the CPU kernels use
 *   float64), so the sums over 50,000 rows are trees, never one long running sum.
 *
 * Why these shapes: on a GPU a dispatch costs ~0.06-0.1 ms whatever it does, so each kernel is one
 * dispatch, or two when it sums over rows; reads are coalesced (consecutive threads, consecutive
 * addresses) in every shape.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { Attrs } from "./fused_spec.ts";
import { gpuDispatch, gpuOutput, type WebGpuLike } from "./webgpu_dispatch.ts";

/** The webgpu backend as the kernels use it (dispatching, and freeing temporaries). */
export type GpuBackend = WebGpuLike & { disposeData(dataId: unknown): void };

/** A kernel's inputs by name; optional ones may be missing. */
export type GpuInputs = Record<string, tf.TensorInfo | undefined>;

/** A storage binding: its WGSL name, the tensor, and whether the shader writes it. */
export type Buf = [name: string, tensor: tf.TensorInfo, access: "read" | "read_write"];

/** A scalar uniform: its WGSL field name, type and value. */
export type Field = [name: string, type: "u32" | "i32" | "f32", value: number];

/** An input binding, or nothing when the optional input `t` is absent. */
export function input(name: string, t: tf.TensorInfo | undefined): Buf[] {
  return t ? [[name, t, "read"]] : [];
}

/** An output binding. */
export function output(name: string, t: tf.TensorInfo): Buf {
  return [name, t, "read_write"];
}

/**
 * Record one dispatch: `body(header)` is the shader, where `header` declares the bindings (in the
 * order of `bufs`, as `array<f32>`) and `var<uniform> u: U` with `fields`. The pipeline key gets the
 * binding names appended, so optional-input variants never share a pipeline; `key` must name every
 * other compile-time choice.
 */
export function launch(
  be: GpuBackend,
  key: string,
  bufs: Buf[],
  fields: Field[],
  groups: [number, number, number],
  body: (header: string) => string,
): void {
  const header = () => {
    const lines = bufs.map(([n, , a], i) => `@group(0) @binding(${i}) var<storage, ${a}> ${n}: array<f32>;`);
    lines.push(`struct U { ${fields.map(([n, t]) => `${n}: ${t}`).join(", ")} };`);
    lines.push(`@group(0) @binding(${bufs.length}) var<uniform> u: U;`);
    return lines.join("\n");
  };
  gpuDispatch(
    be,
    `${key}|${bufs.map((b) => b[0]).join(",")}`,
    () => body(header()),
    bufs.map((b) => b[1]),
    fields.map(([, t, v]) => [t, v]),
    groups,
  );
}

/** A tfjs kernel function from one that returns its outputs as a list (in the Spec's order). */
export function gpuKernel(f: (x: GpuInputs, a: Attrs, be: GpuBackend) => tf.TensorInfo[]): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const outs = f(inputs as GpuInputs, (attrs ?? {}) as Attrs, backend as unknown as GpuBackend);
    return outs.length === 1 ? outs[0] : outs;
  };
}

/** Shapes of the present inputs, for a Spec's `outputs`. */
export function shapesOf(x: GpuInputs): Record<string, number[]> {
  const s: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(x)) if (t) s[k] = t.shape;
  return s;
}

/**
 * erf as the CPU kernels compute it (lib/engine/fused_math.ts: Eigen's rational approximation,
 * clamped to [-4, 4]); WGSL has no erf. Also the constants of GELU and its gradient.
 */
export const ERF_WGSL = `
const SQRT1_2 = 0.7071067811865476;
const INV_SQRT_2PI = 0.3989422804014327;
fn erf(x0: f32) -> f32 {
  let x = clamp(x0, -4.0, 4.0);
  let x2 = x * x;
  let x4 = x2 * x2;
  let x8 = x4 * x4;
  let p = (-1.60960333262415e-02 + -2.95459980854025e-03 * x2) +
    x4 * (-7.34990630326855e-04 + -5.69250639462346e-05 * x2) +
    x8 * ((-2.10102402082508e-06 + 2.77068142495902e-08 * x2) + x4 * -2.72614225801306e-10);
  let q = (-1.42647390514189e-02 + -7.37332916720468e-03 * x2) +
    x4 * (-1.68282697438203e-03 + -2.13374055278905e-04 * x2) + x8 * -1.45660718464996e-05;
  return x * p / q;
}`;

/**
 * Elementwise: `body` runs once per element index `i` < `u.n` (the first uniform field must be
 * `n: u32`); dispatch with `groupsFor(n, 256)`.
 */
export function elementwiseShader(header: string, body: string, extra = ""): string {
  return `${header}
${extra}
// one thread per element; the grid may be split over y (groupsFor), so i counts across rows of groups
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = id.x + id.y * nw.x * 256u;
  if (i >= u.n) { return; }
${body}
}`;
}

/** How a row kernel covers rows of C columns: threads per row, columns per thread, workgroup size. */
export interface RowPlan {
  /** Threads per row (a power of two, at most 256). */
  tpr: number;
  /** Columns each thread holds in registers: ceil(C / tpr). */
  cpt: number;
  /** Threads per workgroup: max(64, tpr) unless asked for more. */
  wg: number;
  /** Rows per workgroup: wg / tpr. */
  rpw: number;
}

/** Beyond this many columns per thread a row kernel would spill its registers; rows that long do not occur. */
const MAX_CPT = 64;

/** About 4 columns per thread, 1 to 256 threads per row; workgroups of at least `minWg` threads. */
export function rowPlan(C: number, what: string, minWg = 64): RowPlan {
  let tpr = 1;
  while (tpr < 256 && tpr * 4 < C) tpr *= 2;
  const cpt = Math.max(1, Math.ceil(C / tpr));
  if (cpt > MAX_CPT) throw new Error(`${what}: rows of ${C} exceed the WebGPU kernel's ${256 * MAX_CPT}`);
  const wg = Math.max(minWg, tpr);
  return { tpr, cpt, wg, rpw: wg / tpr };
}

/** The part of a pipeline key that a RowPlan decides. */
export function planKey(p: RowPlan): string {
  return `tpr${p.tpr}cpt${p.cpt}wg${p.wg}`;
}

/**
 * WGSL constants of `p` (TPR, CPT, WG, RPW) and segment reductions over the TPR threads of a row:
 * `rowSum(v, li)`, `rowMax(v, li)`, `rowSum2(v2, li)` (two sums at once), each returning the
 * result to every thread of the segment. Call them in uniform control flow (all threads of the
 * workgroup, rows past the end included): they contain barriers.
 */
export function rowHelpers(p: RowPlan, ops: ("sum" | "max" | "sum2")[]): string {
  const consts = `const TPR = ${p.tpr}u;
const CPT = ${p.cpt}u;
const WG = ${p.wg}u;
const RPW = ${p.rpw}u;`;
  // a tree over the segment's slots of `red`: halve the active threads each step
  const tree = (name: string, type: string, red: string, combine: (a: string, b: string) => string) => `
fn ${name}(v: ${type}, li: u32) -> ${type} {
  ${red}[li] = v;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s = s / 2u) {
    if (li % TPR < s) { ${red}[li] = ${combine(`${red}[li]`, `${red}[li + s]`)}; }
    workgroupBarrier();
  }
  let r = ${red}[li - li % TPR];
  workgroupBarrier(); // everyone has read the result before the next reduction overwrites it
  return r;
}`;
  const parts = [consts];
  if (ops.includes("sum") || ops.includes("max")) parts.push("var<workgroup> red: array<f32, WG>;");
  if (ops.includes("sum2")) parts.push("var<workgroup> red2: array<vec2<f32>, WG>;");
  if (ops.includes("sum")) parts.push(tree("rowSum", "f32", "red", (a, b) => `${a} + ${b}`));
  if (ops.includes("max")) parts.push(tree("rowMax", "f32", "red", (a, b) => `max(${a}, ${b})`));
  if (ops.includes("sum2")) parts.push(tree("rowSum2", "vec2<f32>", "red2", (a, b) => `${a} + ${b}`));
  return parts.join("\n");
}

/**
 * The start of a row kernel's `main`: `lane` (0..TPR-1, the thread's place in its row), `row`,
 * `live` (row < u.R; rows past the end still join the reductions) and `o` (the row's offset).
 * Needs `u.R` and `u.C`; dispatch with `groupsFor(R, RPW)`.
 */
export const ROW_MAIN = `@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nw: vec3<u32>) {
  let lane = li % TPR;
  let row = (wid.x + wid.y * nw.x) * RPW + li / TPR;
  let live = row < u.R;
  let o = row * u.C;`;

/** Column tile of a column-sum dispatch: TC columns by TR threads down them (TC * TR = 256). */
export interface ColTile {
  tc: number;
  tr: number;
}

/** A wide tile (64 columns, coalesced 256-byte rows) for wide matrices, narrower ones for narrow. */
export function colTile(C: number): ColTile {
  const tc = C >= 64 ? 64 : C > 8 ? 16 : 8;
  return { tc, tr: 256 / tc };
}

/** The tile that sums partial sums (few rows): 8 columns (32 bytes, one memory sector) by 32 threads. */
export const PARTIAL_TILE: ColTile = { tc: 8, tr: 32 };

/** At most this many chunks of rows, so the second pass sums at most this many rows a column. */
const MAX_CHUNKS = 256;

/** Rows per chunk and chunk count for summing R rows with tile `t`. */
export function colChunks(R: number, t: ColTile): { rows: number; chunks: number } {
  const rows = Math.max(4 * t.tr, Math.ceil(R / MAX_CHUNKS));
  return { rows, chunks: Math.max(1, Math.ceil(R / rows)) };
}

/**
 * A column-sum shader: workgroup (x, y) sums columns x*TC .. x*TC+TC-1 over rows
 * y*u.rows .. y*u.rows+u.rows-1 (< u.R). `value` is WGSL that sets `let v: f32` for row `r`, column
 * `c` (it may also write an elementwise output); `store` writes `total`, the sum of chunk `ch` in
 * column `c`. The uniforms start with `R: u32, C: u32, rows: u32`. Dispatch [ceil(C / TC), chunks, 1].
 */
export function colShader(header: string, t: ColTile, value: string, store: string, extra = ""): string {
  return `${header}
${extra}
const TC = ${t.tc}u;
const TR = ${t.tr}u;
var<workgroup> acc: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x * TC + li % TC;
  let lane = li / TC;
  let ch = wid.y;
  let r1 = min(ch * u.rows + u.rows, u.R);
  var sum = 0.0;
  if (c < u.C) {
    for (var r = ch * u.rows + lane; r < r1; r += TR) {
${value}
      sum += v;
    }
  }
  // tree over the TR threads of each column: acc[lane * TC + column in tile]
  acc[li] = sum;
  workgroupBarrier();
  for (var s = TR / 2u; s > 0u; s = s / 2u) {
    if (lane < s) { acc[li] += acc[li + s * TC]; }
    workgroupBarrier();
  }
  if (lane == 0u && c < u.C) {
    let total = acc[li];
${store}
  }
}`;
}

/** Column-sum dispatch grid for C columns and `chunks` chunks. */
export function colGroups(C: number, t: ColTile, chunks: number): [number, number, number] {
  return [Math.ceil(C / t.tc), chunks, 1];
}

/** out[c] = the sum over rows of src [R, C] in one dispatch, one chunk: the second pass over partial sums. */
export function sumRowsOnce(
  be: GpuBackend,
  src: tf.TensorInfo,
  R: number,
  C: number,
  out: tf.TensorInfo,
): void {
  const t = PARTIAL_TILE;
  launch(
    be,
    "IjColSumOnce",
    [["x", src, "read"], ["out", out, "read_write"]],
    [["R", "u32", R], ["C", "u32", C], ["rows", "u32", Math.max(1, R)]],
    colGroups(C, t, 1),
    (h) => colShader(h, t, "      let v = x[r * u.C + c];", "    out[c] = total;"),
  );
}

/**
 * A column sum whose values come from `value` (see {@link colShader}) over [R, C], into `out` [C]:
 * one dispatch when the rows fit one chunk, else chunks into partial sums, then {@link sumRowsOnce}.
 * `bufs` are the bindings `value` uses (a `dst` binding is appended); `fields` extra uniforms after
 * R, C, rows.
 */
export function sumColumns(
  be: GpuBackend,
  key: string,
  bufs: Buf[],
  fields: Field[],
  R: number,
  C: number,
  out: tf.TensorInfo,
  value: string,
  extra = "",
): void {
  const t = colTile(C);
  const { rows, chunks } = colChunks(R, t);
  const dst = chunks === 1 ? out : gpuOutput(be, [chunks, C]);
  launch(
    be,
    `${key}:${t.tc}`,
    [...bufs, output("dst", dst)],
    [["R", "u32", R], ["C", "u32", C], ["rows", "u32", rows], ...fields],
    colGroups(C, t, chunks),
    (h) => colShader(h, t, value, "    dst[ch * u.C + c] = total;", extra),
  );
  if (dst !== out) {
    sumRowsOnce(be, dst, chunks, C, out);
    be.disposeData(dst.dataId);
  }
}
