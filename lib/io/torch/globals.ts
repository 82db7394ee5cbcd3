/**
 * The pickle globals a `torch.save` checkpoint may name (`collections.OrderedDict`, the tensor and
 * parameter rebuilders, the `torch.*Storage` classes), each implemented here and never looked up:
 * the allow-list of the restricted unpickler.
 *
 * @module
 */

import { LazyTensor, StorageRef, type TorchDtype } from "./tensors.ts";

/** The storage classes a pickle may name, and the element type each holds. */
const STORAGE_TYPES: Record<string, TorchDtype> = {
  "torch.FloatStorage": "float32",
  "torch.HalfStorage": "float16",
  "torch.BFloat16Storage": "bfloat16",
  "torch.DoubleStorage": "float64",
  "torch.LongStorage": "int64",
  "torch.IntStorage": "int32",
  "torch.ShortStorage": "int16",
  "torch.CharStorage": "int8",
  "torch.ByteStorage": "uint8",
  "torch.BoolStorage": "bool",
  // Written only when an untyped storage itself is saved (tensors always name a typed storage).
  "torch.storage.UntypedStorage": "uint8",
  "torch.UntypedStorage": "uint8",
};

/** A global the pickle named (`GLOBAL` / `STACK_GLOBAL`), after it passed the allow-list. */
export class PickleGlobal {
  /** Built by the unpickler only for allow-listed names. */
  constructor(
    /** `module.name`, e.g. `torch.FloatStorage`. */
    readonly qualname: string,
    /** The element type, for storage classes. */
    readonly storageDtype?: TorchDtype,
    /** Our implementation of calling it (REDUCE), if it may be called. */
    readonly call?: (args: unknown[]) => unknown,
    /** Our implementation of `cls.__new__(cls, *args)` (NEWOBJ), if allowed. */
    readonly newobj?: (args: unknown[]) => unknown,
  ) {}
}

function newDict(args: unknown[], what: string): Map<unknown, unknown> {
  const d = new Map<unknown, unknown>();
  if (args.length === 0) return d;
  const items = args[0];
  if (args.length === 1 && Array.isArray(items)) {
    for (const kv of items) {
      if (!Array.isArray(kv) || kv.length !== 2) {
        throw new TypeError(`${what}: expected (key, value) pairs`);
      }
      d.set(kv[0], kv[1]);
    }
    return d;
  }
  throw new TypeError(`${what}: expected no arguments or a list of pairs, got ${args.length}`);
}

/** Whether `x` is a non-negative safe integer (a size, offset or count). */
export function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function rebuildTensorV2(args: unknown[]): LazyTensor {
  const what = "torch._utils._rebuild_tensor_v2";
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  if (args.length < 6 || args.length > 7) {
    throw new TypeError(`${what}: expected 6 or 7 arguments, got ${args.length}`);
  }
  const [storage, offset, size, stride, , hooks] = args;
  if (!(storage instanceof StorageRef)) {
    throw new TypeError(`${what}: argument 0 must be a storage from a persistent id`);
  }
  if (!isCount(offset)) throw new TypeError(`${what}: bad storage offset ${String(offset)}`);
  if (!Array.isArray(size) || !size.every(isCount)) {
    throw new TypeError(`${what}: size must be a tuple of non-negative ints`);
  }
  if (!Array.isArray(stride) || stride.length !== size.length || !stride.every(isCount)) {
    throw new TypeError(
      `${what}: stride must be ${size.length} non-negative ints, got ${JSON.stringify(stride)}`,
    );
  }
  if (!(hooks instanceof Map) || hooks.size !== 0) {
    throw new TypeError(`${what}: backward hooks are not supported (expected an empty dict)`);
  }
  return new LazyTensor(storage, offset, size, stride);
}

/** The allow-list: every global a pickle may name, each implemented here, never looked up. */
export function makeGlobal(qualname: string): PickleGlobal | undefined {
  if (Object.hasOwn(STORAGE_TYPES, qualname)) {
    return new PickleGlobal(qualname, STORAGE_TYPES[qualname]);
  }
  switch (qualname) {
    case "collections.OrderedDict":
      return new PickleGlobal(
        qualname,
        undefined,
        (a) => newDict(a, qualname),
        (a) => newDict(a, qualname),
      );
    case "torch._utils._rebuild_tensor_v2":
      return new PickleGlobal(qualname, undefined, rebuildTensorV2);
    case "torch._utils._rebuild_parameter":
      // (data, requires_grad, backward_hooks): a Parameter is its tensor here.
      return new PickleGlobal(qualname, undefined, (a) => {
        if (a.length !== 3 || !(a[0] instanceof LazyTensor)) {
          throw new TypeError(`${qualname}: expected (tensor, requires_grad, hooks)`);
        }
        return a[0];
      });
  }
  return undefined;
}

/** The allow-list's names, for the error that refuses any other global. */
export const ALLOWED_GLOBALS = [
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  ...Object.keys(STORAGE_TYPES),
].join(", ");

/** What a pickled value is, in Python's words, for messages. */
export function describe(x: unknown): string {
  if (x === null) return "None";
  if (Array.isArray(x)) return "a tuple or list";
  if (x instanceof Map) return "a dict";
  if (x instanceof PickleGlobal) return x.qualname;
  if (x instanceof LazyTensor) return "a tensor";
  if (x instanceof Uint8Array) return "bytes";
  return `a ${typeof x}`;
}
