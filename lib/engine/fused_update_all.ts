/**
 * The optimizer step and the target encoder's EMA over every parameter in one kernel call each,
 * written in place: {@link adamwUpdateAll} and {@link emaUpdateAll}. The kernels `IjAdamWAll` and
 * `IjEmaAll` take all the tensors at once (inputs `p0`, `m0`, `v0`, `g0`, `p1`, ... or `t0`, `c0`,
 * ...), overwrite the parameters' and moments' own memory and return nothing: no output tensors,
 * no reshapes, no `assign`.
 *
 * - cpu: the TypeScript loops on the backend's arrays.
 * - wasm: the SIMD module (lib/engine/simd/kernels.c, `ij_adamw`, `ij_ema`) on the tensors' heap
 *   memory, input and output at the same address (the loops are elementwise, so this is safe).
 * - webgpu: the tensors are copied into flat buffers (buffer copies, not shader dispatches), one
 *   shader updates everything, and the results are copied back: 1 dispatch where the per-parameter
 *   path made about 10 kernels a parameter (lib/engine/webgpu_dispatch.ts).
 *
 * In place is only safe when no other tensor shares a variable's memory (tfjs shares it between a
 * tensor and its clones and reshapes): the wrappers give any shared variable its own copy first.
 *
 * Measured on the reference step (wasm, 2 cores): 207 update kernels and 393 reshapes became 2
 * kernel calls.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { simdFor, simdWanted, type WasmLike } from "./fused_simd.ts";
import { gpuCopy, gpuDispatch, gpuOutput, groupsFor, type WebGpuLike } from "./webgpu_dispatch.ts";

/** Hyper-parameters of one {@link adamwUpdateAll}. */
export interface AdamWUpdate {
  lr: number;
  /** Decoupled weight decay of the parameters whose decay flag is 1. */
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** The step number t (>= 1) of the bias corrections. */
  step: number;
}

interface Arrays {
  data: { get(dataId: unknown): { values?: unknown } };
}

type Ins = Record<string, tf.TensorInfo>;

/** AdamW constants shared by every backend (PyTorch's formula, as lib/train/adamw.ts). */
function adamConsts(a: Record<string, unknown>) {
  const lr = a.lr as number, c1 = a.c1 as number, c2 = a.c2 as number;
  return {
    b1: a.beta1 as number,
    b2: a.beta2 as number,
    eps: a.eps as number,
    lrWd: lr * (a.weightDecay as number),
    step: lr / c1,
    root: 1 / Math.sqrt(c2),
    decays: a.decays as number[],
  };
}

function adamCpu({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]) {
  const be = backend as unknown as Arrays, ins = inputs as Ins, n = attrs!.n as number;
  const k = adamConsts(attrs as Record<string, unknown>);
  const arr = (t: tf.TensorInfo) => be.data.get(t.dataId).values as Float32Array;
  for (let i = 0; i < n; i++) {
    const p = arr(ins[`p${i}`]), m = arr(ins[`m${i}`]), v = arr(ins[`v${i}`]), g = arr(ins[`g${i}`]);
    const keep = 1 - k.lrWd * k.decays[i];
    for (let j = 0; j < p.length; j++) {
      const gj = g[j];
      const mj = k.b1 * m[j] + (1 - k.b1) * gj;
      const vj = k.b2 * v[j] + (1 - k.b2) * gj * gj;
      m[j] = mj;
      v[j] = vj;
      p[j] = p[j] * keep - (k.step * mj) / (Math.sqrt(vj) * k.root + k.eps);
    }
  }
  return [];
}

function emaCpu({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]) {
  const be = backend as unknown as Arrays, ins = inputs as Ins, n = attrs!.n as number;
  const mom = attrs!.momentum as number;
  const arr = (t: tf.TensorInfo) => be.data.get(t.dataId).values as Float32Array;
  for (let i = 0; i < n; i++) {
    const t = arr(ins[`t${i}`]), c = arr(ins[`c${i}`]);
    for (let j = 0; j < t.length; j++) t[j] = mom * t[j] + (1 - mom) * c[j];
  }
  return [];
}

