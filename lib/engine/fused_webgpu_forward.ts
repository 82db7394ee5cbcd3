/**
 * The forward fused kernels (lib/engine/fused_forward_kernels.ts) as WGSL compute shaders on tfjs's
 * `webgpu` backend, one dispatch each: LayerNorm (y and stats from one shader), bias + GELU, the
 * head layout copies (q, k and v from one shader), softmax with a key bias, residual and bias adds,
 * smooth-L1. The TypeScript loops of fused_forward_kernels.ts are the reference semantics; output
 * shapes come from the same Specs. Optional inputs become compile-time variants (the binding list
 * is part of the pipeline key), never dummy buffers.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import * as fwd from "./fused_forward_kernels.ts";
import { rowsCols } from "./fused_math.ts";
import {
  elementwiseShader,
  ERF_WGSL,
  gpuKernel,
  input,
  launch,
  output,
  planKey,
  ROW_MAIN,
  rowHelpers,
  rowPlan,
  shapesOf,
} from "./fused_webgpu_wgsl.ts";
import { gpuOutput, groupsFor } from "./webgpu_dispatch.ts";

/** Elements of a tensor. */
function size(t: tf.TensorInfo): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

/**
 * IjLayerNorm: x [R, D], gamma [D]?, beta [D]? -> y [R, D], stats [R, 2] (mean, 1 / std). A row
 * kernel: the row's values stay in registers for the mean, the variance (two-pass, as the CPU
 * loop) and the output.
 */
const layerNorm = gpuKernel((x, a, be) => {
  const [yShape, sShape] = fwd.layerNorm.outputs(shapesOf(x), a);
  const [R, C] = rowsCols(x.x!.shape);
  const y = gpuOutput(be, yShape), stats = gpuOutput(be, sShape);
  const p = rowPlan(C, "IjLayerNorm");
  const scale = x.gamma ? " * gamma[c]" : "", shift = x.beta ? " + beta[c]" : "";
  launch(
    be,
    `IjLayerNorm:${planKey(p)}`,
    [
      ...input("x", x.x),
      ...input("gamma", x.gamma),
      ...input("beta", x.beta),
      output("y", y),
      output("stats", stats),
    ],
    [["R", "u32", R], ["C", "u32", C], ["eps", "f32", a.eps as number]],
    groupsFor(R, p.rpw),
    (h) =>
      `${h}
${rowHelpers(p, ["sum"])}
// one row of x per TPR threads; thread lane holds columns lane, lane + TPR, ... in xv
${ROW_MAIN}
  var xv: array<f32, CPT>;
  var s = 0.0;
  for (var k = 0u; k < CPT; k++) {
    let c = lane + k * TPR;
    if (live && c < u.C) { xv[k] = x[o + c]; s += xv[k]; }
  }
  let mean = rowSum(s, li) / f32(u.C);
  var q = 0.0;
  for (var k = 0u; k < CPT; k++) {
    let c = lane + k * TPR;
    if (live && c < u.C) { let d = xv[k] - mean; q += d * d; }
  }
  let rstd = 1.0 / sqrt(rowSum(q, li) / f32(u.C) + u.eps);
  if (!live) { return; }
  for (var k = 0u; k < CPT; k++) {
    let c = lane + k * TPR;
    if (c < u.C) { y[o + c] = (xv[k] - mean) * rstd${scale}${shift}; }
  }
  if (lane == 0u) {
    stats[2u * row] = mean;
    stats[2u * row + 1u] = rstd;
  }
}`,
  );
  return [y, stats];
});

/** IjBiasGelu: gelu(u + bias) elementwise over u [R, F], bias [F]? (exact GELU with erf). */
const biasGelu = gpuKernel((x, a, be) => {
  const [shape] = fwd.biasGelu.outputs(shapesOf(x), a);
  const y = gpuOutput(be, shape), n = size(y);
  const add = x.bias ? " + bias[i % u.C]" : "";
  launch(
    be,
    "IjBiasGelu",
    [...input("pre", x.u), ...input("bias", x.bias), output("y", y)],
    [["n", "u32", n], ["C", "u32", rowsCols(shape)[1]]],
    groupsFor(n, 256),
    (h) =>
      elementwiseShader(
        h,
        `  let v = pre[i]${add};
  y[i] = 0.5 * v * (1.0 + erf(v * SQRT1_2));`,
        ERF_WGSL,
      ),
  );
  return [y];
});

