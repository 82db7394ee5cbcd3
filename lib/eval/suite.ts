/**
 * Evaluation of frozen features: the suite that runs the linear probe and kNN on low-shot label
 * subsets and puts I-JEPA beside its baselines in one table (the paper's Tables 1 and 2, at our
 * scale).
 *
 * The official code ships no evaluation; this is ours, with one fixed recipe:
 *
 * - **Protocol.** The training images are the label pool; the test set is the fixed held-out
 *   split. A setting labels `n` images per class (n-shot), 1% of each class of the pool (`1%`; 60
 *   per class on Fashion-MNIST's 60k), or the whole pool (`full`). Low-shot settings are drawn
 *   `seeds` times ({@link sampleLabelSubset}); draw `s` uses `new Rng(seed + s)` in every setting,
 *   so a draw's 1-shot images are among its 5-shot images, and so on. Every method (I-JEPA, the
 *   random-init encoder, raw pixels) is fitted on the same draws.
 * - **Probe recipe** ({@link trainLinearProbe}): documented at the top of lib/eval/linear_probe.ts
 *   (logistic regression on standardised features, L2 C = 1, full-batch L-BFGS).
 * - **kNN** ({@link knnAccuracy}): documented at the top of lib/eval/knn.ts (cosine, k = 20).
 *
 * Accuracies are fractions in [0, 1]; lib/eval/report.ts `formatProbeTable` prints percentages. Spreads are
 * sample standard deviations over the draws (n - 1 in the denominator).
 *
 * @module
 */
import { channelStats, subset } from "../data/stats.ts";
import type { ImageDataset } from "../data/dataset.ts";
import { extractFeatures, type FeatureSet, rawPixelFeatures, type Readout } from "./features.ts";
import { Rng } from "../engine/rng.ts";
import type { VisionTransformer } from "../model/vit.ts";
import { takeFeatureRows } from "./feature_matrix.ts";
import { rankMe } from "./rankme.ts";
import { confusionMatrix, PROBE_DEFAULTS, type ProbeOptions, trainLinearProbe } from "./linear_probe.ts";
import { knnAccuracy, type LabelledFeatures } from "./knn.ts";
import { type ProbeSetting, probeSettings, sampleLabelSubset } from "./label_draws.ts";

/** NaN (RankMe of non-finite or too-large features) is left out of the table. */
const finiteOrUndefined = (v: number) => (Number.isFinite(v) ? v : undefined);

/** Mean and spread of one method in one setting. */
export interface ProbeCell {
  /** Mean accuracy over the draws, in [0, 1]. */
  mean: number;
  /** Sample standard deviation over the draws (0 for a single draw). */
  std: number;
  /** Accuracy of each draw. */
  runs: number[];
}

/** One row of the table: a feature source read by the probe and by kNN. */
export interface ProbeRow {
  /** e.g. "I-JEPA", "random init", "raw pixels"; with the readout when it is not avgpool. */
  method: string;
  /** The encoder's name, or "raw pixels". */
  source: string;
  /** The readout, or "pixels". */
  readout: Readout | "pixels";
  /** Features per image. */
  dim: number;
  /** Linear-probe accuracy per setting (same order as `ProbeTable.settings`). */
  probe: ProbeCell[];
  /** kNN accuracy per setting, or null when kNN is off. */
  knn: ProbeCell[] | null;
  /** Confusion matrix of the probe of the last setting's first draw on the test set ("full" by default). */
  confusion: number[][];
  /** Probe iterations of every fit, flattened setting-major (for the curious). */
  iterations: number[];
  /** Seconds spent computing this row's features (pool and test). */
  featureSeconds: number;
  /**
   * RankMe, the effective rank of the test set's features (lib/eval/rankme.ts): a collapse watch.
   * Absent in tables written before it was added, and where it could not be computed (non-finite
   * features, or more than RANKME_MAX_SIZE of both images and features).
   */
  rankMe?: number;
}

/** What {@link runProbeSuite} returns. */
export interface ProbeTable {
  /** The label settings, one column each. */
  settings: ProbeSetting[];
  /** One row per feature source. */
  rows: ProbeRow[];
  /** Name of each class index. */
  classNames: string[];
  /** Images in the label pool. */
  pool: number;
  /** Images in the test set. */
  test: number;
  /** Draws per low-shot setting. */
  seeds: number;
  /** Base seed of the draws. */
  seed: number;
  /** kNN neighbours (0 when off). */
  k: number;
  /** The probe recipe, in words. */
  recipe: string;
  /** Wall-clock seconds: features (all rows), probe fits, kNN. */
  seconds: { features: number; probe: number; knn: number };
}