function heapPtr(be: WasmLike, t: tf.TensorInfo): number {
  return be.dataIdMap.get(t.dataId).memoryOffset;
}

function adamWasm(args: Parameters<tf.KernelFunc>[0]) {
  const be = args.backend as unknown as WasmLike, ins = args.inputs as Ins, n = args.attrs!.n as number;
  const simd = simdWanted() ? simdFor(be) : null;
  if (!simd) return adamViews(be, ins, n, args.attrs as Record<string, unknown>);
  const k = adamConsts(args.attrs as Record<string, unknown>);
  for (let i = 0; i < n; i++) {
    const [p, m, v, g] = ["p", "m", "v", "g"].map((s) => heapPtr(be, ins[`${s}${i}`]));
    const size = tf.util.sizeFromShape(ins[`p${i}`].shape);
    const keep = 1 - k.lrWd * k.decays[i];
    simd.f.ij_adamw(p, m, v, g, p, m, v, size, k.b1, 1 - k.b1, k.b2, 1 - k.b2, k.eps, k.step, k.root, keep);
  }
  return [];
}

/** The TypeScript loops on wasm heap views (SIMD off). */
function adamViews(be: WasmLike, ins: Ins, n: number, attrs: Record<string, unknown>) {
  const heap = be.wasm.HEAPF32;
  const data = {
    get: (id: unknown) => {
      const t = Object.values(ins).find((x) => x.dataId === id)!;
      const off = be.dataIdMap.get(id).memoryOffset / 4;
      return { values: heap.subarray(off, off + tf.util.sizeFromShape(t.shape)) };
    },
  };
  return adamCpu({ inputs: ins, backend: { data } as unknown as tf.KernelBackend, attrs: { ...attrs, n } });
}

function emaWasm(args: Parameters<tf.KernelFunc>[0]) {
  const be = args.backend as unknown as WasmLike, ins = args.inputs as Ins, n = args.attrs!.n as number;
  const mom = args.attrs!.momentum as number;
  const simd = simdWanted() ? simdFor(be) : null;
  for (let i = 0; i < n; i++) {
    const t = ins[`t${i}`], c = ins[`c${i}`];
    const size = tf.util.sizeFromShape(t.shape);
    if (simd) {
      simd.f.ij_ema(heapPtr(be, t), heapPtr(be, c), heapPtr(be, t), size, mom, 1 - mom);
    } else {
      const heap = be.wasm.HEAPF32, to = heapPtr(be, t) / 4, co = heapPtr(be, c) / 4;
      for (let j = 0; j < size; j++) heap[to + j] = mom * heap[to + j] + (1 - mom) * heap[co + j];
    }
  }
  return [];
}

const ADAM_WGSL = `
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read_write> m: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
// the first nDecay elements belong to parameters with weight decay, the rest to those without
struct U { n: u32, nDecay: u32, b1: f32, b1c: f32, b2: f32, b2c: f32, eps: f32, lrWd: f32, step: f32, root: f32 };
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = id.x + id.y * nw.x * 256u;
  if (i >= u.n) { return; }
  let gi = g[i];
  let mi = u.b1 * m[i] + u.b1c * gi;
  let vi = u.b2 * v[i] + u.b2c * gi * gi;
  m[i] = mi;
  v[i] = vi;
  var keep = 1.0;
  if (i < u.nDecay) { keep = 1.0 - u.lrWd; }
  p[i] = p[i] * keep - (u.step * mi) / (sqrt(vi) * u.root + u.eps);
}`;

const EMA_WGSL = `
@group(0) @binding(0) var<storage, read_write> t: array<f32>;
@group(0) @binding(1) var<storage, read> c: array<f32>;
struct U { n: u32, mom: f32, rest: f32 };
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = id.x + id.y * nw.x * 256u;
  if (i >= u.n) { return; }
  t[i] = u.mom * t[i] + u.rest * c[i];
}`;

/** Copy each tensor of `ts` into one flat buffer (or back out of it when `back`). */
function gather(be: WebGpuLike, ts: tf.TensorInfo[], flat: tf.TensorInfo, back = false): void {
  let o = 0;
  for (const t of ts) {
    const bytes = 4 * tf.util.sizeFromShape(t.shape);
    if (back) gpuCopy(be, flat, o, t, 0, bytes);
    else gpuCopy(be, t, 0, flat, o, bytes);
    o += bytes;
  }
}

