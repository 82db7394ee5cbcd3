/**
 * The backward fused kernels (lib/engine/fused_grad_kernels.ts) as WGSL compute shaders on tfjs's
 * `webgpu` backend: LayerNorm, GELU and softmax gradients, merging head gradients into rows, column
 * sums and the smooth-L1 gradient. The TypeScript loops of fused_grad_kernels.ts are the reference
 * semantics; output shapes come from the same Specs.
 *
 * A kernel with a sum over rows (a parameter or bias gradient) computes its elementwise output and
 * the column sums of its chunk of rows in one dispatch, then sums the chunks' partial sums in a
 * second (one dispatch when all rows fit one chunk): two dispatches, float32 trees instead of the CPU
 * kernels' float64 running sums (lib/engine/fused_webgpu_wgsl.ts).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import * as grad from "./fused_grad_kernels.ts";
import { rowsCols } from "./fused_math.ts";
import {
  colShader,
  elementwiseShader,
  ERF_WGSL,
  gpuKernel,
  input,
  launch,
  output,
  PARTIAL_TILE,
  planKey,
  ROW_MAIN,
  rowHelpers,
  rowPlan,
  shapesOf,
  sumColumns,
} from "./fused_webgpu_wgsl.ts";
import { gpuOutput, groupsFor } from "./webgpu_dispatch.ts";

/** The LayerNorm gradient's first dispatch has at most this many workgroups (rows of partial sums). */
const LN_CHUNKS = 1024;

/**
 * IjLayerNormGrad: dy, x [R, D], stats [R, 2], gamma [D]?, dres [R, D]? -> dx [R, D] (+ dres),
 * dgamma [D] = sum_r dy * xhat, dbeta [D] = sum_r dy.
 *
 * Dispatch 1, a row kernel of 256-thread workgroups (RPW rows side by side), each walking `steps`
 * groups of rows: per row, the two row sums (of g = dy * gamma and of g * xhat) in one tree, then
 * dx; meanwhile each thread adds dy * xhat and dy of its columns into registers. At the end the RPW
 * segments add theirs together and the workgroup writes one row of the partial sums [P, 2D]
 * (dgamma's in columns 0..D-1, dbeta's in D..2D-1). Dispatch 2 sums the P <= 1024 rows.
 */
