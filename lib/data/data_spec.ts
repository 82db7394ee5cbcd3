/**
 * The data set a `--data` value (or its absence) names, as a spec that means the same data from any
 * folder and any checkout: what a run records so that `--resume` reads what the run trained on.
 *
 * @module
 */
import { resolve } from "node:path";
import { envDataDir, shippedFashionMnistDir, SYSTEM_FASHION_MNIST_DIR, systemSetPresent } from "./load.ts";

async function realPath(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return resolve(path); // missing: loading it says so
  }
}

/**
 * `spec` as `loadDataset` would resolve it, in a form `loadDataset` reads the same way anywhere:
 * `"fashion-mnist-subset"` for the shipped subset (by name or by its folder in this checkout, so a
 * moved or fresh clone still finds it), else the real absolute path of the folder it reads. No spec
 * and `"fashion-mnist"` resolve as loadDataset does: `IJEPA_DATA`, else the installed full set,
 * else the shipped subset.
 *
 * @example
 * ```ts
 * import { dataSpecOf } from "./data_spec.ts";
 * if (await dataSpecOf("fashion-mnist-subset") !== "fashion-mnist-subset") throw new Error("name");
 * if (await dataSpecOf("data/fashion-mnist/") !== "fashion-mnist-subset") throw new Error("folder");
 * ```
 */
export async function dataSpecOf(spec?: string): Promise<string> {
  const shipped = await realPath(shippedFashionMnistDir());
  if (spec === undefined || spec === "fashion-mnist") {
    const env = envDataDir();
    if (env !== undefined) return dataSpecOf(env);
    return (await systemSetPresent()) ? await dataSpecOf(SYSTEM_FASHION_MNIST_DIR) : "fashion-mnist-subset";
  }
  if (spec === "fashion-mnist-subset") return spec;
  const real = await realPath(spec);
  return real === shipped ? "fashion-mnist-subset" : real;
}
