/**
 * Fleet control and the audit trail with a real master, Redis and real
 * workers (in-process, with a provider whose answers the test releases):
 * drain, resume, live config, cordons, the emergency stop, stop and restart,
 * each acknowledged by the worker and recorded in the trail.
 */
import * as grpc from '@grpc/grpc-js';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { METADATA_AUTHORIZATION, METADATA_WORKER_ID } from '../../../proto/src/grpc.ts';
import type { AuditPage } from '../../../proto/src/schemas/audit.ts';
import type {
  CordonResponse,
  FleetState,
  WorkerCommandResponse,
} from '../../../proto/src/schemas/fleet.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { createGatedProvider, type GatedProvider } from '../../helpers/gated-provider.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { reportResult } from '../../helpers/report-stream.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, masterGrpcClient, startTestMaster, testLogger } from './support.ts';

const ADMIN = 'ops-admin-token-0123456789';
const USER = 'acme-user-token-0123456789';
const asAdmin = { authorization: `Bearer ${ADMIN}` };
const asUser = { authorization: `Bearer ${USER}` };

let redis: RedisServer;
let master: MasterHandle;
const workers: WorkerHandle[] = [];

interface TestWorker {
  handle: WorkerHandle;
  provider: GatedProvider;
}

async function startGatedWorker(
  id: string,
  env: Record<string, string>,
  servable: readonly string[] = [env.MODELS ?? 'echo'],
): Promise<TestWorker> {
  const provider = createGatedProvider(servable);
  const config = loadWorkerConfig({
    MQTT_URL: master.mqttUrl,
    MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
    HEARTBEAT_MS: '500',
    WORKER_ID: id,
    WORKER_TOKEN: await master.issueWorkerCredential(id),
    ...env,
  });
  const handle = await startWorker(config, { logger: testLogger(id), provider });
  workers.push(handle);
  await waitFor(async () => (await view(id))?.state === 'online', { what: `${id} online` });
  return { handle, provider };
}

async function view(id: string): Promise<WorkerView | undefined> {
  const { body } = await api<{ workers: WorkerView[] }>(master, '/api/workers', {
    headers: asAdmin,
  });
  return body.workers.find((w) => w.id === id);
}

const admin = <T>(path: string, method = 'POST', body: unknown = {}) =>
  api<T>(master, path, { method, body, headers: asAdmin });
const fleetState = async () =>
  (await api<FleetState>(master, '/api/fleet', { headers: asAdmin })).body;

async function submit(prompt: string, model: string): Promise<string> {
  const posted = await api<{ id: string }>(master, '/api/tasks', {
    body: { prompt, model },
    headers: asAdmin,
  });
  expect(posted.status).toBe(202);
  return posted.body.id;
}

const task = async (id: string) =>
  (await api<TaskView>(master, `/api/tasks/${id}`, { headers: asAdmin })).body;

const taskIn = (id: string, states: string[]) =>
  waitFor(
    async () => {
      const t = await task(id);
      return states.includes(t.state) ? t : undefined;
    },
    { what: `task ${id} ${states.join('/')}` },
  );

const audit = async (query: string) =>
  (await api<AuditPage>(master, `/api/audit?${query}`, { headers: asAdmin })).body;

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `ops:${ADMIN}:admin,acme:${USER}` },
  });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await master?.close();
  await redis?.stop();
});

