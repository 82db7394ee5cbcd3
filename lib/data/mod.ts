/**
 * Images in: Fashion-MNIST (shipped subset or the full set), IDX, CIFAR and image folders read at the
 * model's size and channels, augmentation, normalisation and the batch stream.
 *
 * @module
 */
export {
  type Batch,
  batches,
  BatchStream,
  channelStats,
  DataError,
  type ImageDataset,
  loadCifar,
  loadDataset,
  loadFashionMnist,
  loadIdx,
  loadImageFolder,
  subset,
} from "./data.ts";
export { normalize, randomResizedCrop } from "./augment.ts";
