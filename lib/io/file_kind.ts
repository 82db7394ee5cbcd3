/**
 * Which kind of weights file a path holds, told from its first bytes rather than its name: a
 * PyTorch checkpoint (`torch.save`'s zip: the official `.pth.tar`) or a safetensors file (ours, or
 * HuggingFace's). Anything else is an error naming what was expected and what the file starts with.
 *
 * @example
 * ```ts
 * import { weightsFileKind } from "./file_kind.ts";
 * if (await weightsFileKind("tests/fixtures/official-ijepa-tiny/checkpoint.pth.tar") !== "pytorch") {
 *   throw new Error("the fixture is a zip");
 * }
 * try {
 *   await weightsFileKind("README.md");
 *   throw new Error("should have failed");
 * } catch (e) {
 *   if (!String(e).includes('neither a safetensors file nor a PyTorch checkpoint')) throw e;
 * }
 * ```
 * @module
 */
import { describeStart, startsLikeZip } from "./byte_source.ts";

/** The containers a weights file comes in. */
export type WeightsFileKind = "safetensors" | "pytorch";

/** What a weights file should look like, for messages. */
export const EXPECTED_WEIGHTS =
  'a .safetensors file (an 8-byte header length, then a JSON header starting with "{") or a PyTorch ' +
  'checkpoint such as the official .pth.tar (a zip archive starting with "PK")';

/** Reads the first bytes of `path` and names its container; throws a clear error for anything else. */
export async function weightsFileKind(path: string): Promise<WeightsFileKind> {
  let head: Uint8Array;
  try {
    using f = await Deno.open(path, { read: true });
    if ((await f.stat()).isDirectory) throw new Error(`${path} is a folder: expected ${EXPECTED_WEIGHTS}`);
    head = new Uint8Array(16);
    let n = 0;
    while (n < head.length) {
      const got = await f.read(head.subarray(n));
      if (got === null) break;
      n += got;
    }
    head = head.subarray(0, n);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${path}: no such file; expected ${EXPECTED_WEIGHTS}`);
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new Error(`${path} is a folder: expected ${EXPECTED_WEIGHTS}`);
    }
    throw e;
  }
  if (startsLikeZip(head)) return "pytorch";
  // Byte 8 opens a safetensors file's JSON header. A truncated one still starts this way, and
  // openSafetensors then says what is missing.
  if (head.length === 0) throw new Error(`${path}: the file is empty; expected ${EXPECTED_WEIGHTS}`);
  if (head.length >= 9 && head[8] === 0x7b) return "safetensors";
  throw new Error(
    `${path}: neither a safetensors file nor a PyTorch checkpoint: expected ${EXPECTED_WEIGHTS}; ` +
      `it starts with ${describeStart(head)}`,
  );
}
