// Helpers shared by the tests of lib/data/: the fixtures folder, temporary folders, DataError checks,
// whether the full Fashion-MNIST set is installed, and a tiny patterned dataset.

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DataError, type ImageDataset } from "../../lib/data/dataset.ts";
import { SYSTEM_FASHION_MNIST_DIR } from "../../lib/data/load.ts";

export const FIXTURES = fileURLToPath(new URL("../fixtures/data/", import.meta.url));

export async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "ijepa_data_test_" });
}

export async function rejectsWith(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    for (const part of parts) {
      if (typeof part === "string") {
        assert.ok(e.message.includes(part), `message "${e.message}" lacks "${part}"`);
      } else assert.match(e.message, part);
    }
    return e.message;
  }
  throw new Error(`expected an error with ${parts.join(", ")}, got none`);
}

export function systemSetInstalled(): boolean {
  try {
    return Deno.statSync(join(SYSTEM_FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")).isFile;
  } catch {
    return false;
  }
}

/** A tiny dataset with a pattern that makes every pixel distinct-ish. */
export function tinyDataset(n: number, h: number, w: number, c: number): ImageDataset {
  const images = new Uint8Array(n * h * w * c).map((_, i) => (i * 37 + (i >> 5)) % 256);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  return {
    images,
    labels,
    n,
    height: h,
    width: w,
    channels: c,
    classNames: ["a", "b", "c"],
    source: "tiny",
  };
}
