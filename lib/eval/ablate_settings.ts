/**
 * The ablation task's `--model` setting: model config fields every arm shares, as `key=value` pairs.
 *
 * @example
 * ```ts
 * import { parseModelSettings } from "./ablate_settings.ts";
 * const m = parseModelSettings("predictorDepth=2,loss=l2");
 * if (m.predictorDepth !== 2 || m.loss !== "l2") throw new Error("settings");
 * ```
 * @module
 */
import type { ModelConfig } from "../model/config.ts";

/** "predictorDepth=2,loss=l2" -> { predictorDepth: 2, loss: "l2" } (numbers where they parse). */
export function parseModelSettings(text: string): Partial<ModelConfig> {
  const out: Record<string, string | number> = {};
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const at = part.indexOf("=");
    if (at <= 0) {
      throw new Error(`ablate: --model expects key=value pairs separated by commas, got "${part}"`);
    }
    const v = part.slice(at + 1).trim();
    out[part.slice(0, at).trim()] = v !== "" && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return out as Partial<ModelConfig>;
}

/** "0.9999,1" -> [0.9999, 1]: the `--ema` setting, two momenta in [0, 1]. */
export function parseEma(text: string): [number, number] {
  const v = text.split(",").map((s) => s.trim());
  const m = v.map(Number);
  if (v.length !== 2 || v.some((s) => s === "") || !m.every((x) => x >= 0 && x <= 1)) {
    throw new Error(`ablate: --ema expects START,END, two momenta in [0, 1] (e.g. 0.9999,1), got "${text}"`);
  }
  return [m[0], m[1]];
}