describe('access', () => {
  it('refuses tenants (403) and callers without a token (401), and audits the refusals', async () => {
    const since = Date.now();
    // Five from one address: the most a minute records one by one (refusal-meter.ts).
    expect((await api(master, '/api/fleet/stop', { body: {} })).status).toBe(401);
    expect(
      (await api(master, '/api/workers/any/drain', { body: {}, headers: asUser })).status,
    ).toBe(403);
    expect((await api(master, '/api/audit', { headers: asUser })).status).toBe(403);
    // A browser with a bad token on Socket.IO.
    const socket = io(master.httpUrl, {
      auth: { token: 'not-a-token' },
      transports: ['websocket'],
    });
    const refusal = await new Promise<Error>((resolve) => socket.once('connect_error', resolve));
    socket.close();
    expect(refusal.message).toMatch(/not valid/);
    // A worker with a bad credential on gRPC.
    const md = new grpc.Metadata();
    md.set(METADATA_WORKER_ID, 'fc-intruder');
    md.set(METADATA_AUTHORIZATION, 'Bearer not-a-credential');
    const client = masterGrpcClient(master);
    const { error } = await reportResult(client, { taskId: 't', attempt: 1, lease: 'l' }, md);
    client.close();
    expect(error?.code).toBe(grpc.status.UNAUTHENTICATED);

    const refused = await waitFor(async () => {
      const page = await audit(`action=auth.refused&since=${since}`);
      return page.records.length === 5 ? page : undefined;
    });
    expect(refused.records[0]).toMatchObject({
      target: expect.stringMatching(/^gRPC .* as fc-intruder$/),
      detail: expect.stringMatching(/^UNAUTHENTICATED/),
      from: '127.0.0.1',
    });
    expect(refused.records.at(-1)).toMatchObject({
      action: 'auth.refused',
      result: 'refused',
      target: 'POST /api/fleet/stop',
      detail: expect.stringMatching(/^401/),
      from: expect.stringContaining('127.0.0.1'),
    });
    expect(refused.records.at(-1)?.actor).toBeUndefined();
    expect(refused.records[1]).toMatchObject({
      target: 'Socket.IO connection',
      detail: expect.stringMatching(/^401/),
    });
    expect(refused.records[2]).toMatchObject({
      target: 'GET /api/audit',
      actor: 'acme',
      role: 'user',
      detail: expect.stringMatching(/^403/),
    });
    expect(JSON.stringify(refused)).not.toContain(USER);
  });

  it('answers 404 for an unknown worker and 400 for a bad body or query', async () => {
    expect((await admin('/api/workers/nobody-here/drain')).status).toBe(404);
    expect((await admin('/api/workers/nobody/config', 'PATCH', { slots: 0 })).status).toBe(400);
    expect((await admin('/api/workers/nobody/config', 'PATCH', {})).status).toBe(400);
    expect((await admin('/api/workers/drain', 'POST', {})).status).toBe(400);
    expect((await admin('/api/fleet/stop', 'POST', { running: 'maybe' })).status).toBe(400);
    expect((await api(master, '/api/audit?limit=0', { headers: asAdmin })).status).toBe(400);
  });
});

