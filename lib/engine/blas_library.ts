/**
 * Finding and opening a native BLAS library for {@link loadBlas}: the names searched on each OS, the
 * `IJEPA_BLAS` variable, FFI permission checks, pinning the library in memory, and a short
 * description of what was loaded (OpenBLAS build, MKL, BLIS).
 *
 * @module
 */

/** What {@link enableBlas} did, in a form a caller can print as a one-line notice. */
export interface BlasStatus {
  /** True while BLAS kernels are registered for at least one backend. */
  enabled: boolean;
  /** The library that was loaded (a path or a loader name such as `libopenblas.so.0`). */
  library?: string;
  /** One line: what runs the products, or `off: <why>`. */
  reason: string;
  /** Backends whose kernels call BLAS now (empty when off). */
  backends: string[];
  /** BLAS worker threads, where the library can tell (OpenBLAS, MKL). */
  threads?: number;
}

export const SYMBOLS = {
  // void cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  // 0 = single-threaded build, 1 = pthreads, 2 = OpenMP
  openblas_get_parallel: { parameters: [], result: "i32", optional: true },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  MKL_Get_Max_Threads: { parameters: [], result: "i32", optional: true },
  MKL_Set_Num_Threads: { parameters: ["i32"], result: "void", optional: true },
  bli_info_get_version_str: { parameters: [], result: "pointer", optional: true },
} as const;

export type BlasLib = Deno.DynamicLibrary<typeof SYMBOLS>;
export type Sgemm = BlasLib["symbols"]["cblas_sgemm"];

/**
 * Debian and Ubuntu install OpenBLAS's builds side by side (`update-alternatives` picks one as
 * libopenblas.so.0). The pthreads build is tried first: the OpenMP build runs our step at about the
 * same speed (reference step 604 ms against 582 ms, one bench run each, 2 cores), but its libgomp
 * threads make it unsafe to unload (see {@link pin}).
 */
function debianOpenblas(build: "pthread" | "openmp" | "serial"): string {
  const triplet = { x86_64: "x86_64-linux-gnu", aarch64: "aarch64-linux-gnu" }[Deno.build.arch as string] ??
    `${Deno.build.arch}-linux-gnu`;
  return `/usr/lib/${triplet}/openblas-${build}/libopenblas.so.0`;
}

/** Library names tried in order when none is given. Generic `libblas`/`libcblas` may be reference BLAS. */
const SEARCH: Record<string, () => string[]> = {
  linux: () => [
    debianOpenblas("pthread"),
    "libopenblas.so.0",
    "libopenblas.so",
    "libmkl_rt.so.2",
    "libmkl_rt.so",
    "libblis.so.4",
    "libblas.so.3",
    "libcblas.so.3",
  ],
  darwin: () => [
    "/System/Library/Frameworks/Accelerate.framework/Accelerate",
    "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
    "/usr/local/opt/openblas/lib/libopenblas.dylib",
    "libopenblas.dylib",
  ],
  windows: () => ["libopenblas.dll", "openblas.dll", "mkl_rt.2.dll", "mkl_rt.dll"],
};
/** Names that may be any implementation, reference BLAS included. */
const GENERIC = new Set(["libblas.so.3", "libcblas.so.3"]);
const INSTALL_HINT: Record<string, string> = {
  linux: "install libopenblas0-pthread",
  darwin: "Accelerate.framework was not found",
  windows: "put libopenblas.dll on PATH",
};

/** What {@link loadBlas} found: the status to report and, when one was opened, the library. */
export interface BlasLoad {
  status: BlasStatus;
  opened?: { lib: BlasLib; path: string };
}

function off(reason: string): BlasLoad {
  return { status: { enabled: false, reason: `off: ${reason}`, backends: [] } };
}

/**
 * Run `open` with OpenBLAS asked to let its threads sleep as soon as a product is done
 * (`OPENBLAS_THREAD_TIMEOUT`, read once when the library loads; a value the user set is kept, and
 * the variable is removed again after, so that processes we start, e.g. the bench's PyTorch, do not
 * inherit it). By default they spin for some 2^28 cycles, holding the cores our own worker threads
 * (lib/engine/parallel_kernels.ts) split the fused kernels over: measured 2026-12-04 on 2 cores,
 * the reference step took 575 ms against 606 (4 alternating runs each) with the kernels split and
 * OpenBLAS's threads sleeping at once, while split kernels gained nothing with them spinning.
 */
function withQuietThreads<T>(open: () => T): T {
  let set = false;
  try {
    if (Deno.env.get("OPENBLAS_THREAD_TIMEOUT") === undefined) {
      Deno.env.set("OPENBLAS_THREAD_TIMEOUT", "4");
      set = true;
    }
  } catch {
    // no --allow-env: OpenBLAS's default
  }
  try {
    return open();
  } finally {
    if (set) Deno.env.delete("OPENBLAS_THREAD_TIMEOUT");
  }
}

/** Open the library (returned in `opened`) or say why not. */
export function loadBlas(option: string | undefined): BlasLoad {
  return withQuietThreads(() => openBlas(option));
}

