/**
 * How an unpickled value is handed out: dicts as plain objects (string keys) or Maps, tuples
 * frozen, each tensor named by its path, and a dict's BUILD state under {@link pickleState}.
 *
 * @module
 */

import { LazyTensor } from "./tensors.ts";

/**
 * Key of the state a pickle attached to a dict with BUILD (an `OrderedDict`'s attributes, e.g. a
 * state dict's `_metadata`); kept off the enumerable keys.
 */
export const pickleState: unique symbol = Symbol("pickleState");

function isArrayIndex(k: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(k) && Number(k) < 2 ** 32 - 1;
}

/** Turns dicts into objects or Maps, freezes tuples, and names each tensor by its path. */
export function finalize(
  root: unknown,
  tuples: WeakSet<object>,
  states: WeakMap<object, unknown>,
): unknown {
  const done = new Map<object, unknown>();
  const walk = (v: unknown, path: string, depth: number): unknown => {
    if (v === null || typeof v !== "object") return v;
    if (v instanceof LazyTensor) {
      if (!v.path) v.path = path;
      return v;
    }
    if (done.has(v)) return done.get(v);
    if (depth > 1000) throw new RangeError(`pickle: objects nested deeper than 1000 at ${path}`);
    const at = (seg: string) => (path ? `${path}/${seg}` : seg);
    if (Array.isArray(v)) {
      done.set(v, v);
      for (let i = 0; i < v.length; i++) v[i] = walk(v[i], at(String(i)), depth + 1);
      if (tuples.has(v)) Object.freeze(v);
      return v;
    }
    if (v instanceof Map) {
      const asObject = [...v.keys()].every((k) => typeof k === "string" && !isArrayIndex(k));
      const out: Record<string, unknown> | Map<unknown, unknown> = asObject ? {} : new Map();
      done.set(v, out);
      for (const [k, val] of v) {
        const value = walk(val, at(String(k)), depth + 1);
        if (out instanceof Map) out.set(walk(k, path, depth + 1), value);
        // defineProperty, not assignment: a key named "__proto__" stays an ordinary key.
        else {
          Object.defineProperty(out, k as string, {
            value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
      }
      if (states.has(v)) {
        Object.defineProperty(out, pickleState, { value: walk(states.get(v), path, depth + 1) });
      }
      return out;
    }
    return v;
  };
  return walk(root, "", 0);
}
