/**
 * The OpenAPI document against a real master (Redis store, embedded broker,
 * an echo worker): the master serves it without a token, and real answers
 * of /api and /v1, successes and errors, validate against the schema the
 * document gives for their path, method and status.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { OPENAPI_PATH } from '../../../proto/src/http-api.ts';
import { buildOpenApiDocument } from '../../../proto/src/openapi.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { type RawAnswer, raw } from '../http/support.ts';
import { startTestMaster, startTestWorker } from './support.ts';

const ADMIN = 'oa-admin-token-0123456789abcdef';
const USER = 'oa-user-token-0123456789abcdef';

type Schema = Record<string, unknown>;
interface Document {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>
  >;
  components: { schemas: Record<string, Schema> };
}

let redis: RedisServer;
let master: MasterHandle;
let echo: WorkerHandle;
let doc: Document;
const ajv = new Ajv2020({ strict: false, allErrors: true });
const compiled = new Map<string, ValidateFunction>();

/** The document's schema of a JSON answer; its one `$ref` (to a component) followed. */
function schemaFor(
  method: string,
  path: string,
  status: number,
  type = 'application/json',
): Schema {
  const response = doc.paths[path]?.[method]?.responses[String(status)];
  expect(response, `${method} ${path} ${status} is documented`).toBeDefined();
  const schema = response?.content?.[type]?.schema;
  expect(schema, `${method} ${path} ${status} has a ${type} schema`).toBeDefined();
  const ref = (schema as Schema).$ref;
  return typeof ref === 'string'
    ? (doc.components.schemas[ref.replace('#/components/schemas/', '')] as Schema)
    : (schema as Schema);
}

/** Fails with ajv's reasons unless `body` fits the documented schema. */
function expectDocumented(method: string, path: string, answer: { status: number; body: unknown }) {
  const key = `${method} ${path} ${answer.status}`;
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(schemaFor(method, path, answer.status));
    compiled.set(key, validate);
  }
  const valid = validate(answer.body);
  expect(validate.errors ?? [], `${key}: ${JSON.stringify(answer.body).slice(0, 500)}`).toEqual([]);
  expect(valid).toBe(true);
}

const call = (method: string, path: string, token?: string, body?: unknown): Promise<RawAnswer> =>
  raw(master.httpUrl, method.toUpperCase(), path, { token, body });

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `ops:${ADMIN}:admin,acme:${USER}` },
  });
  echo = await startTestWorker(master, { WORKER_ID: 'oa-echo' });
  await waitFor(
    async () => ((await call('get', '/api/workers', USER)).body.workers as unknown[]).length === 1,
    { what: 'the echo worker online' },
  );
  doc = (await call('get', OPENAPI_PATH)).body as unknown as Document;
}, 60_000);

afterAll(async () => {
  await echo?.close();
  await master?.close();
  await redis?.stop();
});

describe('GET /api/openapi.json', () => {
  it('is served without a token, and is the document proto builds', async () => {
    const answer = await call('get', OPENAPI_PATH);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
  });
});

