/**
 * The arms of the two ablation studies (lib/eval/ablate.ts): what each arm changes on top of the
 * shared recipe, and the paper's figure for it.
 *
 * @example
 * ```ts
 * import { pickArms, studyArms } from "./ablate_arms.ts";
 * const arms = studyArms("masking");
 * if (arms.length !== 5 || arms[0].name !== "multi-block (M=4)") throw new Error("unexpected arms");
 * if (pickArms("masking", 7, ["random"]).length !== 1) throw new Error("expected one arm");
 * ```
 * @module
 */
import type { ModelConfig } from "../model/config.ts";
import type { MaskerOptions } from "../masks/options.ts";

/** The studies. */
export type Study = "targets" | "masking";
/** Study names for help texts. */
export const STUDIES: readonly Study[] = ["targets", "masking"];

/** One arm: a name, model overrides and mask options on top of the shared recipe. */
export interface Arm {
  /** Shown in tables and used as the results.json key. */
  name: string;
  /** Model settings this arm changes. */
  model: Partial<ModelConfig>;
  /** Masker options this arm changes. */
  masks: Partial<MaskerOptions>;
  /** The paper's 1%-ImageNet figure for this arm, for the side-by-side table. */
  paper: number;
}

/**
 * The arms of a study on a `grid` x `grid` patch grid. The masking study gives every arm the same
 * `minKeep`: 6, or less on grids whose smallest quadrant (the rasterized context) is smaller.
 */
export function studyArms(study: Study, grid = 7): Arm[] {
  if (study === "targets") {
    return [
      { name: "representation (I-JEPA)", model: { targetMode: "representation" }, masks: {}, paper: 66.9 },
      { name: "pixels", model: { targetMode: "pixel" }, masks: {}, paper: 40.7 },
    ];
  }
  if (study === "masking") {
    const k = { minKeep: Math.min(6, Math.floor(grid / 2) ** 2) };
    return [
      {
        name: "multi-block (M=4)",
        model: {},
        masks: { ...k, strategy: "multiblock", nTargets: 4 },
        paper: 54.2,
      },
      {
        name: "multi-block (M=1)",
        model: {},
        masks: { ...k, strategy: "multiblock", nTargets: 1 },
        paper: 9.0,
      },
      {
        name: "rasterized",
        model: {},
        masks: { ...k, strategy: "rasterized", nTargets: 3 },
        paper: 15.5,
      },
      {
        name: "block",
        model: {},
        masks: { ...k, strategy: "block", nTargets: 1, targetScale: [0.6, 0.6] },
        paper: 20.2,
      },
      { name: "random", model: {}, masks: { ...k, strategy: "random", nTargets: 1 }, paper: 17.6 },
    ];
  }
  throw new Error(`unknown study "${study}": expected one of ${STUDIES.join(", ")}`);
}

/**
 * The arms of `study` named in `names` (all of them when absent or empty), in the study's order;
 * a name that is not an arm of the study throws, listing the arms.
 */
export function pickArms(study: Study, grid: number, names?: readonly string[]): Arm[] {
  const all = studyArms(study, grid);
  if (!names?.length) return all;
  const unknown = names.filter((n) => !all.some((a) => a.name === n));
  if (unknown.length) {
    throw new Error(
      `no arm ${unknown.map((n) => `"${n}"`).join(", ")} in the ${study} study: expected names among ` +
        all.map((a) => `"${a.name}"`).join(", "),
    );
  }
  return all.filter((a) => names.includes(a.name));
}
