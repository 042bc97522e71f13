import { FsObjectStore } from "./fs.object-store.js";
import type { ObjectStore } from "./object-store.js";
import { S3ObjectStore, type S3ObjectStoreOptions } from "./s3.object-store.js";

export type ObjectStoreConfig = { kind: "fs"; root: string } | ({ kind: "s3" } & S3ObjectStoreOptions);

/** A ready store: the fs root (and its staging directory) exists, the S3 bucket exists. */
export async function createObjectStore(config: ObjectStoreConfig): Promise<ObjectStore> {
  switch (config.kind) {
    case "fs":
      return new FsObjectStore(config.root).init();
    case "s3": {
      const { kind: _kind, ...options } = config;
      return S3ObjectStore.create(options);
    }
  }
}