describe('drain and resume', () => {
  it('assigns nothing new to a drained worker while its running task finishes', async () => {
    const model = 'm-drain';
    const a = await startGatedWorker('fc-drain-a', { MODELS: model, SLOTS: '2' });
    const first = await submit('first', model);
    await waitFor(() => a.provider.running.has('first'), { what: 'first running on a' });

    const drained = await admin<WorkerCommandResponse>('/api/workers/fc-drain-a/drain');
    expect(drained.status).toBe(200);
    expect(drained.body).toMatchObject({ command: 'drain', worker: { draining: true } });

    // A second worker joins: the next task goes there, though a still has a free slot.
    const b = await startGatedWorker('fc-drain-b', { MODELS: model, SLOTS: '1' });
    const second = await submit('second', model);
    expect((await taskIn(second, ['running'])).workerId).toBe('fc-drain-b');
    expect(a.provider.running.has('second')).toBe(false);

    a.provider.release('first');
    expect((await taskIn(first, ['completed'])).workerId).toBe('fc-drain-a');

    const resumed = await admin<WorkerCommandResponse>('/api/workers/fc-drain-a/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.body.worker?.draining).toBe(false);
    const third = await submit('third', model);
    expect((await taskIn(third, ['running'])).workerId).toBe('fc-drain-a');
    a.provider.releaseAll();
    b.provider.releaseAll();
    await taskIn(third, ['completed']);

    const records = (await audit('action=worker.drain')).records;
    expect(records[0]).toMatchObject({
      actor: 'ops',
      role: 'admin',
      target: 'fc-drain-a',
      result: 'ok',
    });
  });

  it('cordons workers by label, drains those that join later, and lifts it', async () => {
    const model = 'm-cordon';
    await startGatedWorker('fc-cordon-x1', { MODELS: model, LABELS: 'zone=x' });
    await startGatedWorker('fc-cordon-y1', { MODELS: model, LABELS: 'zone=y' });
    const cordon = await admin<CordonResponse>('/api/workers/drain', 'POST', {
      labels: { zone: 'x' },
    });
    expect(cordon.status).toBe(200);
    expect(cordon.body.workers).toEqual([{ workerId: 'fc-cordon-x1', ok: true }]);

    await startGatedWorker('fc-cordon-x2', { MODELS: model, LABELS: 'zone=x' });
    await waitFor(async () => (await view('fc-cordon-x2'))?.draining, {
      what: 'the joining worker drained',
    });
    const state = await fleetState();
    expect(state.cordons).toMatchObject([{ selector: { labels: { zone: 'x' } }, by: 'ops' }]);
    expect(state.drained.map((d) => d.workerId).sort()).toEqual(['fc-cordon-x1', 'fc-cordon-x2']);
    expect((await view('fc-cordon-y1'))?.draining).toBe(false);

    const lifted = await admin<CordonResponse>('/api/workers/resume', 'POST', {
      labels: { zone: 'x' },
    });
    expect(lifted.body.workers.map((w) => w.ok)).toEqual([true, true]);
    const after = await fleetState();
    expect(after).toMatchObject({ cordons: [], drained: [] });
    expect((await audit('action=workers.cordon')).records[0]).toMatchObject({
      target: 'zone=x',
      result: 'ok',
    });
  });
});

describe('live config', () => {
  it('changes slots and models without a restart, and shows a refusal', async () => {
    const model = 'm-config';
    const w = await startGatedWorker('fc-config', { MODELS: model, SLOTS: '1' }, [
      model,
      'm-config-2',
    ]);
    const ids = [await submit('c1', model), await submit('c2', model), await submit('c3', model)];
    await waitFor(() => w.provider.running.size === 1, { what: 'one task running' });

    const patched = await admin<WorkerCommandResponse>('/api/workers/fc-config/config', 'PATCH', {
      slots: 3,
      weight: 2,
      labels: { tier: 'gold' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.worker).toMatchObject({ slots: 3, weight: 2, labels: { tier: 'gold' } });
    await waitFor(() => w.provider.running.size === 3, { what: 'three tasks running at once' });
    w.provider.releaseAll();
    for (const id of ids) await taskIn(id, ['completed']);

    const models = await admin<WorkerCommandResponse>('/api/workers/fc-config/config', 'PATCH', {
      models: [model, 'm-config-2'],
    });
    expect(models.body.worker?.models).toEqual([model, 'm-config-2']);
    const other = await submit('on the new model', 'm-config-2');
    await waitFor(() => w.provider.running.has('on the new model'));
    w.provider.releaseAll();
    expect((await taskIn(other, ['completed'])).workerId).toBe('fc-config');

    const refused = await admin<{ code: string; error: string }>(
      '/api/workers/fc-config/config',
      'PATCH',
      { models: ['not-on-this-worker'] },
    );
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ code: 'worker_refused' });
    expect(refused.body.error).toMatch(/cannot serve not-on-this-worker/);
    expect((await view('fc-config'))?.models).toEqual([model, 'm-config-2']);
    expect((await audit('action=worker.config')).records[0]).toMatchObject({
      result: 'refused',
      detail: expect.stringMatching(/cannot serve/),
    });
  });
});

describe('emergency stop', () => {
  it('holds the queue, keeps or cancels running tasks, and resumes', async () => {
    const model = 'm-stop';
    const w = await startGatedWorker('fc-stop', { MODELS: model, SLOTS: '2' });
    const kept = await submit('kept', model);
    await waitFor(() => w.provider.running.has('kept'));

    const stopped = await admin<FleetState>('/api/fleet/stop', 'POST', { running: 'keep' });
    expect(stopped.body).toMatchObject({ dispatch: 'stopped', stopped: { running: 'keep' } });
    const metrics = await (await fetch(`${master.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^flota_dispatch_stopped 1$/m);
    const held = await submit('held', model);
    w.provider.release('kept');
    await taskIn(kept, ['completed']);
    expect((await task(held)).state).toBe('queued');

    expect((await admin<FleetState>('/api/fleet/resume')).body.dispatch).toBe('running');
    await waitFor(() => w.provider.running.has('held'), { what: 'the held task to run' });

    const cancel = await admin<FleetState>('/api/fleet/stop', 'POST', { running: 'cancel' });
    expect(cancel.body.stopped).toMatchObject({ running: 'cancel', cancelled: 1 });
    expect((await taskIn(held, ['cancelled'])).state).toBe('cancelled');
    const queued = await submit('queued while stopped', model);
    expect((await task(queued)).state).toBe('queued');
    await admin('/api/fleet/resume');
    await waitFor(() => w.provider.running.has('queued while stopped'));
    w.provider.releaseAll();
    await taskIn(queued, ['completed']);

    const actions = (await audit('limit=50')).records.map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['fleet.stop', 'fleet.resume']));
  });
});

describe('stop and restart', () => {
  it('stops a worker gracefully, restarts another with the restart exit status, 409 once offline', async () => {
    const stopping = await startGatedWorker('fc-stopped', { MODELS: 'm-bye' });
    const restarting = await startGatedWorker('fc-restarted', { MODELS: 'm-bye' });

    const restarted = await admin<WorkerCommandResponse>('/api/workers/fc-restarted/restart');
    expect(restarted.status).toBe(200);
    await restarting.handle.done;
    expect(restarting.handle.restartRequested).toBe(true);

    expect((await admin('/api/workers/fc-stopped/stop')).status).toBe(200);
    await stopping.handle.done;
    expect(stopping.handle.restartRequested).toBe(false);
    await waitFor(async () => (await view('fc-stopped'))?.state === 'offline');
    const offline = await admin<{ code: string }>('/api/workers/fc-stopped/drain');
    expect(offline).toMatchObject({ status: 409, body: { code: 'worker_offline' } });

    const records = (await audit('limit=100')).records;
    expect(records.find((r) => r.action === 'worker.restart')).toMatchObject({
      target: 'fc-restarted',
      result: 'ok',
    });
    expect(records.find((r) => r.action === 'worker.stop')).toMatchObject({ result: 'ok' });
  });
});
