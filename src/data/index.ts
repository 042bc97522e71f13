/**
 * Training data: MONAI's Dataset, CacheDataset and DataLoader over the transforms (see
 * src/transforms/random.ts for the random transforms and their seeding).
 */
export * from "./collate.js";
export * from "./dataset.js";
export * from "./loader.js";
export * from "./pipeline.js";
