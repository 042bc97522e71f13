import type { Container } from "../container.js";

/** What the REST routes use: the same services the GraphQL resolvers call, plus the object store for downloads. */
export type RestDeps = Pick<
  Container,
  | "config"
  | "datastore"
  | "jobs"
  | "pubsub"
  | "app"
  | "log"
  | "inference"
  | "sessions"
  | "activeLearning"
  | "scoring"
  | "store"
> &
  /** The pathology app's tiled inference; optional so that a container without it still serves the rest. */
  Partial<Pick<Container, "wsi">>;

/** With auth off, MONAI runs every call as DEFAULT_USER, username `admin`. */
export const DEFAULT_USER = "admin";