function flatTemp(be: WebGpuLike, total: number, n: number): tf.TensorInfo[] {
  return Array.from({ length: n }, () => gpuOutput(be, [total]));
}

function adamWebGpu(args: Parameters<tf.KernelFunc>[0]) {
  const be = args.backend as unknown as WebGpuLike & tf.KernelBackend, ins = args.inputs as Ins;
  const n = args.attrs!.n as number;
  const k = adamConsts(args.attrs as Record<string, unknown>);
  // decayed parameters first, so the shader tells them apart by index alone
  const order = [...Array(n).keys()].sort((i, j) => k.decays[j] - k.decays[i] || i - j);
  const [ps, ms, vs, gs] = ["p", "m", "v", "g"].map((s) => order.map((i) => ins[`${s}${i}`]));
  const sizes = ps.map((t) => tf.util.sizeFromShape(t.shape));
  const total = sizes.reduce((a, b) => a + b, 0);
  const nDecay = sizes.reduce((a, sz, j) => a + (k.decays[order[j]] ? sz : 0), 0);
  const [P, M, V, G] = flatTemp(be, total, 4);
  gather(be, ps, P);
  gather(be, ms, M);
  gather(be, vs, V);
  gather(be, gs, G);
  gpuDispatch(be, "IjAdamWAll", () => ADAM_WGSL, [P, M, V, G], [
    ["u32", total],
    ["u32", nDecay],
    ["f32", k.b1],
    ["f32", 1 - k.b1],
    ["f32", k.b2],
    ["f32", 1 - k.b2],
    ["f32", k.eps],
    ["f32", k.lrWd],
    ["f32", k.step],
    ["f32", k.root],
  ], groupsFor(total, 256));
  gather(be, ps, P, true);
  gather(be, ms, M, true);
  gather(be, vs, V, true);
  for (const t of [P, M, V, G]) be.disposeData(t.dataId);
  return [];
}

function emaWebGpu(args: Parameters<tf.KernelFunc>[0]) {
  const be = args.backend as unknown as WebGpuLike & tf.KernelBackend, ins = args.inputs as Ins;
  const n = args.attrs!.n as number;
  const [ts, cs] = ["t", "c"].map((s) => Array.from({ length: n }, (_, i) => ins[`${s}${i}`]));
  const total = ts.reduce((a, t) => a + tf.util.sizeFromShape(t.shape), 0);
  const [T, C] = flatTemp(be, total, 2);
  gather(be, ts, T);
  gather(be, cs, C);
  gpuDispatch(
    be,
    "IjEmaAll",
    () => EMA_WGSL,
    [T, C],
    [["u32", total], ["f32", args.attrs!.momentum as number], ["f32", 1 - (args.attrs!.momentum as number)]],
    groupsFor(total, 256),
  );
  gather(be, ts, T, true);
  for (const t of [T, C]) be.disposeData(t.dataId);
  return [];
}

/** Register `IjAdamWAll` and `IjEmaAll` for cpu and for wasm and webgpu where they are loaded. */
export function registerUpdateAllKernels(): void {
  const kernels: [string, string, tf.KernelFunc][] = [
    ["IjAdamWAll", "cpu", adamCpu],
    ["IjEmaAll", "cpu", emaCpu],
    ["IjAdamWAll", "wasm", adamWasm],
    ["IjEmaAll", "wasm", emaWasm],
    ["IjAdamWAll", "webgpu", adamWebGpu],
    ["IjEmaAll", "webgpu", emaWebGpu],
  ];
  for (const [kernelName, backendName, kernelFunc] of kernels) {
    // a backend registers its stock kernels on import; without that import it does not exist here
    if (!tf.getKernel("Add", backendName) || tf.getKernel(kernelName, backendName)) continue;
    tf.registerKernel({ kernelName, backendName, kernelFunc });
  }
}