describe('real /api answers fit the document', () => {
  it('tasks: submit, get, and their errors', async () => {
    const submitted = await call('post', '/api/tasks', USER, { prompt: 'hello', model: 'echo' });
    expect(submitted.status).toBe(202);
    expectDocumented('post', '/api/tasks', submitted);
    const id = submitted.body.id as string;

    let task: RawAnswer | undefined;
    await waitFor(
      async () => {
        task = await call('get', `/api/tasks/${encodeURIComponent(id)}`, USER);
        return task.body.state === 'completed';
      },
      { what: 'the task completed' },
    );
    expect(task?.status).toBe(200);
    expectDocumented('get', '/api/tasks/{id}', task as RawAnswer);

    const again = await call('delete', `/api/tasks/${encodeURIComponent(id)}`, USER);
    expect(again.status).toBe(409);
    expectDocumented('delete', '/api/tasks/{id}', again);

    const moved = await call('patch', `/api/tasks/${encodeURIComponent(id)}`, USER, {
      priority: -1,
    });
    expect(moved.status).toBe(400);
    expectDocumented('patch', '/api/tasks/{id}', moved);

    const bad = await call('post', '/api/tasks', USER, { prompt: '' });
    expect(bad.status).toBe(400);
    expectDocumented('post', '/api/tasks', bad);

    const unknownModel = await call('post', '/api/tasks', USER, { prompt: 'hi', model: 'nope' });
    expect(unknownModel.status).toBe(400);
    expectDocumented('post', '/api/tasks', unknownModel);

    const batch = await call('post', '/api/tasks/batch', USER, {
      tasks: [
        { prompt: 'one', model: 'echo' },
        { prompt: 'two', model: 'nope' },
      ],
    });
    expect(batch.status).toBe(202);
    expectDocumented('post', '/api/tasks/batch', batch);
    const badBatch = await call('post', '/api/tasks/batch', USER, { tasks: [] });
    expect(badBatch.status).toBe(400);
    expectDocumented('post', '/api/tasks/batch', badBatch);

    const missing = await call('get', '/api/tasks/no-such-task', USER);
    expect(missing.status).toBe(404);
    expectDocumented('get', '/api/tasks/{id}', missing);

    const anonymous = await call('get', '/api/tasks/no-such-task');
    expect(anonymous.status).toBe(401);
    expectDocumented('get', '/api/tasks/{id}', anonymous);
  });

  it('task history: the list, a timeline, a retry, usage, and their errors', async () => {
    const failed = await call('post', '/api/tasks', USER, {
      prompt: 'never runs',
      model: 'echo',
      requires: { labels: { zone: 'nowhere' } },
    });
    const id = failed.body.id as string;
    expect((await call('delete', `/api/tasks/${encodeURIComponent(id)}`, USER)).status).toBe(200);
    const list = await waitFor(
      async () => {
        const answer = await call('get', '/api/tasks?state=cancelled', USER);
        return (answer.body.tasks as unknown[]).length > 0 ? answer : undefined;
      },
      { what: 'the cancelled task in the history' },
    );
    expectDocumented('get', '/api/tasks', list);
    expect(schemaFor('get', '/api/tasks', 200, 'text/csv')).toBeDefined();
    expectDocumented('get', '/api/tasks', await call('get', '/api/tasks?limit=0', USER));

    const timeline = await call('get', `/api/tasks/${encodeURIComponent(id)}/timeline`, USER);
    expect(timeline.status).toBe(200);
    expectDocumented('get', '/api/tasks/{id}/timeline', timeline);
    const unknown = await call('get', '/api/tasks/no-such-task/timeline', USER);
    expect(unknown.status).toBe(404);
    expectDocumented('get', '/api/tasks/{id}/timeline', unknown);

    const retried = await call('post', `/api/tasks/${encodeURIComponent(id)}/retry`, USER);
    expect(retried.status).toBe(202);
    expectDocumented('post', '/api/tasks/{id}/retry', retried);
    const again = retried.body.id as string;
    const running = await call('post', `/api/tasks/${encodeURIComponent(again)}/retry`, USER);
    expect(running.status).toBe(409);
    expectDocumented('post', '/api/tasks/{id}/retry', running);
    await call('delete', `/api/tasks/${encodeURIComponent(again)}`, USER);

    const usage = await call('get', '/api/usage?groupBy=tenant,model,day', USER);
    expect(usage.status).toBe(200);
    expectDocumented('get', '/api/usage', usage);
    expect(schemaFor('get', '/api/usage', 200, 'text/csv')).toBeDefined();
    const badUsage = await call('get', '/api/usage?groupBy=colour', USER);
    expect(badUsage.status).toBe(400);
    expectDocumented('get', '/api/usage', badUsage);
  });

  it('workers, models and metrics', async () => {
    for (const path of ['/api/workers', '/api/models', '/api/metrics']) {
      const answer = await call('get', path, USER);
      expect(answer.status, path).toBe(200);
      expectDocumented('get', path, answer);
    }
  });

  it('admin routes: audit, fleet, join tokens; a user token is refused', async () => {
    const joinToken = await call('post', '/api/workers/join-tokens', ADMIN, { prefix: 'oa-' });
    expect(joinToken.status).toBe(201);
    expectDocumented('post', '/api/workers/join-tokens', joinToken);

    const fleet = await call('get', '/api/fleet', ADMIN);
    expect(fleet.status).toBe(200);
    expectDocumented('get', '/api/fleet', fleet);

    const audit = await call('get', '/api/audit?limit=10', ADMIN);
    expect(audit.status).toBe(200);
    expect((audit.body.records as unknown[]).length).toBeGreaterThan(0);
    expectDocumented('get', '/api/audit', audit);

    const badQuery = await call('get', '/api/audit?limit=0', ADMIN);
    expect(badQuery.status).toBe(400);
    expectDocumented('get', '/api/audit', badQuery);

    const forbidden = await call('get', '/api/audit', USER);
    expect(forbidden.status).toBe(403);
    expectDocumented('get', '/api/audit', forbidden);

    const offline = await call('post', '/api/workers/nobody-here/drain', ADMIN, {});
    expect(offline.status).toBe(404);
    expectDocumented('post', '/api/workers/{id}/drain', offline);
  });

  it('admin routes: the live series and the alerts', async () => {
    const series = await waitFor(
      async () => {
        const answer = await call('get', '/api/series', ADMIN);
        return (answer.body.points as unknown[]).length > 0 ? answer : undefined;
      },
      { what: 'a point in the series' },
    );
    expect(series.status).toBe(200);
    expectDocumented('get', '/api/series', series);
    expect(schemaFor('get', '/api/series', 200, 'text/csv')).toBeDefined();
    const badRange = await call('get', '/api/series?from=2&to=1', ADMIN);
    expect(badRange.status).toBe(400);
    expectDocumented('get', '/api/series', badRange);

    const alerts = await call('get', '/api/alerts', ADMIN);
    expect(alerts.status).toBe(200);
    expectDocumented('get', '/api/alerts', alerts);
    for (const path of ['/api/series', '/api/alerts']) {
      const forbidden = await call('get', path, USER);
      expect(forbidden.status, path).toBe(403);
      expectDocumented('get', path, forbidden);
    }
  });
});