const layerNormGrad = gpuKernel((x, a, be) => {
  const shapes = grad.layerNormGrad.outputs(shapesOf(x), a);
  const [dx, dgamma, dbeta] = shapes.map((s) => gpuOutput(be, s));
  const [R, C] = rowsCols(x.x!.shape);
  const p = rowPlan(C, "IjLayerNormGrad", 256);
  const groups = Math.ceil(R / p.rpw); // groups of RPW rows
  const steps = Math.max(1, Math.ceil(groups / LN_CHUNKS));
  const P = Math.max(1, Math.ceil(groups / steps));
  const part = gpuOutput(be, [P, 2 * C]);
  const g = x.gamma ? " * gamma[c]" : "", res = x.dres ? "dres[o + c] + " : "";
  launch(
    be,
    `IjLayerNormGrad:${planKey(p)}`,
    [
      ...input("dy", x.dy),
      ...input("x", x.x),
      ...input("stats", x.stats),
      ...input("gamma", x.gamma),
      ...input("dres", x.dres),
      output("dx", dx),
      output("part", part),
    ],
    [["R", "u32", R], ["C", "u32", C], ["steps", "u32", steps], ["chunks", "u32", P]],
    groupsFor(P, 1),
    (h) =>
      `${h}
${rowHelpers(p, ["sum2"])}
// workgroup ch: rows (ch * steps + st) * RPW + seg for st < steps; row ch of the partial sums
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nw: vec3<u32>) {
  let ch = wid.x + wid.y * nw.x;
  if (ch >= u.chunks) { return; } // a whole workgroup of the grid's padding
  let lane = li % TPR;
  let seg = li / TPR;
  var dg: array<f32, CPT>; // sum of dy * xhat, this thread's columns
  var db: array<f32, CPT>; // sum of dy
  for (var st = 0u; st < u.steps; st++) {
    let row = (ch * u.steps + st) * RPW + seg;
    let live = row < u.R;
    let o = row * u.C;
    var mean = 0.0;
    var rstd = 0.0;
    if (live) { mean = stats[2u * row]; rstd = stats[2u * row + 1u]; }
    var xh: array<f32, CPT>;
    var gv: array<f32, CPT>;
    var sums = vec2<f32>(0.0, 0.0); // (sum g, sum g * xhat)
    for (var k = 0u; k < CPT; k++) {
      let c = lane + k * TPR;
      if (live && c < u.C) {
        let d = dy[o + c];
        xh[k] = (x[o + c] - mean) * rstd;
        gv[k] = d${g};
        dg[k] += d * xh[k];
        db[k] += d;
        sums += vec2<f32>(gv[k], gv[k] * xh[k]);
      }
    }
    let mg = rowSum2(sums, li) / f32(u.C);
    if (live) {
      for (var k = 0u; k < CPT; k++) {
        let c = lane + k * TPR;
        if (c < u.C) { dx[o + c] = ${res}rstd * (gv[k] - mg.x - xh[k] * mg.y); }
      }
    }
  }
  // add the RPW segments' column sums (a tree over segments), segment 0 writes them
  for (var k = 0u; k < CPT; k++) {
    red2[li] = vec2<f32>(dg[k], db[k]);
    workgroupBarrier();
    for (var s = RPW / 2u; s > 0u; s = s / 2u) {
      if (seg < s) { red2[li] += red2[li + s * TPR]; }
      workgroupBarrier();
    }
    let c = lane + k * TPR;
    if (seg == 0u && c < u.C) {
      part[ch * 2u * u.C + c] = red2[li].x;
      part[ch * 2u * u.C + u.C + c] = red2[li].y;
    }
  }
}`,
  );
  // columns 0..D-1 of the partial sums are dgamma's, D..2D-1 dbeta's
  const t = PARTIAL_TILE;
  launch(
    be,
    "IjLayerNormGradSum",
    [["part", part, "read"], output("dgamma", dgamma), output("dbeta", dbeta)],
    [["R", "u32", P], ["C", "u32", 2 * C], ["rows", "u32", P], ["D", "u32", C]],
    [Math.ceil((2 * C) / t.tc), 1, 1],
    (h) =>
      colShader(
        h,
        t,
        "      let v = part[r * u.C + c];",
        "    if (c < u.D) { dgamma[c] = total; } else { dbeta[c - u.D] = total; }",
      ),
  );
  be.disposeData(part.dataId);
  return [dx, dgamma, dbeta];
});

/**
 * IjBiasGeluGrad: dy, u [R, F], bias [F]?, y [R, F]? (the forward output) -> du = dy * gelu'(u +
 * bias), dbias = column sums of du. Phi(v) comes from y / v when y is given (its Taylor expansion
 * for |v| < 1e-3), else from erf, as on the CPU.
 */
const biasGeluGrad = gpuKernel((x, a, be) => {
  const [duShape, dbShape] = grad.biasGeluGrad.outputs(shapesOf(x), a);
  const du = gpuOutput(be, duShape), dbias = gpuOutput(be, dbShape);
  const [R, C] = rowsCols(duShape);
  const cdf = x.y
    ? "select(y[i] / v0, 0.5 + v0 * INV_SQRT_2PI, abs(v0) < 1e-3)"
    : "0.5 * (1.0 + erf(v0 * SQRT1_2))";
  sumColumns(
    be,
    "IjBiasGeluGrad",
    [
      ...input("dy", x.dy),
      ...input("pre", x.u),
      ...input("bias", x.bias),
      ...input("y", x.y),
      output("du", du),
    ],
    [],
    R,
    C,
    dbias,
    `      let i = r * u.C + c;
      let v0 = pre[i]${x.bias ? " + bias[c]" : ""};
      let v = dy[i] * (${cdf} + v0 * INV_SQRT_2PI * exp(-0.5 * v0 * v0));
      du[i] = v;`,
    ERF_WGSL,
  );
  return [du, dbias];
});

/**
 * IjMergeHeads: dq, dk, dv [B*H, T, hd] -> dqkv [B*T, 3D] (dq times scale), dbias [3D] = its column
 * sums. Each thread of the column-sum shader writes the dqkv element (r, c) it sums.
 */
