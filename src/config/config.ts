import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import type { DatabaseConfig } from "../db/client.js";
import type { ObjectStoreConfig } from "../storage/factory.js";

/**
 * Configuration is parsed once, here, from the environment (MONAI Label's MONAI_LABEL_* names where it
 * has one, LABELGRAPH_* otherwise) and the command line; the rest of the code reads the typed tree.
 * Every invalid variable is reported together.
 */
const bool = (def: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no", "on", "off", "TRUE", "FALSE", "True", "False"])
    .optional()
    .transform((v) => (v === undefined ? def : ["true", "1", "yes", "on"].includes(v.toLowerCase())));

const port = (def: number) => z.coerce.number().int().min(0).max(65535).default(def);

/** MONAI reads list settings as JSON arrays; a comma list is accepted too. */
const list = (def: string[]) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") {
        return def;
      }
      if (v.trim().startsWith("[")) {
        try {
          const parsed = JSON.parse(v) as unknown;
          if (Array.isArray(parsed) && parsed.every((x) => typeof x === "string")) {
            return parsed as string[];
          }
        } catch {}
        ctx.addIssue({ code: "custom", message: "expected a JSON array of strings" });
        return z.NEVER;
      }
      return v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    });

export const envSchema = z.object({
  MONAI_LABEL_APP_DIR: z.string().optional(),
  MONAI_LABEL_STUDIES: z.string().optional(),
  MONAI_LABEL_SERVER_PORT: port(8000),
  MONAI_LABEL_API_STR: z.string().default(""),
  MONAI_LABEL_CORS_ORIGINS: list([]),
  MONAI_LABEL_DATASTORE_AUTO_RELOAD: bool(true),
  MONAI_LABEL_DATASTORE_READ_ONLY: bool(false),
  MONAI_LABEL_DATASTORE_FILE_EXT: list([
    "*.nii.gz",
    "*.nii",
    "*.nrrd",
    "*.jpg",
    "*.png",
    "*.tif",
    "*.tiff",
    "*.svs",
    "*.xml",
  ]),
  MONAI_LABEL_SESSIONS: bool(true),
  MONAI_LABEL_AUTO_UPDATE_SCORING: bool(true),
  MONAI_LABEL_SESSION_EXPIRY: z.coerce
    .number()
    .int()
    .default(3600)
    .transform((v) => (v <= 60 ? 3600 : v)),
  LABELGRAPH_HOST: z.string().default("0.0.0.0"),
  LABELGRAPH_DATA_DIR: z.string().optional(),
  LABELGRAPH_DATABASE_URL: z
    .string()
    .optional()
    .refine((v) => v === undefined || /^(postgres(ql)?:\/\/|file:)/.test(v), {
      message: "must be a postgres:// or postgresql:// URL, or file:PATH for SQLite",
    }),
  LABELGRAPH_OBJECT_STORE: z.enum(["fs", "s3"]).default("fs"),
  LABELGRAPH_S3_ENDPOINT: z.string().url().optional(),
  LABELGRAPH_S3_BUCKET: z.string().min(3).optional(),
  LABELGRAPH_S3_ACCESS_KEY: z.string().optional(),
  LABELGRAPH_S3_SECRET_KEY: z.string().optional(),
  LABELGRAPH_S3_REGION: z.string().default("us-east-1"),
  LABELGRAPH_S3_PREFIX: z.string().default(""),
  LABELGRAPH_INFER_WORKERS: z.coerce.number().int().min(0).max(64).default(1),
  LABELGRAPH_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export interface CliOverrides {
  app?: string;
  studies?: string;
  host?: string;
  port?: number;
  conf?: Record<string, string>;
}

export interface Config {
  appDir: string | null;
  studiesDir: string;
  dataDir: string;
  host: string;
  port: number;
  apiPrefix: string;
  corsOrigins: string[];
  conf: Record<string, string>;
  datastore: { autoReload: boolean; readOnly: boolean; extensions: string[] };
  database: DatabaseConfig;
  objectStore: ObjectStoreConfig;
  sessions: { enabled: boolean; expiry: number };
  /** Rerun scoring at start, after final labels and after training (MONAI_LABEL_AUTO_UPDATE_SCORING). */
  autoUpdateScoring: boolean;
  /** Worker threads that run inference (0: on the main thread, blocking it while a model runs). */
  inferWorkers: number;
  logLevel: "debug" | "info" | "warn" | "error";
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export function loadConfig(
  env: Record<string, string | undefined>,
  cli: CliOverrides = {},
  cwd = process.cwd(),
): Config {
  const parsed = envSchema.safeParse(env);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = issue.path.join(".");
      problems.push(`${key}=${JSON.stringify(env[key] ?? "")}: ${issue.message}`);
    }
  }
  const studies = cli.studies ?? env.MONAI_LABEL_STUDIES;
  if (!studies) {
    problems.push("the studies folder is required: --studies DIR or MONAI_LABEL_STUDIES");
  } else if (/^https?:\/\//.test(studies)) {
    problems.push(`--studies ${studies}: DICOMweb studies are not supported yet; give a local folder`);
  }
  const e = parsed.data;
  if (e?.LABELGRAPH_OBJECT_STORE === "s3") {
    for (const k of [
      "LABELGRAPH_S3_ENDPOINT",
      "LABELGRAPH_S3_BUCKET",
      "LABELGRAPH_S3_ACCESS_KEY",
      "LABELGRAPH_S3_SECRET_KEY",
    ] as const) {
      if (!e[k]) {
        problems.push(`${k} is required when LABELGRAPH_OBJECT_STORE=s3`);
      }
    }
  }
  if (cli.port !== undefined && (!Number.isInteger(cli.port) || cli.port < 0 || cli.port > 65535)) {
    problems.push(`--port ${cli.port}: must be an integer in 0..65535`);
  }
  if (problems.length > 0 || !e || !studies) {
    throw new ConfigError(problems);
  }

  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  const studiesDir = abs(studies);
  const dataDir = abs(e.LABELGRAPH_DATA_DIR ?? join(studiesDir, ".labelgraph"));
  const dbUrl = e.LABELGRAPH_DATABASE_URL;
  const database: DatabaseConfig =
    dbUrl && !dbUrl.startsWith("file:")
      ? { provider: "postgresql", url: dbUrl }
      : { provider: "sqlite", path: dbUrl ? abs(dbUrl.slice("file:".length)) : join(dataDir, "labelgraph.db") };
  let objectStore: ObjectStoreConfig = { kind: "fs", root: join(dataDir, "objects") };
  if (e.LABELGRAPH_OBJECT_STORE === "s3") {
    const url = new URL(e.LABELGRAPH_S3_ENDPOINT as string);
    objectStore = {
      kind: "s3",
      endPoint: url.hostname,
      port: url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80,
      useSSL: url.protocol === "https:",
      accessKey: e.LABELGRAPH_S3_ACCESS_KEY as string,
      secretKey: e.LABELGRAPH_S3_SECRET_KEY as string,
      bucket: e.LABELGRAPH_S3_BUCKET as string,
      region: e.LABELGRAPH_S3_REGION,
      prefix: e.LABELGRAPH_S3_PREFIX,
    };
  }
  const appDir = cli.app ?? e.MONAI_LABEL_APP_DIR;
  return {
    appDir: appDir ? abs(appDir) : null,
    studiesDir,
    dataDir,
    host: cli.host ?? e.LABELGRAPH_HOST,
    port: cli.port ?? e.MONAI_LABEL_SERVER_PORT,
    apiPrefix: e.MONAI_LABEL_API_STR,
    corsOrigins: e.MONAI_LABEL_CORS_ORIGINS,
    conf: cli.conf ?? {},
    datastore: {
      autoReload: e.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
      readOnly: e.MONAI_LABEL_DATASTORE_READ_ONLY,
      extensions: e.MONAI_LABEL_DATASTORE_FILE_EXT,
    },
    database,
    objectStore,
    sessions: {
      enabled: e.MONAI_LABEL_SESSIONS,
      expiry: e.MONAI_LABEL_SESSION_EXPIRY,
    },
    autoUpdateScoring: e.MONAI_LABEL_AUTO_UPDATE_SCORING,
    inferWorkers: e.LABELGRAPH_INFER_WORKERS,
    logLevel: e.LABELGRAPH_LOG_LEVEL,
  };
}
