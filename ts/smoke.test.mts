// Smoke test: the TypeScript types generated from spec/tinker-rest.yaml (generated/typescript/),
// used through openapi-fetch, against a running server. Node's own test runner drives it:
//
//   TINKER_BASE_URL=http://127.0.0.1:8000 TINKER_API_KEY=tml-... \
//     npx --no-install tsc -p ts && node --test ts/build/
//
// tests/typescript/test_typescript_client.py starts the reference server with one training run
// holding one checkpoint and runs this. Nothing here is hand-written wire format: every path,
// parameter, body and response type comes from the generated `paths`.

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import createClient, { type Middleware } from "openapi-fetch";

import type { components, paths } from "../generated/typescript/schema.js";

type Schemas = components["schemas"];
type ApiError = Schemas["Error"];
type Checkpoint = Schemas["Checkpoint"];
type CheckpointKind = Schemas["CheckpointKind"];

// Compile-time checks: `expectType<Equals<A, B>>()` only compiles when A and B are the same type.
type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | void {}

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} must be set: the smoke test needs a running server and an API key`);
  }
  return value;
}

const baseUrl = requiredEnv("TINKER_BASE_URL").replace(/\/+$/, "");
const apiKey = requiredEnv("TINKER_API_KEY");

// The spec's conventions: every request other than GET and HEAD sends
// `Content-Type: application/json`, also without a body (openapi-fetch only sets it with one).
const jsonContentType: Middleware = {
  onRequest({ request }) {
    if (request.method !== "GET" && request.method !== "HEAD" && !request.headers.has("Content-Type")) {
      request.headers.set("Content-Type", "application/json");
    }
    return request;
  },
};

const client = createClient<paths>({ baseUrl, headers: { "X-API-Key": apiKey } });
client.use(jsonContentType);

const CHECKPOINT_KINDS: readonly CheckpointKind[] = ["weights", "sampler_weights", "external_weights"];

function isCheckpointKind(value: string): value is CheckpointKind {
  return (CHECKPOINT_KINDS as readonly string[]).includes(value);
}

/** `weights/0001` -> the two path segments that address the checkpoint. */
function checkpointPath(
  trainingRunId: string,
  checkpointId: string,
): { training_run_id: string; checkpoint_kind: CheckpointKind; checkpoint_name: string } {
  const slash = checkpointId.indexOf("/");
  const kind = checkpointId.slice(0, slash);
  const name = checkpointId.slice(slash + 1);
  assert.ok(slash > 0 && name.length > 0, `checkpoint id ${checkpointId} is not <kind>/<name>`);
  assert.ok(isCheckpointKind(kind), `checkpoint id ${checkpointId} has an unknown kind`);
  return { training_run_id: trainingRunId, checkpoint_kind: kind, checkpoint_name: name };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("TypeScript client generated from spec/tinker-rest.yaml", () => {
  let runId = "";
  let checkpointId = "";

  async function listCheckpoints(): Promise<Checkpoint[]> {
    const { data, error, response } = await client.GET(
      "/api/v1/training_runs/{training_run_id}/checkpoints",
      { params: { path: { training_run_id: runId } } },
    );
    assert.equal(error, undefined, `list checkpoints failed: ${response.status}`);
    assert.ok(data);
    return data.checkpoints;
  }

  async function ourCheckpoint(): Promise<Checkpoint> {
    const found = (await listCheckpoints()).find((c) => c.checkpoint_id === checkpointId);
    assert.ok(found, `checkpoint ${checkpointId} is no longer listed`);
    return found;
  }

  before(async () => {
    const { data, error, response } = await client.GET("/api/v1/healthz");
    assert.equal(response.status, 200, `the server at ${baseUrl} is not healthy`);
    assert.equal(error, undefined);
    assert.equal(data?.status, "ok");
  });

  it("lists training runs", async () => {
    const { data, error, response } = await client.GET("/api/v1/training_runs", {
      params: { query: { limit: 10, offset: 0, access_scope: "owned" } },
    });
    assert.equal(response.status, 200);
    assert.equal(error, undefined);
    assert.ok(data);
    expectType<Equals<typeof data, Schemas["TrainingRunsResponse"]>>();
    assert.ok(data.training_runs.length > 0, "the server should hold at least one training run");
    assert.equal(data.cursor.offset, 0);
    assert.equal(data.cursor.limit, 10);
    assert.ok(data.cursor.total_count >= data.training_runs.length);
    const run = data.training_runs[0];
    assert.ok(run);
    assert.equal(typeof run.base_model, "string");
    assert.equal(typeof run.is_lora, "boolean");
    assert.ok(!Number.isNaN(Date.parse(run.last_request_time)), "last_request_time is a datetime");
    runId = run.training_run_id;
  });

  it("lists a run's checkpoints", async () => {
    assert.ok(runId, "needs a training run from the previous test");
    const checkpoints = await listCheckpoints();
    assert.ok(checkpoints.length > 0, `training run ${runId} should have a checkpoint`);
    for (const checkpoint of checkpoints) {
      assert.ok(checkpoint.tinker_path.startsWith(`tinker://${runId}/`), checkpoint.tinker_path);
      assert.ok(checkpoint.tinker_path.endsWith(`/${checkpoint.checkpoint_id}`));
      assert.ok(["training", "sampler", "external"].includes(checkpoint.checkpoint_type));
    }
    const first = checkpoints[0];
    assert.ok(first);
    checkpointId = first.checkpoint_id;
  });

  it("publishes and unpublishes a checkpoint", async () => {
    const path = checkpointPath(runId, checkpointId);
    const url = "/api/v1/training_runs/{training_run_id}/checkpoints/{checkpoint_kind}/{checkpoint_name}/publish" as const;
    assert.notEqual((await ourCheckpoint()).public, true, "the checkpoint starts private");

    const published = await client.POST(url, { params: { path } });
    assert.equal(published.response.status, 204);
    assert.equal(published.error, undefined);
    assert.equal((await ourCheckpoint()).public, true);

    // Publishing a public checkpoint is a conflict, with the spec's error body.
    const again = await client.POST(url, { params: { path } });
    assert.equal(again.response.status, 409);
    assert.ok(again.error);
    assert.equal(typeof again.error.detail, "string");

    const unpublished = await client.DELETE(url, { params: { path } });
    assert.equal(unpublished.response.status, 204);
    assert.equal(unpublished.error, undefined);
    assert.equal((await ourCheckpoint()).public, false);
  });

  it("sets and removes a TTL", async () => {
    const path = checkpointPath(runId, checkpointId);
    const url = "/api/v1/training_runs/{training_run_id}/checkpoints/{checkpoint_kind}/{checkpoint_name}/ttl" as const;

    const before = Date.now();
    const set = await client.PUT(url, { params: { path }, body: { ttl_seconds: 86_400 } });
    assert.equal(set.response.status, 204);
    assert.equal(set.error, undefined);
    const expiresAt = (await ourCheckpoint()).expires_at;
    assert.ok(expiresAt, "the checkpoint has an expiry after a TTL is set");
    const expiresMs = Date.parse(expiresAt);
    assert.ok(expiresMs >= before + 86_400_000 - 60_000, `expires_at ${expiresAt} is too early`);
    assert.ok(expiresMs <= Date.now() + 86_400_000 + 60_000, `expires_at ${expiresAt} is too late`);

    // `ttl_seconds: null` removes the expiry; the key is required, so it cannot be left out.
    const removed = await client.PUT(url, { params: { path }, body: { ttl_seconds: null } });
    assert.equal(removed.response.status, 204);
    assert.equal(removed.error, undefined);
    assert.equal((await ourCheckpoint()).expires_at ?? null, null);

    // Below the one-hour minimum is a 400 with the spec's error body.
    const tooShort = await client.PUT(url, { params: { path }, body: { ttl_seconds: 1 } });
    assert.equal(tooShort.response.status, 400);
    assert.ok(tooShort.error);
    assert.equal(typeof tooShort.error.detail, "string");
  });

  it("gets an archive URL", async () => {
    const path = checkpointPath(runId, checkpointId);
    let signedUrl: string | undefined;
    // 200 with the URL in the body, or 302 with it in Location (not followed); 503 while the
    // archive is being built, to ask again after Retry-After.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { data, error, response } = await client.GET(
        "/api/v1/training_runs/{training_run_id}/checkpoints/{checkpoint_kind}/{checkpoint_name}/archive",
        { params: { path }, redirect: "manual" },
      );
      if (response.status === 503 && Date.now() < deadline) {
        const retryAfter = Number(response.headers.get("Retry-After") ?? "1");
        await sleep(Math.min(Math.max(retryAfter, 0.1), 5) * 1000);
        continue;
      }
      if (response.status === 302) {
        signedUrl = response.headers.get("Location") ?? undefined;
        break;
      }
      assert.equal(response.status, 200, `archive URL: ${response.status} ${error?.detail ?? ""}`);
      assert.ok(data);
      expectType<Equals<typeof data, Schemas["CheckpointArchiveUrlResponse"]>>();
      assert.ok(Date.parse(data.expires) > Date.now(), "the signed URL has not expired yet");
      signedUrl = data.url;
      break;
    }
    assert.ok(signedUrl, "the server named a signed URL");
    const absolute = new URL(signedUrl, `${baseUrl}/`);
    // The signed URL needs no API key.
    const head = await fetch(absolute, { method: "HEAD" });
    assert.equal(head.status, 200, `HEAD ${absolute.href}`);
    assert.ok(Number(head.headers.get("Content-Length")) > 0, "the archive is not empty");
  });

  it("reports a 404 as a typed error", async () => {
    const { data, error, response } = await client.GET("/api/v1/training_runs/{training_run_id}", {
      params: { path: { training_run_id: "sess-does-not-exist:train:0" } },
    });
    assert.equal(response.status, 404);
    assert.equal(data, undefined);
    assert.ok(error, "a 404 carries an error body");
    // The error is the spec's Error schema, `{detail: string}`, and nothing looser.
    expectType<Equals<typeof error, ApiError>>();
    expectType<Equals<ApiError, { detail: string }>>();
    assert.equal(typeof error.detail, "string");
    assert.ok(error.detail.length > 0);
    assert.deepEqual(Object.keys(error), ["detail"]);

    const missing = await client.POST(
      "/api/v1/training_runs/{training_run_id}/checkpoints/{checkpoint_kind}/{checkpoint_name}/publish",
      { params: { path: { ...checkpointPath(runId, checkpointId), checkpoint_name: "no-such-checkpoint" } } },
    );
    assert.equal(missing.response.status, 404);
    assert.ok(missing.error);
    assert.equal(typeof missing.error.detail, "string");
  });

  it("copies weights into a project", async () => {
    const projectId = requiredEnv("TINKER_PROJECT_ID");
    const source = (await ourCheckpoint()).tinker_path;
    const { data, error, response } = await client.POST("/api/v1/copy_weights", {
      body: { source_path: source, destination_project_id: projectId, ttl_seconds: 7200 },
      params: { header: { "X-Tinker-Weights-Access-Token": "token-for-other-accounts" } },
    });
    assert.equal(response.status, 200, `copy_weights: ${response.status} ${error?.detail ?? ""}`);
    assert.ok(data);
    expectType<Equals<typeof data, Schemas["CopyWeightsResponse"]>>();
    assert.ok(data.tinker_path.startsWith("tinker://") && data.tinker_path !== source);

    const elsewhere = await client.POST("/api/v1/copy_weights", {
      body: { source_path: source, destination_project_id: "proj-nowhere" },
    });
    assert.equal(elsewhere.response.status, 404);
    assert.equal(typeof elsewhere.error?.detail, "string");
  });

  it("gets signed URLs for an external checkpoint's files", async () => {
    const external = (await listCheckpoints()).find((c) => c.checkpoint_type === "external");
    assert.ok(external, `training run ${runId} should have an external checkpoint`);
    const name = external.checkpoint_id.slice("external_weights/".length);
    const { data, error, response } = await client.GET(
      "/api/v1/training_runs/{training_run_id}/checkpoints/external_weights/{checkpoint_name}/external_weights_urls",
      { params: { path: { training_run_id: runId, checkpoint_name: name } } },
    );
    assert.equal(response.status, 200, `external_weights_urls: ${error?.detail ?? ""}`);
    assert.ok(data);
    expectType<Equals<typeof data, Schemas["ExternalWeightsUrlsResponse"]>>();
    assert.ok(Date.parse(data.expires) > Date.now());
    assert.deepEqual(Object.keys(data.urls).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
    // Each URL needs no API key, and serves a byte range.
    const config = await fetch(data.urls["adapter_config.json"] ?? "");
    assert.equal(await config.text(), '{"r": 8}');
    const part = await fetch(data.urls["adapter_model.safetensors"] ?? "", { headers: { Range: "bytes=0-9" } });
    assert.equal(part.status, 206);
    assert.equal((await part.arrayBuffer()).byteLength, 10);
  });

  it("reports a bad API key as a typed 401", async () => {
    const stranger = createClient<paths>({ baseUrl, headers: { "X-API-Key": "tml-not-a-real-key" } });
    const { error, response } = await stranger.GET("/api/v1/training_runs");
    assert.equal(response.status, 401);
    assert.ok(error);
    expectType<Equals<typeof error, ApiError>>();
    assert.equal(typeof error.detail, "string");
  });
});
