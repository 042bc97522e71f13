export type Info = Record<string, unknown>;

/** MONAI Label's two standard tags; any other tag is allowed too. */
export const DefaultLabelTag = { ORIGINAL: "original", FINAL: "final" } as const;

export interface ImageRecord {
  id: string;
  name: string;
  extension: string;
  format: string;
  size: number;
  sha256: string;
  objectKey: string;
  dimensions: number[];
  spacing: number[];
  channels: number;
  dtype: string;
  info: Info;
  sourcePath: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface LabelRecord {
  id: number;
  imageId: string;
  tag: string;
  version: number;
  author: string | null;
  extension: string;
  size: number;
  sha256: string;
  objectKey: string;
  dimensions: number[];
  info: Info;
  sourcePath: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ImageFilter {
  /** true: images with a `final` label; false: images without one. */
  labeled?: boolean;
  /** images that have a label with this tag */
  tag?: string;
  /** case-sensitive substring of the id */
  search?: string;
}

export interface DatastoreStatus {
  total: number;
  completed: number;
  labelTags: Record<string, number>;
}

export type DatastoreChangeKind =
  | "IMAGE_ADDED"
  | "IMAGE_UPDATED"
  | "IMAGE_REMOVED"
  | "LABEL_SAVED"
  | "LABEL_UPDATED"
  | "LABEL_REMOVED";

/** Where a change came from, so a client can tell an annotator's save from a file dropped in the folder. */
export type ChangeSource = "api" | "watcher" | "import";

export interface DatastoreChange {
  kind: DatastoreChangeKind;
  imageId: string;
  tag: string | null;
  version: number | null;
  source: ChangeSource;
  at: Date;
}