/**
 * Rows [B*T, W] to heads [B*H, T, hd]: thread i writes element i of each head-major output, reading
 * column block `part * D + h * hd` of its source row (coalesced within each run of hd). Output 0 is
 * times `u.scale`; with a bias, the bias is added before scaling.
 */
function rowsToHeadsShader(h: string, outs: string[], bias: boolean): string {
  const lines = outs.map((name, part) => {
    const off = part === 0 ? "" : ` + ${part}u * u.D`;
    const v = `qkv[s${off}]${bias ? ` + bias[col${off}]` : ""}`;
    return part === 0 ? `  ${name}[i] = (${v}) * u.scale;` : `  ${name}[i] = ${v};`;
  });
  return elementwiseShader(
    h,
    `  // i = ((b * H + head) * T + t) * hd + j  <-  qkv[(b * T + t) * W + part * D + head * hd + j]
  let j = i % u.hd;
  let t = (i / u.hd) % u.T;
  let bh = i / (u.hd * u.T);
  let col = (bh % u.H) * u.hd + j;
  let s = ((bh / u.H) * u.T + t) * u.W + col;
${lines.join("\n")}`,
  );
}

/** IjSplitHeads: qkv [B*T, 3D] (+ bias [3D]) -> q (times scale), k, v [B*H, T, hd], one shader. */
const splitHeads = gpuKernel((x, a, be) => {
  const shapes = fwd.splitHeads.outputs(shapesOf(x), a);
  const [q, k, v] = shapes.map((s) => gpuOutput(be, s));
  const W = x.qkv!.shape[1], D = W / 3, hd = shapes[0][2];
  launch(
    be,
    "IjSplitHeads",
    [...input("qkv", x.qkv), ...input("bias", x.bias), output("q", q), output("k", k), output("v", v)],
    [
      ["n", "u32", size(q)],
      ["T", "u32", a.tokens as number],
      ["H", "u32", a.heads as number],
      ["hd", "u32", hd],
      ["D", "u32", D],
      ["W", "u32", W],
      ["scale", "f32", a.scale as number],
    ],
    groupsFor(size(q), 256),
    (h) => rowsToHeadsShader(h, ["q", "k", "v"], x.bias !== undefined),
  );
  return [q, k, v];
});

/** IjRowsToHeads: x [B*T, D] -> [B*H, T, hd]. */
const rowsToHeads = gpuKernel((x, a, be) => {
  const [shape] = fwd.rowsToHeadsK.outputs(shapesOf(x), a);
  const y = gpuOutput(be, shape);
  const D = x.x!.shape[1];
  launch(
    be,
    "IjRowsToHeads",
    [["qkv", x.x!, "read"], output("y", y)],
    [
      ["n", "u32", size(y)],
      ["T", "u32", a.tokens as number],
      ["H", "u32", a.heads as number],
      ["hd", "u32", shape[2]],
      ["D", "u32", D],
      ["W", "u32", D],
      ["scale", "f32", 1],
    ],
    groupsFor(size(y), 256),
    (h) => rowsToHeadsShader(h, ["y"], false),
  );
  return [y];
});

/** IjHeadsToRows: x [B*H, T, hd] -> [B*T, H*hd]; thread i writes row-major element i. */
const headsToRows = gpuKernel((x, a, be) => {
  const [shape] = fwd.headsToRowsK.outputs(shapesOf(x), a);
  const y = gpuOutput(be, shape);
  const [, T, hd] = x.x!.shape;
  launch(
    be,
    "IjHeadsToRows",
    [...input("x", x.x), output("y", y)],
    [
      ["n", "u32", size(y)],
      ["T", "u32", T],
      ["H", "u32", a.heads as number],
      ["hd", "u32", hd],
      ["D", "u32", shape[1]],
    ],
    groupsFor(size(y), 256),
    (h) =>
      elementwiseShader(
        h,
        `  // i = (b * T + t) * D + head * hd + j  <-  x[((b * H + head) * T + t) * hd + j]
  let row = i / u.D;
  let col = i % u.D;
  y[i] = x[(((row / u.T) * u.H + col / u.hd) * u.T + row % u.T) * u.hd + col % u.hd];`,
      ),
  );
  return [y];
});

