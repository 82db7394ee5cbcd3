/**
 * The restricted pickle machine: runs the opcodes `torch.save` writes, with only the allow-listed
 * globals of `globals.ts`, and refuses everything else; it never runs code from a file.
 *
 * @module
 */

import { ALLOWED_GLOBALS, describe, makeGlobal, PickleGlobal } from "./globals.ts";
import { OPCODE_NAMES } from "./opcodes.ts";
import { finalize } from "./pickle_values.ts";

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /**
   * Resolves a persistent id (BINPERSID); `torch.save` writes `('storage', <storage class>,
   * key, location, numel)` tuples. Without it, a persistent id is an error.
   */
  persistentLoad?: (pid: unknown[]) => unknown;
  /** Named in error messages. */
  source?: string;
}

/**
 * Runs a pickle on a machine that knows only what `torch.save` writes (protocol 2 and the framing
 * of later protocols) and only the allow-listed globals: `collections.OrderedDict`,
 * `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and the `torch.*Storage`
 * classes. Every other global, and every other opcode, is refused with an error naming it; the
 * reader never runs code from a file. Truncation, stack underflow, a missing MARK or STOP and
 * unknown memo keys are errors too.
 *
 * @example
 * ```ts
 * import { unpickle } from "./pickle.ts";
 * // {"epoch": 3, "ok": True} at protocol 2
 * const bytes = new Uint8Array([
 *   0x80, 2, 0x7d, 0x28, 0x58, 5, 0, 0, 0, ...new TextEncoder().encode("epoch"), 0x4b, 3,
 *   0x58, 2, 0, 0, 0, 0x6f, 0x6b, 0x88, 0x75, 0x2e,
 * ]);
 * const v = unpickle(bytes) as { epoch: number; ok: boolean };
 * if (v.epoch !== 3 || v.ok !== true) throw new Error("bad unpickle");
 * const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
 * const evil = latin1("\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.");
 * try {
 *   unpickle(evil);
 *   throw new Error("should have refused");
 * } catch (e) {
 *   if (!String(e).includes("refusing pickle global os.system")) throw e;
 * }
 * ```
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): unknown {
  const where = `pickle ${options.source ?? "<memory>"}`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = []; // stack heights at each MARK
  const memo = new Map<number, unknown>();
  const tuples = new WeakSet<object>();
  const states = new WeakMap<object, unknown>();
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let pos = 0;
  let opPos = 0;
  let op = 0;

  const opName = () => OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, "0")}`;
  const fail = (msg: string) => new Error(`${where}: ${msg} (opcode ${opName()} at byte ${opPos})`);
  const need = (n: number) => {
    if (n > bytes.length - pos) {
      throw fail(`truncated: needs ${n} more bytes, ${bytes.length - pos} left`);
    }
  };
  const u8 = () => {
    need(1);
    return bytes[pos++];
  };
  const u16 = () => {
    need(2);
    pos += 2;
    return dv.getUint16(pos - 2, true);
  };
  const u32 = () => {
    need(4);
    pos += 4;
    return dv.getUint32(pos - 4, true);
  };
  const u64 = () => {
    need(8);
    pos += 8;
    const v = dv.getBigUint64(pos - 8, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`length ${v} is too large`);
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const text = (b: Uint8Array) => {
    try {
      return utf8.decode(b);
    } catch {
      throw fail("invalid UTF-8 in a string");
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw fail("truncated: no newline ending the global's name");
    const s = text(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const floor = () => (marks.length ? marks[marks.length - 1] : 0);
  const pop = (): unknown => {
    if (stack.length <= floor()) throw fail("stack underflow");
    return stack.pop();
  };
  const peek = (): unknown => {
    if (stack.length <= floor()) throw fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    if (marks.length === 0) throw fail("no MARK on the stack");
    return stack.splice(marks.pop()!);
  };
  const tuple = (items: unknown[]) => {
    tuples.add(items);
    return items;
  };
  const list = (x: unknown): unknown[] => {
    if (!Array.isArray(x) || tuples.has(x)) throw fail(`expected a list, found ${describe(x)}`);
    return x;
  };
  const dict = (x: unknown): Map<unknown, unknown> => {
    if (!(x instanceof Map)) throw fail(`expected a dict, found ${describe(x)}`);
    return x;
  };
  const setItems = (d: Map<unknown, unknown>, items: unknown[]) => {
    if (items.length % 2) throw fail("odd number of items for a dict");
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  };
  const global = (module: string, name: string) => {
    const q = `${module}.${name}`;
    const g = makeGlobal(q);
    if (!g) {
      throw fail(
        `refusing pickle global ${q}: only ${ALLOWED_GLOBALS} are allowed ` +
          `(this reader never runs code from a file)`,
      );
    }
    return g;
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) throw fail(`memo key ${i} was never stored`);
    return memo.get(i);
  };
  const args = (x: unknown): unknown[] => {
    if (!Array.isArray(x) || !tuples.has(x)) {
      throw fail(`expected an argument tuple, found ${describe(x)}`);
    }
    return x;
  };
  const call = (fn: unknown, a: unknown[], how: "call" | "newobj") => {
    const impl = fn instanceof PickleGlobal ? fn[how] : undefined;
    if (!impl) {
      throw fail(`${describe(fn)} cannot be ${how === "call" ? "called" : "instantiated"}`);
    }
    try {
      return impl(a);
    } catch (e) {
      throw fail((e as Error).message);
    }
  };

  while (true) {
    if (pos >= bytes.length) {
      throw new Error(
        `${where}: ended at byte ${pos} without a STOP opcode (truncated, or not a pickle)`,
      );
    }
    opPos = pos;
    op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) throw fail(`unknown pickle protocol ${v}`);
        break;
      }
      case 0x95: // FRAME: a length prefix for buffering; nothing to do when all bytes are here.
        u64();
        break;
      case 0x2e: // STOP
        return finalize(pop(), tuples, states);
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push(tuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(tuple([pop(), b, c]));
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: { // APPEND
        const v = pop();
        list(peek()).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = list(peek());
        for (const v of items) l.push(v);
        break;
      }
      case 0x64: { // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        dict(peek()).set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(dict(peek()), items);
        break;
      }
      case 0x4a: // BININT
        need(4);
        pos += 4;
        stack.push(dv.getInt32(pos - 4, true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        const b = take(u8());
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
        const n = Number(v);
        stack.push(Number.isSafeInteger(n) ? n : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        pos += 8;
        stack.push(dv.getFloat64(pos - 8, false));
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x58: // BINUNICODE
        stack.push(text(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(take(u64())));
        break;
      case 0x54: { // BINSTRING (a Python 2 str; torch.load decodes it as UTF-8)
        need(4);
        const n = dv.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw fail(`negative string length ${n}`);
        stack.push(text(take(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(text(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()).slice());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), peek());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), peek());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, peek());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          throw fail("STACK_GLOBAL needs two strings");
        }
        stack.push(global(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const a = args(pop());
        stack.push(call(pop(), a, "call"));
        break;
      }
      case 0x81: { // NEWOBJ
        const a = args(pop());
        stack.push(call(pop(), a, "newobj"));
        break;
      }
      case 0x62: { // BUILD: only an OrderedDict's attributes (state dicts carry `_metadata`).
        const state = pop();
        const obj = peek();
        if (!(obj instanceof Map)) throw fail(`BUILD on ${describe(obj)} is not supported`);
        states.set(obj, state);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) throw fail("a persistent id, but no persistentLoad given");
        if (!Array.isArray(pid)) throw fail(`persistent id must be a tuple, got ${describe(pid)}`);
        try {
          stack.push(options.persistentLoad(pid));
        } catch (e) {
          throw fail((e as Error).message);
        }
        break;
      }
      default:
        if (OPCODE_NAMES[op]) {
          throw fail(`refusing pickle opcode ${opName()}: torch.save checkpoints do not use it`);
        }
        throw fail("unknown pickle opcode (the file is corrupt or not a pickle)");
    }
  }
}
