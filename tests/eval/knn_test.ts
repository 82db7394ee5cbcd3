// Tests of lib/eval/knn.ts. Run: deno test -A tests/eval/knn_test.ts
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { knnAccuracy } from "../../lib/eval/knn.ts";
import { takeFeatureRows } from "../../lib/eval/feature_matrix.ts";
import { onCpu, separable } from "./_fixtures.ts";

Deno.test("knn: separable clusters are classified correctly; k larger than the pool works", async () => {
  await onCpu();
  const tr = separable(90, 8, 3, 6), te = separable(90, 8, 3, 6, 60);
  const train = { features: tr.x, dim: 8, n: 90, labels: tr.y };
  const test = { features: te.x, dim: 8, n: 90, labels: te.y };
  const before = tf.memory().numTensors;
  assert.ok((await knnAccuracy(train, test, 20)) >= 0.99);
  assert.equal(tf.memory().numTensors, before, "kNN leaves no tensor behind");
  const few = {
    features: takeFeatureRows(tr.x, 8, [0, 1, 2]),
    dim: 8,
    n: 3,
    labels: Int32Array.from([0, 1, 2]),
  };
  assert.ok((await knnAccuracy(few, test, 20)) >= 0.9, "k = 20 with 3 labelled points uses all 3");
  await assert.rejects(() => knnAccuracy(train, { ...test, dim: 4 }, 20), /expected test features \[90, 8\]/);
});