const mergeHeads = gpuKernel((x, a, be) => {
  const [rowsShape, biasShape] = grad.mergeHeads.outputs(shapesOf(x), a);
  const dqkv = gpuOutput(be, rowsShape), dbias = gpuOutput(be, biasShape);
  const [, T, hd] = x.dq!.shape;
  const H = a.heads as number, D = H * hd;
  sumColumns(
    be,
    "IjMergeHeads",
    [...input("dq", x.dq), ...input("dk", x.dk), ...input("dv", x.dv), output("dqkv", dqkv)],
    [["T", "u32", T], ["H", "u32", H], ["hd", "u32", hd], ["D", "u32", D], [
      "scale",
      "f32",
      a.scale as number,
    ]],
    rowsShape[0],
    3 * D,
    dbias,
    `      // column c = part * D + head * hd + j of row r = b * T + t  <-  ((b * H + head) * T + t) * hd + j
      let cc = c % u.D;
      let s = (((r / u.T) * u.H + cc / u.hd) * u.T + r % u.T) * u.hd + cc % u.hd;
      var v: f32;
      if (c < u.D) { v = dq[s] * u.scale; } else if (c < 2u * u.D) { v = dk[s]; } else { v = dv[s]; }
      dqkv[r * u.C + c] = v;`,
  );
  return [dqkv, dbias];
});

/** IjSoftmaxGrad: p, dp [R, C] -> p * (dp - rowsum(dp * p)). A row kernel. */
const softmaxGrad = gpuKernel((x, a, be) => {
  const [shape] = grad.softmaxGrad.outputs(shapesOf(x), a);
  const ds = gpuOutput(be, shape);
  const [R, C] = rowsCols(shape);
  const p = rowPlan(C, "IjSoftmaxGrad");
  launch(
    be,
    `IjSoftmaxGrad:${planKey(p)}`,
    [...input("p", x.p), ...input("dp", x.dp), output("ds", ds)],
    [["R", "u32", R], ["C", "u32", C]],
    groupsFor(R, p.rpw),
    (h) =>
      `${h}
${rowHelpers(p, ["sum"])}
// one row per TPR threads: the dot product of the row's dp and p, then the elementwise result
${ROW_MAIN}
  var pv: array<f32, CPT>;
  var dv: array<f32, CPT>;
  var dot = 0.0;
  for (var k = 0u; k < CPT; k++) {
    let c = lane + k * TPR;
    if (live && c < u.C) { pv[k] = p[o + c]; dv[k] = dp[o + c]; dot += pv[k] * dv[k]; }
  }
  let total = rowSum(dot, li);
  if (!live) { return; }
  for (var k = 0u; k < CPT; k++) {
    let c = lane + k * TPR;
    if (c < u.C) { ds[o + c] = pv[k] * (dv[k] - total); }
  }
}`,
  );
  return [ds];
});

/** IjColSum: x [R, C] -> column sums [C]. */
const colSum = gpuKernel((x, a, be) => {
  const [shape] = grad.colSum.outputs(shapesOf(x), a);
  const out = gpuOutput(be, shape);
  const [R, C] = rowsCols(x.x!.shape);
  sumColumns(be, "IjColSum", input("x", x.x), [], R, C, out, "      let v = x[r * u.C + c];");
  return [out];
});

/** IjSmoothL1Grad: dy * clamp(d, -1, 1), elementwise. */
const smoothL1Grad = gpuKernel((x, a, be) => {
  const [shape] = grad.smoothL1Grad.outputs(shapesOf(x), a);
  const dd = gpuOutput(be, shape), n = shape.reduce((m, k) => m * k, 1);
  launch(
    be,
    "IjSmoothL1Grad",
    [...input("d", x.d), ...input("dy", x.dy), output("dd", dd)],
    [["n", "u32", n]],
    groupsFor(n, 256),
    (h) => elementwiseShader(h, "  dd[i] = dy[i] * clamp(d[i], -1.0, 1.0);"),
  );
  return [dd];
});

/** The backward kernels for the `webgpu` backend, by fused-kernel name. */
export const GRAD_KERNELS: Record<string, tf.KernelFunc> = {
  IjLayerNormGrad: layerNormGrad,
  IjBiasGeluGrad: biasGeluGrad,
  IjMergeHeads: mergeHeads,
  IjSoftmaxGrad: softmaxGrad,
  IjColSum: colSum,
  IjSmoothL1Grad: smoothL1Grad,
};