function openBlas(option: string | undefined): BlasLoad {
  const D = (globalThis as { Deno?: typeof Deno }).Deno;
  if (!D || typeof D.dlopen !== "function") return off("not running under Deno (no FFI)");
  let requested = option;
  let source = "library option";
  if (requested === undefined) {
    requested = readEnv("IJEPA_BLAS");
    source = "IJEPA_BLAS";
  }
  const req = requested?.trim() ?? "";
  if (["off", "0", "false", "no", "none"].includes(req.toLowerCase())) {
    return off(source === "IJEPA_BLAS" ? `IJEPA_BLAS=${req}` : `library option is "${req}"`);
  }
  const explicit = req !== "" && !["on", "auto", "1", "true"].includes(req.toLowerCase());
  if (!ffiGranted(explicit ? req : undefined)) {
    return off("FFI not permitted (run deno with --allow-ffi)");
  }
  if (explicit) {
    try {
      return opened(req, D.dlopen(req, SYMBOLS));
    } catch (e) {
      return off(`cannot load BLAS library ${req} (from ${source}): ${firstLine(e)}`);
    }
  }
  const skipped: string[] = [];
  for (const name of (SEARCH[D.build.os] ?? SEARCH.linux)()) {
    let lib: BlasLib;
    try {
      lib = D.dlopen(name, SYMBOLS);
    } catch {
      continue; // not installed, or no cblas_sgemm in it
    }
    // A generic libblas/libcblas may be the reference BLAS, slower than tfjs-wasm: use it only
    // when it turns out to be an optimised one.
    if (GENERIC.has(name) && describe(lib) === "BLAS") {
      lib.close();
      skipped.push(name);
      continue;
    }
    return opened(name, lib);
  }
  const why = skipped.length
    ? `only ${skipped.join(", ")} found, which may be reference BLAS`
    : "no BLAS library found";
  return off(
    `${why} (${INSTALL_HINT[D.build.os] ?? INSTALL_HINT.linux}, or set IJEPA_BLAS=<path>)`,
  );
}

function opened(path: string, lib: BlasLib): BlasLoad {
  // 2 = OpenMP build: unloading it kills the process, so it stays loaded (see pin)
  if (lib.symbols.openblas_get_parallel?.() === 2) pin(path);
  return {
    status: {
      enabled: false, // set once kernels are registered
      library: path,
      reason: `${describe(lib)} via FFI (${path})`,
      backends: [],
      threads: threadCount(lib),
    },
    opened: { lib, path },
  };
}

/**
 * Keep a library in memory until the process ends (dlopen with RTLD_NODELETE), so that closing our
 * handle, or a worker isolate ending, never unmaps it.
 *
 * Why: OpenBLAS's OpenMP build runs its products on libgomp's thread pool, whose threads stay parked
 * inside libgomp after a call. When the last handle is closed, the dynamic loader unmaps libopenblas
 * and libgomp under those threads and the process dies with SIGSEGV (exit 139). Seen with Debian's
 * libopenblas0-openmp: one `Deno.dlopen` + `cblas_sgemm` + `close()` crashed at once, and
 * `deno test --parallel` (whose test files open and close the library in their own isolates) crashed
 * in 3 of 3 runs. Only the OpenMP build is pinned: the pthreads build survives being unloaded, and
 * keeping it until the process ends moves its clean-up to process exit, where one CI run of the
 * whole suite (pthreads build pinned too) ended with glibc's "corrupted size vs. prev_size in
 * fastbins" after every test had passed. Returns false where it cannot pin (Windows, no libc).
 */
function pin(path: string): boolean {
  const libc = { linux: "libc.so.6", darwin: "/usr/lib/libSystem.B.dylib" }[Deno.build.os as string];
  if (!libc) return false;
  // RTLD_NOW | RTLD_NODELETE (glibc 0x2 | 0x1000; macOS 0x2 | 0x80)
  const flags = Deno.build.os === "darwin" ? 0x2 | 0x80 : 0x2 | 0x1000;
  try {
    const c = Deno.dlopen(libc, { dlopen: { parameters: ["buffer", "i32"], result: "pointer" } });
    try {
      return c.symbols.dlopen(new TextEncoder().encode(path + "\0"), flags) !== null;
    } finally {
      c.close();
    }
  } catch {
    return false;
  }
}

/** A short name of the implementation, e.g. "OpenBLAS 0.3.21 (Cooperlake, pthreads)". */
function describe(lib: BlasLib): string {
  const s = lib.symbols;
  const cstr = (p: Deno.PointerValue) => (p ? Deno.UnsafePointerView.getCString(p) : "");
  if (s.openblas_get_config) {
    const version = cstr(s.openblas_get_config()).split(" ").slice(0, 2).join(" ") || "OpenBLAS";
    const build = s.openblas_get_parallel
      ? ["serial", "pthreads", "OpenMP"][s.openblas_get_parallel()] ?? "unknown threading"
      : "";
    let core = s.openblas_get_corename ? cstr(s.openblas_get_corename()) : "";
    // a kernel family forced by the environment can be far slower than the library's own pick (on
    // this build machine, Haswell's AVX2 kernels run the step's products at half the speed of the
    // AVX-512 ones OpenBLAS 0.3.21 picks itself), so the line says where it came from
    if (core && readEnv("OPENBLAS_CORETYPE")) core += " as OPENBLAS_CORETYPE says";
    const details = [core, build].filter(Boolean).join(", ");
    return details ? `${version} (${details})` : version;
  }
  if (s.MKL_Get_Max_Threads) return "Intel MKL";
  if (s.bli_info_get_version_str) return `BLIS ${cstr(s.bli_info_get_version_str())}`;
  return "BLAS";
}

/** BLAS worker threads, where the library can tell (OpenBLAS, MKL). */
export function threadCount(lib: BlasLib): number | undefined {
  const s = lib.symbols;
  if (s.openblas_get_num_threads) return s.openblas_get_num_threads();
  if (s.MKL_Get_Max_Threads) return s.MKL_Get_Max_Threads();
  return undefined;
}

function readEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** True when FFI is granted; never prompts. */
function ffiGranted(path?: string): boolean {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") return true;
    return path !== undefined &&
      Deno.permissions.querySync({ name: "ffi", path }).state === "granted";
  } catch {
    return false;
  }
}

function firstLine(e: unknown): string {
  const line = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  return line.replace(/^(.+?: )\1+/, "$1"); // Deno repeats "Could not open library: "
}
