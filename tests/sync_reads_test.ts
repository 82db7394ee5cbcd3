// No synchronous tensor reads on the paths tasks and notebooks take. Under Deno, tfjs-webgpu reads
// synchronously through a canvas that does not exist, so `dataSync`, `arraySync` and `bufferSync`
// throw on webgpu ("Cannot read properties of null (reading 'clearRect')"): only `await t.data()`
// works. This check fails on any new one in lib/ outside the list below of code documented as
// CPU-only, each with its reason.
import { assertEquals } from "./_assert.ts";
import { code, tsFiles } from "./_source.ts";

/** Files allowed to read synchronously, how many times, and why. */
const CPU_ONLY: Record<string, { reads: number; why: string }> = {};

Deno.test("sync reads: no dataSync/arraySync/bufferSync in lib/ outside documented CPU-only code", () => {
  const found: Record<string, number> = {};
  for (const f of tsFiles("lib")) {
    const n = [...code(f).matchAll(/\.(dataSync|arraySync|bufferSync)\s*\(/g)].length;
    if (n > 0) found[f] = n;
  }
  const allowed = Object.fromEntries(Object.entries(CPU_ONLY).map(([f, { reads }]) => [f, reads]));
  assertEquals(found, allowed, "synchronous reads per file (a new one must become `await t.data()`)");
});
