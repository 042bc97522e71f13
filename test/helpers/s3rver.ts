import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The slice of s3rver 3.7's API we use (the package ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  resetOnClose?: boolean;
  configureBuckets?: { name: string }[];
}) => S3rverInstance;

export interface RunningS3rver {
  endPoint: "127.0.0.1";
  port: number;
  accessKey: "S3RVER";
  secretKey: "S3RVER";
  stop(): Promise<void>;
}

/**
 * Starts an in-process s3rver on 127.0.0.1 and a free port, storing its data in a fresh temporary
 * directory that `stop` removes. s3rver accepts any signature made with the key pair S3RVER/S3RVER.
 *
 * Known s3rver limits: uploads without a Content-Length and multipart uploads answer 501, and a
 * multi-object delete (`removeObjects`) can answer 500.
 */
export async function startS3rver(): Promise<RunningS3rver> {
  const S3rver = createRequire(import.meta.url)("s3rver") as S3rverConstructor;
  const directory = await mkdtemp(join(tmpdir(), "labelgraph-s3rver-"));
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  return {
    endPoint: "127.0.0.1",
    port: address.port,
    accessKey: "S3RVER",
    secretKey: "S3RVER",
    async stop() {
      if (stopped) {
        return;
      }
      stopped = true;
      try {
        await server.close();
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    },
  };
}
