/**
 * Images in: Fashion-MNIST (shipped subset or the full set), IDX, CIFAR and image folders read at the
 * model's size and channels, augmentation, normalisation and the batch stream.
 *
 * @module
 */
export { DataError, type ImageDataset } from "./dataset.ts";
export { loadIdx } from "./idx.ts";
export { loadCifar } from "./cifar.ts";
export { loadImageFolder } from "./image_folder.ts";
export { loadDataset, loadFashionMnist } from "./load.ts";
export { channelStats, subset } from "./stats.ts";
export { type Batch, batches, BatchStream } from "./batches.ts";
export { normalize, randomResizedCrop } from "./augment.ts";
