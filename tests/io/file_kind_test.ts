// Files that are not weights, through lib/io (loadModel, openSafetensors, weightsFileKind): each error
// says what was expected and what the file starts with; a truncated safetensors file is called that.
// Run: deno test -A tests/io/file_kind_test.ts
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { setBackend } from "../../lib/engine/backend.ts";
import { IJEPA } from "../../lib/model/ijepa.ts";
import { weightsFileKind } from "../../lib/io/file_kind.ts";
import { openSafetensors } from "../../lib/io/safetensors_read.ts";
import { loadModel, saveModel } from "../../lib/io/weights.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const FIXTURE = `${ROOT}tests/fixtures/official-ijepa-tiny/checkpoint.pth.tar`;

Deno.test("loadModel: a file that is not weights says what was expected and how it starts", async () => {
  const readme = `${ROOT}README.md`;
  const e = await assertRejects(() => loadModel(readme), Error);
  assert(
    e.message.startsWith(
      `${readme}: neither a safetensors file nor a PyTorch checkpoint: expected a .safetensors`,
    ),
    e.message,
  );
  assert(e.message.includes('a zip archive starting with "PK"'), e.message);
  assert(e.message.endsWith('it starts with "# ijepa-" (23 20 69 6a 65 70 61 2d)'), e.message);
  assert(!/header length \d+ is larger/.test(e.message), e.message);
  // the safetensors reader alone says the same in its terms
  await assertRejects(
    () => openSafetensors(readme),
    SyntaxError,
    'not a safetensors file: expected an 8-byte little-endian header length followed by a JSON header starting with "{", but it starts with "# ijepa-"',
  );
});

Deno.test("loadModel: missing files, folders, empty and short files are named as such", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ijepa_kind_" });
  try {
    await assertRejects(
      () => loadModel(`${dir}/none.safetensors`),
      Error,
      "none.safetensors: no such file; expected",
    );
    await assertRejects(() => loadModel(dir), Error, `${dir} is a folder: expected a .safetensors file`);
    await Deno.writeFile(`${dir}/empty.safetensors`, new Uint8Array(0));
    await assertRejects(() => loadModel(`${dir}/empty.safetensors`), Error, "the file is empty; expected");
    await Deno.writeFile(`${dir}/short.bin`, new Uint8Array([1, 2, 3]));
    await assertRejects(
      () => loadModel(`${dir}/short.bin`),
      Error,
      'neither a safetensors file nor a PyTorch checkpoint: expected a .safetensors file (an 8-byte header length, then a JSON header starting with "{") or a PyTorch checkpoint',
    );
    assertEquals(await weightsFileKind(FIXTURE), "pytorch");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadModel: a truncated safetensors file is called truncated, wherever it was cut", async () => {
  await setBackend("cpu", { quiet: true, blas: false });
  const dir = await Deno.makeTempDir({ prefix: "ijepa_kind_" });
  try {
    const path = `${dir}/w.safetensors`;
    const model = new IJEPA("tiny", { seed: 0 });
    await saveModel(model, path, { preset: "tiny" });
    model.dispose();
    const bytes = await Deno.readFile(path);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    // cut in the data: the header says how much is missing
    await Deno.writeFile(`${dir}/cut.safetensors`, bytes.subarray(0, bytes.length - 100));
    const e = await assertRejects(() => loadModel(`${dir}/cut.safetensors`), Error);
    assert(
      /: truncated or corrupt: the header places tensor data up to byte \d+ after it/.test(e.message),
      e.message,
    );
    assert(e.message.endsWith("(100 missing)"), e.message);
    // cut in the header
    await Deno.writeFile(`${dir}/cut.safetensors`, bytes.subarray(0, 8 + Math.floor(headerLength / 2)));
    await assertRejects(
      () => loadModel(`${dir}/cut.safetensors`),
      Error,
      `truncated or corrupt: its first 8 bytes give a header of ${headerLength} bytes, but only ${
        Math.floor(headerLength / 2)
      } bytes follow them`,
    );
    // the whole file still loads
    const { model: again } = await loadModel(path);
    again.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