/**
 * IjSoftmax: s [B*H, T, Tk] (+ keyBias [B, 1, Tk], shared by the H heads of an example) ->
 * softmax over the last axis. A row kernel: max, exp and sum over the row in registers.
 */
const softmax = gpuKernel((x, a, be) => {
  const [shape] = fwd.softmax.outputs(shapesOf(x), a);
  const y = gpuOutput(be, shape);
  const [BH, T, Tk] = x.s!.shape;
  const p = rowPlan(Tk, "IjSoftmax");
  const kb = x.keyBias ? " + keyBias[kb + c]" : "";
  launch(
    be,
    `IjSoftmax:${planKey(p)}`,
    [...input("s", x.s), ...input("keyBias", x.keyBias), output("y", y)],
    [["R", "u32", BH * T], ["C", "u32", Tk], ["T", "u32", T], ["H", "u32", a.heads as number]],
    groupsFor(BH * T, p.rpw),
    (h) =>
      `${h}
${rowHelpers(p, ["sum", "max"])}
// one row (query) of s per TPR threads; the key bias row is that of example (row / T) / H
${ROW_MAIN}
  let kb = ((row / u.T) / u.H) * u.C;
  var sv: array<f32, CPT>;
  var m = -3.0e38;
  for (var k = 0u; k < CPT; k++) {
    let c = lane + k * TPR;
    if (live && c < u.C) { sv[k] = s[o + c]${kb}; m = max(m, sv[k]); }
  }
  let mx = rowMax(m, li);
  var sum = 0.0;
  for (var k = 0u; k < CPT; k++) {
    let c = lane + k * TPR;
    if (live && c < u.C) { sv[k] = exp(sv[k] - mx); sum += sv[k]; }
  }
  let inv = 1.0 / rowSum(sum, li);
  if (!live) { return; }
  for (var k = 0u; k < CPT; k++) {
    let c = lane + k * TPR;
    if (c < u.C) { y[o + c] = sv[k] * inv; }
  }
}`,
  );
  return [y];
});

/** x (+ y) (+ bias[column]) elementwise: IjResidual and IjBiasAdd. */
function addKernel(name: string, spec: typeof fwd.residual): tf.KernelFunc {
  return gpuKernel((x, a, be) => {
    const [shape] = spec.outputs(shapesOf(x), a);
    const out = gpuOutput(be, shape), n = size(out);
    const sum = ["x[i]", x.y ? "y[i]" : "", x.bias ? "bias[i % u.C]" : ""].filter((s) => s).join(" + ");
    launch(
      be,
      name,
      [...input("x", x.x), ...input("y", x.y), ...input("bias", x.bias), output("out", out)],
      [["n", "u32", n], ["C", "u32", rowsCols(shape)[1]]],
      groupsFor(n, 256),
      (h) => elementwiseShader(h, `  out[i] = ${sum};`),
    );
    return [out];
  });
}

/** IjSmoothL1: 0.5 d^2 where |d| < 1, else |d| - 0.5, elementwise. */
const smoothL1 = gpuKernel((x, a, be) => {
  const [shape] = fwd.smoothL1.outputs(shapesOf(x), a);
  const y = gpuOutput(be, shape), n = size(y);
  launch(
    be,
    "IjSmoothL1",
    [...input("d", x.d), output("y", y)],
    [["n", "u32", n]],
    groupsFor(n, 256),
    (h) =>
      elementwiseShader(
        h,
        `  let a = abs(d[i]);
  y[i] = select(a - 0.5, 0.5 * a * a, a < 1.0);`,
      ),
  );
  return [y];
});

/** The forward kernels for the `webgpu` backend, by fused-kernel name. */
export const FORWARD_KERNELS: Record<string, tf.KernelFunc> = {
  IjLayerNorm: layerNorm,
  IjBiasGelu: biasGelu,
  IjSplitHeads: splitHeads,
  IjRowsToHeads: rowsToHeads,
  IjHeadsToRows: headsToRows,
  IjSoftmax: softmax,
  IjResidual: addKernel("IjResidual", fwd.residual),
  IjBiasAdd: addKernel("IjBiasAdd", fwd.biasAdd),
  IjSmoothL1: smoothL1,
};
