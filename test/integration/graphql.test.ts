import { readFile } from "node:fs/promises";
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { fixture } from "../helpers/fixtures.js";
import { startTestServer, type TestServer } from "../helpers/harness.js";

const UPLOAD = /* GraphQL */ `
  mutation ($file: File!, $id: String, $info: JSONObject) {
    uploadImage(input: { file: $file, id: $id, info: $info }) {
      __typename
      ... on UploadImageSuccess { data { id name dimensions spacing dtype info url labeled } }
      ... on Error { code message }
    }
  }`;
const SAVE = /* GraphQL */ `
  mutation ($imageId: ID!, $file: File!, $tag: String) {
    saveLabel(input: { imageId: $imageId, file: $file, tag: $tag }) {
      __typename
      ... on SaveLabelSuccess { data { imageId tag version author url } }
      ... on ShapeMismatchError { imageShape labelShape }
      ... on Error { code message }
    }
  }`;

type Row = Record<string, unknown>;

describe("GraphQL over HTTP, graphql-ws and SSE", () => {
  let s: TestServer;
  let ch2: Buffer;
  let ch2bet: Buffer;
  let anatomical: Buffer;

  beforeAll(async () => {
    s = await startTestServer();
    ch2 = await readFile(fixture("ch2.nii.gz"));
    ch2bet = await readFile(fixture("ch2bet.nii.gz"));
    anatomical = await readFile(fixture("anatomical.nii"));
  });
  afterAll(() => s.close());

  it("reports the app in Query.info", async () => {
    const r = await s.gql<{ info: Row }>("{ info { name version labels models { name } strategies { name } } }");
    expect(r.data?.info).toEqual({
      name: "labelgraph",
      version: "0.1.0",
      labels: [],
      models: [],
      strategies: [{ name: "random" }],
    }); // MONAI's default
  });

  it("uploads a real NIfTI as a multipart request and serves it back at its url", async () => {
    const r = await s.upload<{ uploadImage: Row }>(
      UPLOAD,
      { file: null, info: { site: "MNI" } },
      {
        file: { data: ch2, name: "colin27.nii.gz" },
      },
    );
    const image = (r.data?.uploadImage as { data: Row } | undefined)?.data ?? {};
    expect(image).toMatchObject({ id: "colin27", dimensions: [181, 217, 181], spacing: [1, 1, 1], labeled: false });
    expect(image.info).toMatchObject({ site: "MNI", user: "admin", name: "colin27.nii.gz" });
    const res = await fetch(image.url as string);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(ch2)).toBe(true);
  });

  it("saves label versions and lists them on the image", async () => {
    for (let i = 0; i < 2; i++) {
      const r = await s.upload<{ saveLabel: Row }>(
        SAVE,
        { imageId: "colin27", file: null },
        {
          file: { data: ch2bet, name: "colin27.nii.gz" },
        },
      );
      expect(r.data?.saveLabel).toMatchObject({
        __typename: "SaveLabelSuccess",
        data: { tag: "final", version: i + 1 },
      });
    }
    const r = await s.gql<{ image: Row }>(
      `{ image(id: "colin27") { labeled labels { tag version author url } label(tag: "final", version: 1) { version } } }`,
    );
    const image = r.data?.image as { labels: Row[]; labeled: boolean; label: Row };
    expect(image.labeled).toBe(true);
    expect(image.labels).toHaveLength(1);
    expect(image.labels[0]).toMatchObject({ tag: "final", version: 2, author: "admin" });
    expect(image.label).toEqual({ version: 1 });
    const file = await fetch(image.labels[0]?.url as string);
    expect(Buffer.from(await file.arrayBuffer()).equals(ch2bet)).toBe(true);
  });

  it("returns typed errors and leaves the datastore unchanged", async () => {
    const before = await s.gql("{ datastoreStatus { total completed labelTags } }");
    const mismatch = await s.upload<{ saveLabel: Row }>(
      SAVE,
      { imageId: "colin27", file: null },
      {
        file: { data: anatomical, name: "a.nii" },
      },
    );
    expect(mismatch.data?.saveLabel).toEqual({
      __typename: "ShapeMismatchError",
      imageShape: [181, 217, 181],
      labelShape: [33, 41, 25],
      code: "SHAPE_MISMATCH",
      message: expect.stringContaining("does not match"),
    });
    const truncated = await s.upload<{ uploadImage: Row }>(
      UPLOAD,
      { file: null },
      {
        file: { data: ch2.subarray(0, 50_000), name: "t.nii.gz" },
      },
    );
    expect(truncated.data?.uploadImage).toMatchObject({ __typename: "InvalidImageError", code: "INVALID_IMAGE" });
    const png = await s.upload<{ uploadImage: Row }>(
      UPLOAD,
      { file: null },
      {
        file: { data: await readFile(fixture("cell.png")), name: "cell.nii" },
      },
    );
    expect(png.data?.uploadImage).toMatchObject({ code: "INVALID_IMAGE" });
    const traversal = await s.upload<{ uploadImage: Row }>(
      UPLOAD,
      { file: null, id: "../../etc" },
      {
        file: { data: anatomical, name: "a.nii" },
      },
    );
    expect(traversal.data?.uploadImage).toMatchObject({ __typename: "InvalidIdError", code: "INVALID_ID" });
    const missing = await s.upload<{ saveLabel: Row }>(
      SAVE,
      { imageId: "nope", file: null },
      {
        file: { data: anatomical, name: "a.nii" },
      },
    );
    expect(missing.data?.saveLabel).toMatchObject({ __typename: "NotFoundError", code: "IMAGE_NOT_FOUND" });
    const del = await s.gql(`mutation { deleteImage(id: "nope") { __typename ... on Error { code } } }`);
    expect(del.data).toEqual({ deleteImage: { __typename: "NotFoundError", code: "IMAGE_NOT_FOUND" } });
    expect(await s.gql("{ datastoreStatus { total completed labelTags } }")).toEqual(before);
    const download = await fetch(`${s.url}/datastore/image?image=nope`);
    expect(download.status).toBe(404);
  });

  it("pages images as a Relay connection with totalCount and filters", async () => {
    await s.upload(UPLOAD, { file: null, id: "anat" }, { file: { data: anatomical, name: "anatomical.nii" } });
    await s.upload(UPLOAD, { file: null, id: "anat2" }, { file: { data: anatomical, name: "anatomical.nii" } });
    const q = `query ($after: String, $filter: ImageFilter) {
      images(first: 2, after: $after, filter: $filter) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }`;
    type Conn = {
      images: { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string }; edges: { node: Row }[] };
    };
    const p1 = (await s.gql<Conn>(q)).data?.images;
    expect(p1?.totalCount).toBe(3);
    expect(p1?.edges.map((e) => e.node.id)).toEqual(["anat", "anat2"]);
    expect(p1?.pageInfo.hasNextPage).toBe(true);
    const p2 = (await s.gql<Conn>(q, { after: p1?.pageInfo.endCursor })).data?.images;
    expect(p2?.edges.map((e) => e.node.id)).toEqual(["colin27"]);
    expect(p2?.pageInfo.hasNextPage).toBe(false);
    const unlabeled = (await s.gql<Conn>(q, { filter: { labeled: false } })).data?.images;
    expect(unlabeled?.totalCount).toBe(2);
    const status = await s.gql("{ datastoreStatus { total completed labelTags } }");
    expect(status.data).toEqual({ datastoreStatus: { total: 3, completed: 1, labelTags: { final: 1 } } });
  });

  it("streams datastoreChanged over graphql-ws for every change", async () => {
    const client = createClient({ url: `ws://127.0.0.1:${s.port}/graphql`, webSocketImpl: WebSocket, lazy: false });
    const events: Row[] = [];
    const done = new Promise<void>((resolve, reject) => {
      client.subscribe<{ datastoreChanged: Row }>(
        { query: "subscription { datastoreChanged { kind imageId tag version source } }" },
        {
          next: (v) => {
            events.push(v.data?.datastoreChanged as Row);
            if (events.length === 3) {
              resolve();
            }
          },
          error: reject,
          complete: () => {},
        },
      );
    });
    await new Promise((r) => setTimeout(r, 200));
    await s.upload(
      SAVE,
      { imageId: "anat", file: null, tag: "original" },
      { file: { data: anatomical, name: "a.nii" } },
    );
    await s.gql(`mutation { updateImageInfo(id: "anat", info: { reviewed: true }) { __typename } }`);
    await s.gql(`mutation { deleteImage(id: "anat2") { __typename } }`);
    await done;
    await client.dispose();
    expect(events).toEqual([
      { kind: "LABEL_SAVED", imageId: "anat", tag: "original", version: 1, source: "API" },
      { kind: "IMAGE_UPDATED", imageId: "anat", tag: null, version: null, source: "API" },
      { kind: "IMAGE_REMOVED", imageId: "anat2", tag: null, version: null, source: "API" },
    ]);
  });

  it("streams datastoreChanged over SSE", async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${s.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ query: "subscription { datastoreChanged { kind imageId } }" }),
      signal: ctrl.signal,
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await new Promise((r) => setTimeout(r, 100));
    await s.gql(`mutation { updateImageInfo(id: "anat", info: { sse: 1 }) { __typename } }`);
    let text = "";
    while (!text.includes("IMAGE_UPDATED")) {
      const { value, done } = await reader.read();
      if (done) {
        break;
      }
      text += new TextDecoder().decode(value);
    }
    ctrl.abort();
    expect(text).toContain('{"data":{"datastoreChanged":{"kind":"IMAGE_UPDATED","imageId":"anat"}}}');
  });

  it("runs an export job whose progress streams over graphql-ws and whose zip downloads", async () => {
    const r = await s.gql<{ exportDataset: { data: Row } }>(
      `mutation { exportDataset { ... on ExportDatasetSuccess { data { id status } } } }`,
    );
    const id = r.data?.exportDataset.data.id as string;
    const client = createClient({ url: `ws://127.0.0.1:${s.port}/graphql`, webSocketImpl: WebSocket });
    const seen: Row[] = [];
    await new Promise<void>((resolve, reject) => {
      client.subscribe<{ jobUpdated: Row }>(
        { query: `subscription ($id: ID) { jobUpdated(id: $id) { status progress downloadUrl } }`, variables: { id } },
        {
          next: (v) => {
            const job = v.data?.jobUpdated as Row;
            seen.push(job);
            if (job.status === "SUCCEEDED" || job.status === "FAILED") {
              resolve();
            }
          },
          error: reject,
          complete: resolve,
        },
      );
    });
    await client.dispose();
    const last = seen.at(-1) as Row;
    expect(last.status).toBe("SUCCEEDED");
    expect(last.progress).toBe(1);
    const zip = Buffer.from(await (await fetch(last.downloadUrl as string)).arrayBuffer());
    expect(zip.subarray(0, 2).toString()).toBe("PK");
    expect(zip.includes(Buffer.from("image/colin27.nii.gz"))).toBe(true);
    expect(zip.includes(Buffer.from("label/colin27.nii.gz"))).toBe(true);
    expect(zip.includes(Buffer.from("metadata.json"))).toBe(true);
    const job = await s.gql<{ job: Row }>(`{ job(id: "${id}") { kind status result } }`);
    expect(job.data?.job).toMatchObject({ kind: "exportDataset", status: "SUCCEEDED", result: { images: 1 } });
  });
});
