/**
 * Where tensors live and how fast ops run: backend choice (`setBackend`), native BLAS through FFI, the tensor ops the model is built from and
 * their fused wasm kernels, and seeded randomness.
 *
 * @module
 */
export {
  BACKEND_NAMES,
  type BackendInfo,
  backendInfo,
  type BackendName,
  setBackend,
  type SetBackendOptions,
} from "./backend.ts";
export { type BlasBackend, type BlasOptions, blasStatus, disableBlas, enableBlas } from "./blas.ts";
export type { BlasStatus } from "./blas_library.ts";
export { Rng } from "./rng.ts";
export { gatherRows, gelu, layerNorm, linear, patchify, unpatchify } from "./ops.ts";
export { matMul } from "./matmul.ts";
export type {
  NamedTensorMap,
  Scalar,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  Tensor4D,
  Variable,
} from "./tensor_types.ts";
