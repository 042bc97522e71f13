import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../src/config/config.js";

describe("loadConfig", () => {
  it("defaults to SQLite and the filesystem under the studies folder, port 8000", () => {
    const c = loadConfig({}, { studies: "/data/studies" });
    expect(c.port).toBe(8000);
    expect(c.database).toEqual({ provider: "sqlite", path: "/data/studies/.labelgraph/labelgraph.db" });
    expect(c.objectStore).toEqual({ kind: "fs", root: "/data/studies/.labelgraph/objects" });
    expect(c.datastore).toMatchObject({ autoReload: true, readOnly: false });
    expect(c.datastore.extensions).toContain("*.nii.gz");
  });

  it("reads MONAI Label's names and LABELGRAPH_* ones", () => {
    const c = loadConfig(
      {
        MONAI_LABEL_STUDIES: "s",
        MONAI_LABEL_SERVER_PORT: "9000",
        MONAI_LABEL_DATASTORE_READ_ONLY: "true",
        MONAI_LABEL_DATASTORE_AUTO_RELOAD: "false",
        MONAI_LABEL_DATASTORE_FILE_EXT: '["*.nii.gz", "*.png"]',
        MONAI_LABEL_SESSION_EXPIRY: "30",
        LABELGRAPH_DATABASE_URL: "postgresql://u@h:5432/db",
        LABELGRAPH_OBJECT_STORE: "s3",
        LABELGRAPH_S3_ENDPOINT: "https://minio.local:9000",
        LABELGRAPH_S3_BUCKET: "studies",
        LABELGRAPH_S3_ACCESS_KEY: "a",
        LABELGRAPH_S3_SECRET_KEY: "b",
      },
      {},
      "/work",
    );
    expect(c.studiesDir).toBe("/work/s");
    expect(c.port).toBe(9000);
    expect(c.datastore).toEqual({ readOnly: true, autoReload: false, extensions: ["*.nii.gz", "*.png"] });
    expect(c.sessions.expiry).toBe(3600); // MONAI: values <= 60 become 3600
    expect(c.database).toEqual({ provider: "postgresql", url: "postgresql://u@h:5432/db" });
    expect(c.objectStore).toMatchObject({
      kind: "s3",
      endPoint: "minio.local",
      port: 9000,
      useSSL: true,
      bucket: "studies",
    });
  });

  it("lets the command line win over the environment", () => {
    const c = loadConfig({ MONAI_LABEL_STUDIES: "a", MONAI_LABEL_SERVER_PORT: "9000" }, { studies: "/b", port: 1234 });
    expect([c.studiesDir, c.port]).toEqual(["/b", 1234]);
  });

  it("reports every invalid variable together", () => {
    let err: unknown;
    try {
      loadConfig({
        MONAI_LABEL_SERVER_PORT: "eighty",
        MONAI_LABEL_DATASTORE_READ_ONLY: "maybe",
        LABELGRAPH_DATABASE_URL: "mysql://x",
        LABELGRAPH_OBJECT_STORE: "s3",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join("\n");
    for (const name of [
      "MONAI_LABEL_SERVER_PORT",
      "MONAI_LABEL_DATASTORE_READ_ONLY",
      "LABELGRAPH_DATABASE_URL",
      "studies folder is required",
    ]) {
      expect(problems).toContain(name);
    }
  });
});
