/**
 * Where tensors live and how fast ops run: backend choice (`setBackend`), native BLAS through FFI, the tensor ops the model is built from and
 * their fused wasm kernels, and seeded randomness.
 *
 * @module
 */
export { BACKEND_NAMES, type BackendInfo, backendInfo, type BackendName, setBackend } from "./backend.ts";
export { type BlasStatus, blasStatus, disableBlas, enableBlas } from "./blas.ts";
export { Rng } from "./rng.ts";
export { gatherRows, gelu, layerNorm, linear, matMul, patchify, unpatchify } from "./ops.ts";