describe('real /v1 answers fit the document', () => {
  it('chat completions, whole and streamed, and their errors', async () => {
    const path = '/v1/chat/completions';
    const answer = await call('post', path, USER, {
      model: 'echo',
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(answer.status).toBe(200);
    expectDocumented('post', path, answer);

    const streamed = await call('post', path, USER, {
      model: 'echo',
      messages: [{ role: 'user', content: 'hello' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(streamed.status).toBe(200);
    expect(schemaFor('post', path, 200, 'text/event-stream')).toBeDefined();
    const events = String(streamed.body.text)
      .split('\n\n')
      .filter((event) => event.startsWith('data: ') && event !== 'data: [DONE]')
      .map((event) => JSON.parse(event.slice('data: '.length)));
    expect(events.length).toBeGreaterThan(1);
    const validateChunk = ajv.compile(doc.components.schemas.ChatCompletionChunk as Schema);
    for (const chunk of events) {
      expect(validateChunk(chunk), JSON.stringify(validateChunk.errors)).toBe(true);
    }

    const bad = await call('post', path, USER, { model: 'echo', messages: [] });
    expect(bad.status).toBe(400);
    expectDocumented('post', path, bad);

    const unknownModel = await call('post', path, USER, {
      model: 'nope',
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(unknownModel.status).toBe(404);
    expectDocumented('post', path, unknownModel);

    const anonymous = await call('post', path, undefined, { model: 'echo', messages: [] });
    expect(anonymous.status).toBe(401);
    expectDocumented('post', path, anonymous);
  });

  it('models, one model, and an unknown one', async () => {
    const list = await call('get', '/v1/models', USER);
    expect(list.status).toBe(200);
    expect((list.body.data as unknown[]).length).toBeGreaterThan(0);
    expectDocumented('get', '/v1/models', list);

    const one = await call('get', '/v1/models/echo', USER);
    expect(one.status).toBe(200);
    expectDocumented('get', '/v1/models/{model}', one);

    const missing = await call('get', '/v1/models/nope', USER);
    expect(missing.status).toBe(404);
    expectDocumented('get', '/v1/models/{model}', missing);
  });
});
