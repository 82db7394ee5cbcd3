// Small assertions for the tests (JSR's @std/assert is not reachable from our registries).
import { inspect, isDeepStrictEqual } from "node:util";

export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

export function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${inspect(expected)}, got ${inspect(actual)}`);
  }
}

export function assertAlmostEquals(actual: number, expected: number, tol = 1e-7, msg?: string): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${expected} +- ${tol}, got ${actual}`);
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

export function assertThrows(fn: () => unknown, cls: ErrorClass = Error, includes?: string): Error {
  try {
    fn();
  } catch (e) {
    check(e, cls, includes);
    return e as Error;
  }
  throw new Error(`expected ${cls.name}${includes ? ` containing "${includes}"` : ""}, nothing was thrown`);
}

export async function assertRejects(fn: () => Promise<unknown>, cls: ErrorClass = Error, includes?: string) {
  try {
    await fn();
  } catch (e) {
    check(e, cls, includes);
    return e as Error;
  }
  throw new Error(`expected ${cls.name}${includes ? ` containing "${includes}"` : ""}, nothing was thrown`);
}

function check(e: unknown, cls: ErrorClass, includes?: string): void {
  if (!(e instanceof cls)) throw new Error(`expected ${cls.name}, got ${inspect(e)}`);
  if (includes && !e.message.includes(includes)) {
    throw new Error(`expected the error to contain "${includes}", got "${e.message}"`);
  }
}
