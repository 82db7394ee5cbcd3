/**
 * Make the class-balanced Fashion-MNIST subset shipped in `data/fashion-mnist/`: 1000 images per
 * class from the training set and 200 per class from the test set, chosen with a seeded `Rng`
 * from the full set, written as gzipped IDX files with the original names.
 *
 * Usage (reproduces the shipped files byte for byte in content; gzip bytes may differ by zlib):
 *
 * ```sh
 * deno run -A lib/cli/make_subset.ts --data /usr/share/datasets/fashion-mnist --out data/fashion-mnist
 * ```
 *
 * Selection: lib/data/subset_draw.ts.
 *
 * @module
 */

import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { checkOutputFolder, parseFlags, runMain, statIfAny, UsageError } from "./args.ts";
import { encodeIdx } from "../data/idx.ts";
import { loadFashionMnist, SYSTEM_FASHION_MNIST_DIR } from "../data/load.ts";
import { SUBSET_SEED, subsetIndices } from "../data/subset_draw.ts";

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, {
    name: "make-subset",
    summary: "Write the class-balanced Fashion-MNIST subset (1000/class train, 200/class test).",
    flags: {
      data: {
        type: "string",
        default: SYSTEM_FASHION_MNIST_DIR,
        help: "full Fashion-MNIST directory",
      },
      out: { type: "string", default: "data/fashion-mnist", help: "output directory" },
      seed: { type: "int", min: 0, default: SUBSET_SEED, help: "selection seed" },
    },
  });
  const dir = f.data as string;
  const out = f.out as string;
  // both ends checked before the 70k images are read
  const info = await statIfAny(dir);
  if (!info) {
    throw new UsageError(
      `make-subset: --data ${dir}: no such folder; expected the full Fashion-MNIST's IDX files`,
    );
  }
  if (!info.isDirectory) throw new UsageError(`make-subset: --data ${dir} is a file; expected a folder`);
  await checkOutputFolder("make-subset", "out", out);
  const full = await loadFashionMnist({ dir });
  const splits = { train: full.train, test: full.test };
  const picked = subsetIndices(splits.train, splits.test, f.seed as number);
  await Deno.mkdir(out, { recursive: true });
  for (const [split, prefix] of [["train", "train"], ["test", "t10k"]] as const) {
    const ds = splits[split];
    const idx = picked[split];
    const pix = ds.height * ds.width;
    const images = new Uint8Array(idx.length * pix); // [k, 28, 28]
    const labels = new Uint8Array(idx.length); // [k]
    idx.forEach((i, k) => {
      images.set(ds.images.subarray(i * pix, (i + 1) * pix), k * pix);
      labels[k] = ds.labels[i];
    });
    const files: [string, Uint8Array][] = [
      [`${prefix}-images-idx3-ubyte.gz`, encodeIdx(images, [idx.length, ds.height, ds.width])],
      [`${prefix}-labels-idx1-ubyte.gz`, encodeIdx(labels, [idx.length])],
    ];
    for (const [name, raw] of files) {
      const gz = gzipSync(raw, { level: 9 });
      await Deno.writeFile(join(out, name), gz);
      console.log(`${join(out, name)}: ${gz.length} bytes, content sha256 ${await sha256(raw)}`);
    }
  }
  console.log(
    `subset of ${full.source}: ${picked.train.length} train / ${picked.test.length} test, seed ${f.seed}`,
  );
}

if (import.meta.main) await runMain(main);
