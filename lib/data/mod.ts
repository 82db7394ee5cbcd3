/**
 * Images in: Fashion-MNIST (shipped subset or the full set), IDX, CIFAR and image folders read at the
 * model's size and channels, augmentation, normalisation and the batch stream.
 *
 * @module
 */
export { DataError, type DatasetSplits, type ImageDataset } from "./dataset.ts";
export { type IdxOptions, loadIdx } from "./idx.ts";
export { type CifarOptions, loadCifar } from "./cifar.ts";
export { type ImageFolderOptions, loadImageFolder } from "./image_folder.ts";
export { type FashionMnistOptions, loadDataset, type LoadDatasetOptions, loadFashionMnist } from "./load.ts";
export { dataSpecOf } from "./data_spec.ts";
export { channelStats, subset } from "./stats.ts";
export { type Batch, batches, type BatchOptions, BatchStream, type BatchStreamState } from "./batches.ts";
export { normalize, type Pixels, randomResizedCrop, type RandomResizedCropOptions } from "./augment.ts";
// Types from lower folders that this folder's API uses, so this entry's docs are complete.
export type { Rng } from "../engine/rng.ts";
export {
  NUISANCE_KINDS,
  type NuisanceKind,
  type NuisanceOptions,
  parseNuisance,
  withNuisance,
} from "./nuisance.ts";