/** Options of {@link runProbeSuite}. */
export interface ProbeSuiteOptions {
  /** Encoders to read (pass target encoders), each with the name shown in the table. */
  encoders: { name: string; encoder: VisionTransformer }[];
  /** Add the raw-pixel baseline (default true). */
  pixels?: boolean;
  /** The label pool. */
  train: ImageDataset;
  /** The held-out test set. */
  test: ImageDataset;
  /** n-shot settings, labelled images per class (default [1, 5, 10, 50]). */
  shots?: number[];
  /** Add the 1%-of-the-pool setting (default true). */
  onePercent?: boolean;
  /** Add the all-labels setting (default true). */
  full?: boolean;
  /** Label subsets drawn per low-shot setting (default 3). */
  seeds?: number;
  /** Base seed: draw s uses new Rng(seed + s) (default 0). */
  seed?: number;
  /** Readouts of every encoder (default ["avgpool"]). */
  readouts?: Readout[];
  /** Per-channel mean for input normalisation (default channelStats(train)). */
  mean?: readonly number[];
  /** Per-channel std for input normalisation (default channelStats(train)). */
  std?: readonly number[];
  /** Images per forward pass of feature extraction (default 256). */
  batchSize?: number;
  /** kNN neighbours (default 20; 0 turns kNN off). */
  k?: number;
  /** Probe recipe overrides (default PROBE_DEFAULTS: keep them for comparable numbers). */
  probe?: ProbeOptions;
  /** Progress lines (e.g. console.error). */
  log?: (line: string) => void;
}

/** The recipe in words, for tables and JSON. */
export function recipeText(opts: ProbeOptions = {}, k = 20): string {
  const o = { ...PROBE_DEFAULTS, ...opts };
  return `logistic regression on standardised features, L2 C=${o.C}, full-batch L-BFGS (max ${o.maxIter} ` +
    `iterations, tol ${o.tol})${k > 0 ? `; kNN cosine k=${k}, T=0.07` : ""}`;
}

function summarise(runs: number[]): ProbeCell {
  const mean = runs.reduce((a, b) => a + b, 0) / runs.length;
  const v = runs.length > 1 ? runs.reduce((a, r) => a + (r - mean) ** 2, 0) / (runs.length - 1) : 0;
  return { mean, std: Math.sqrt(v), runs };
}

/**
 * Run the whole evaluation: for every encoder and readout, and raw pixels, extract pool and test
 * features once, then for every setting and draw fit the probe and run kNN on the same label
 * subsets, and collect test accuracies with their spread. See the module doc for the protocol.
 * Without the "full" setting, only the pool images some draw labels are encoded.
 */
