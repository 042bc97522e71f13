import DataLoader from "dataloader";
import type { Container } from "../container.js";
import type { ImageRecord, LabelRecord } from "../datastore/types.js";

/**
 * Per-request state: the caller, loaders, and the base URL for download links. `services` is the same
 * object for every request of one server: the Pothos builder is a module singleton, and tests run
 * several servers in one process, so resolvers cannot reach services through module state.
 */
export interface Context {
  user: string;
  baseUrl: string;
  services: Services;
  loaders: Loaders;
}

export type Services = Pick<
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
  | "wsi"
>;

export interface Loaders {
  image: DataLoader<string, ImageRecord | null>;
  /** Current label of every tag, per image: one query for a whole page of images. */
  labels: DataLoader<string, LabelRecord[]>;
}

export function createLoaders(services: Services): Loaders {
  return {
    image: new DataLoader(async (ids) => {
      const found = new Map((await services.datastore.getImages(ids)).map((i) => [i.id, i]));
      return ids.map((id) => found.get(id) ?? null);
    }),
    labels: new DataLoader(async (ids) => {
      const byImage = await services.datastore.labelsOfMany(ids);
      return ids.map((id) => byImage.get(id) ?? []);
    }),
  };
}

export function createContext(services: Services, request: Request, user = "admin"): Context {
  const url = new URL(request.url);
  // Behind a proxy the Host header names the public host; the request URL carries it.
  const baseUrl = `${url.protocol}//${url.host}${services.config.apiPrefix}`;
  return { user, baseUrl, services, loaders: createLoaders(services) };
}