/** Give `v` memory of its own when another tensor shares it, so writing in place is safe. */
function ownMemory(v: tf.Variable): void {
  if (tf.engine().backend.refCount(v.dataId) > 1) tf.tidy(() => v.assign(tf.mul(v, 1)));
}

function checkSizes(where: string, a: tf.Tensor[], b: tf.Tensor[], what: string): void {
  if (a.length !== b.length) throw new Error(`${where}: ${a.length} parameters but ${b.length} ${what}`);
  a.forEach((t, i) => {
    if (t.size !== b[i].size || t.dtype !== "float32" || b[i].dtype !== "float32") {
      throw new Error(
        `${where}: parameter ${i} is ${t.dtype} [${t.shape}], its ${what} ${b[i].dtype} [${
          b[i].shape
        }]; expected float32 of the same size`,
      );
    }
  });
}

/**
 * One AdamW step of every parameter in one kernel call, in place. `decays[i]` is 1 where parameter
 * i gets weight decay, 0 where not; `hp.weightDecay` is the decay of those that do. Does not dispose
 * the gradients.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { adamwUpdateAll, registerUpdateAllKernels } from "./fused_update_all.ts";
 * await tf.setBackend("cpu");
 * registerUpdateAllKernels();
 * const p = tf.variable(tf.tensor1d([1, -1])), m = tf.variable(tf.zeros([2])), v = tf.variable(tf.zeros([2]));
 * adamwUpdateAll([p], [m], [v], [tf.tensor1d([1, -1])], [0], { lr: 0.1, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 });
 * const got = p.dataSync();
 * if (Math.abs(got[0] - 0.9) > 1e-5 || Math.abs(got[1] + 0.9) > 1e-5) throw new Error(`${got}`);
 * ```
 */
export function adamwUpdateAll(
  ps: tf.Variable[],
  ms: tf.Variable[],
  vs: tf.Variable[],
  gs: tf.Tensor[],
  decays: number[],
  hp: AdamWUpdate,
): void {
  const where = "adamwUpdateAll";
  checkSizes(where, ps, ms, "first moment");
  checkSizes(where, ps, vs, "second moment");
  checkSizes(where, ps, gs, "gradient");
  if (decays.length !== ps.length) {
    throw new Error(`${where}: ${ps.length} parameters, ${decays.length} decay flags`);
  }
  if (ps.length === 0) return;
  registerUpdateAllKernels();
  for (const v of [...ps, ...ms, ...vs]) ownMemory(v);
  const inputs: Record<string, tf.Tensor> = {};
  ps.forEach((p, i) => {
    inputs[`p${i}`] = p;
    inputs[`m${i}`] = ms[i];
    inputs[`v${i}`] = vs[i];
    inputs[`g${i}`] = gs[i];
  });
  const { lr, weightDecay, beta1, beta2, eps, step } = hp;
  const attrs = {
    n: ps.length,
    lr,
    weightDecay,
    beta1,
    beta2,
    eps,
    c1: 1 - Math.pow(beta1, step),
    c2: 1 - Math.pow(beta2, step),
    decays,
  };
  tf.engine().runKernel("IjAdamWAll", inputs, attrs as unknown as tf.NamedAttrMap);
}

/**
 * t <- momentum * t + (1 - momentum) * c for every pair, in one kernel call, in place.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { emaUpdateAll } from "./fused_update_all.ts";
 * await tf.setBackend("cpu");
 * const t = tf.variable(tf.tensor1d([0, 1]));
 * emaUpdateAll([t], [tf.tensor1d([1, 1])], 0.75);
 * if (t.dataSync().join() !== "0.25,1") throw new Error(`${t.dataSync()}`);
 * ```
 */
export function emaUpdateAll(ts: tf.Variable[], cs: tf.Tensor[], momentum: number): void {
  checkSizes("emaUpdateAll", ts, cs, "source");
  if (ts.length === 0) return;
  registerUpdateAllKernels();
  for (const t of ts) ownMemory(t);
  const inputs: Record<string, tf.Tensor> = {};
  ts.forEach((t, i) => {
    inputs[`t${i}`] = t;
    inputs[`c${i}`] = cs[i];
  });
  tf.engine().runKernel("IjEmaAll", inputs, { n: ts.length, momentum });
}