export async function runProbeSuite(opts: ProbeSuiteOptions): Promise<ProbeTable> {
  const { train, test } = opts;
  const K = train.classNames.length;
  if (test.classNames.length !== K) {
    throw new Error(`probe: the pool has ${K} classes and the test set ${test.classNames.length}`);
  }
  if (train.channels !== test.channels) {
    throw new Error(`probe: the pool has ${train.channels}-channel images and the test set ${test.channels}`);
  }
  const seeds = opts.seeds ?? 3, seed = opts.seed ?? 0, k = opts.k ?? 20;
  const log = opts.log ?? (() => {});
  const counts = new Array<number>(K).fill(0);
  for (const c of train.labels) counts[c]++;
  const settings = probeSettings(counts, { ...opts, seeds });
  // The label subsets, shared by every method: draw s of every setting uses new Rng(seed + s).
  const subsets: Int32Array[][] = settings.map((st) =>
    st.name === "full"
      ? [Int32Array.from({ length: train.n }, (_, i) => i)]
      : Array.from({ length: st.draws }, (_, s) =>
        sampleLabelSubset(train.labels, st.perClass, new Rng(seed + s), K))
  );
  // Only the pool images some setting labels need features (all of them when "full" is on).
  const used = new Uint8Array(train.n);
  for (const draws of subsets) for (const idx of draws) for (const i of idx) used[i] = 1;
  const usedIdx = Int32Array.from({ length: train.n }, (_, i) => i).filter((i) => used[i] === 1);
  const poolDs = usedIdx.length === train.n ? train : subset(train, usedIdx);
  const row = new Int32Array(train.n).fill(-1); // pool index -> row of the pool features
  usedIdx.forEach((i, r) => (row[i] = r));
  const stats = opts.mean && opts.std ? { mean: opts.mean, std: opts.std } : channelStats(train);
  const readouts = opts.readouts ?? ["avgpool"];
  type Source = {
    method: string;
    source: string;
    readout: Readout | "pixels";
    get: () => Promise<[FeatureSet, FeatureSet]>;
  };
  const sources: Source[] = [];
  for (const readout of readouts) {
    for (const { name, encoder } of opts.encoders) {
      const method = readouts.length === 1 && readout === "avgpool" ? name : `${name} (${readout})`;
      const ex = (ds: ImageDataset, what: string) =>
        extractFeatures(encoder, ds, {
          batchSize: opts.batchSize,
          mean: stats.mean,
          std: stats.std,
          readout,
          onProgress: (done, total) => {
            if (done === total || done % (20 * (opts.batchSize ?? 256)) === 0) {
              log(`  ${method}: ${what} features ${done}/${total}`);
            }
          },
        });
      sources.push({
        method,
        source: name,
        readout,
        get: async () => [await ex(poolDs, "pool"), await ex(test, "test")],
      });
    }
  }
  if (opts.pixels ?? true) {
    const size = opts.encoders[0]?.encoder.cfg.imageSize;
    sources.push({
      method: "raw pixels",
      source: "raw pixels",
      readout: "pixels",
      get: () => Promise.resolve([rawPixelFeatures(poolDs, { size }), rawPixelFeatures(test, { size })]),
    });
  }
  if (sources.length === 0) throw new Error("probe: nothing to evaluate: give encoders or keep pixels");

  const seconds = { features: 0, probe: 0, knn: 0 };
  const rows: ProbeRow[] = [];
  for (const src of sources) {
    let t0 = performance.now();
    const [pool, held] = await src.get();
    const featureSeconds = (performance.now() - t0) / 1000;
    seconds.features += featureSeconds;
    log(
      `${src.method}: ${pool.dim} features of ${pool.n} pool and ${held.n} test images in ${
        featureSeconds.toFixed(1)
      } s`,
    );
    const testSet: LabelledFeatures = { ...held, labels: test.labels };
    const probeCells: ProbeCell[] = [], knnCells: ProbeCell[] = [], iterations: number[] = [];
    let confusion: number[][] = [];
    for (let si = 0; si < settings.length; si++) {
      const accs: number[] = [], knns: number[] = [];
      for (let d = 0; d < subsets[si].length; d++) {
        const idx = subsets[si][d];
        const full = idx.length === train.n;
        const x = full
          ? pool.features
          : takeFeatureRows(pool.features, pool.dim, Int32Array.from(idx, (i) => row[i]));
        const y = full ? train.labels : Int32Array.from(idx, (i) => train.labels[i]);
        t0 = performance.now();
        const probe = await trainLinearProbe(x, y, pool.dim, K, opts.probe);
        const pred = probe.predict(held.features);
        seconds.probe += (performance.now() - t0) / 1000;
        iterations.push(probe.iterations);
        let right = 0;
        for (let i = 0; i < pred.length; i++) if (pred[i] === test.labels[i]) right++;
        accs.push(right / pred.length);
        if (si === settings.length - 1 && d === 0) confusion = confusionMatrix(test.labels, pred, K);
        if (k > 0) {
          t0 = performance.now();
          knns.push(
            await knnAccuracy({ features: x, dim: pool.dim, n: idx.length, labels: y }, testSet, k, {
              classes: K,
            }),
          );
          seconds.knn += (performance.now() - t0) / 1000;
        }
      }
      probeCells.push(summarise(accs));
      if (k > 0) knnCells.push(summarise(knns));
      const last = probeCells[probeCells.length - 1];
      log(
        `  ${settings[si].name}: probe ${(100 * last.mean).toFixed(1)}%` +
          (k > 0 ? `, kNN ${(100 * knnCells[knnCells.length - 1].mean).toFixed(1)}%` : ""),
      );
    }
    rows.push({
      method: src.method,
      source: src.source,
      readout: src.readout,
      dim: pool.dim,
      probe: probeCells,
      knn: k > 0 ? knnCells : null,
      confusion,
      iterations,
      featureSeconds,
      rankMe: finiteOrUndefined(rankMe(held.features, held.dim)),
    });
  }
  return {
    settings,
    rows,
    classNames: [...train.classNames],
    pool: train.n,
    test: test.n,
    seeds,
    seed,
    k,
    recipe: recipeText(opts.probe, k),
    seconds,
  };
}
