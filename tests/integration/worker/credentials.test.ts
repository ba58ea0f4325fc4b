/**
 * What a worker presents, against test doubles: its credential as the MQTT
 * password (username: its id) and as the gRPC bearer; with a join token it
 * enrolls first and presents what it got; a refused credential is not retried.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../common/errors.ts';
import type { Assignment } from '../../../proto/src/schemas/task.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import { createResultReporter, type ResultReporter } from '../../../worker/src/grpc-link.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { testLogger } from '../master/support.ts';
import {
  DROP,
  enrolledCredential,
  startBroker,
  startMaster,
  type TestBroker,
  type TestMaster,
} from './support.ts';

const prefix = `cred-${randomBytes(4).toString('hex')}/v1`;
const topics = createTopics(prefix);

let broker: TestBroker;
let master: TestMaster;
/** Every MQTT CONNECT the broker saw: who, with what password. */
const logins: Array<{ clientId: string; username?: string; password?: string }> = [];
const workers: WorkerHandle[] = [];

beforeAll(async () => {
  [broker, master] = await Promise.all([startBroker(), startMaster()]);
  broker.broker.authenticate = (client, username, password, done) => {
    logins.push({ clientId: client.id, username, password: password?.toString() });
    done(null, true);
  };
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all([broker?.close(), master?.close()]);
});

async function start(env: Record<string, string>) {
  const config = loadWorkerConfig({
    MQTT_URL: broker.url,
    MQTT_PREFIX: prefix,
    MASTER_GRPC: master.address,
    HEARTBEAT_MS: '100',
    ...env,
  });
  const worker = await startWorker(config, { logger: testLogger(config.workerId) });
  workers.push(worker);
  return worker;
}

/** Hands the worker one task, as the master would, and returns its id. */
async function assign(workerId: string): Promise<string> {
  const taskId = `task-${randomBytes(4).toString('hex')}`;
  const assignment: Assignment = {
    taskId,
    attempt: 1,
    lease: `lease-${taskId}`,
    model: 'echo',
    prompt: 'hi',
    params: {},
    deadline: Date.now() + 30_000,
    queuedAt: Date.now(),
  };
  const publisher = await mqtt.connectAsync(broker.url, { clientId: `pub-${taskId}` });
  await publisher.publishAsync(topics.tasks(workerId), JSON.stringify(assignment), { qos: 1 });
  await publisher.endAsync();
  return taskId;
}

/** The `authorization` the worker's result for `taskId` carried. */
async function resultAuthorization(taskId: string): Promise<string> {
  const attempt = await waitFor(() => master.attempts.find((a) => a.final?.taskId === taskId), {
    what: `result of ${taskId}`,
  });
  return attempt.authorization;
}

describe('worker credentials on the wire', () => {
  it('logs in to MQTT as its id with its credential', async () => {
    await start({ WORKER_ID: 'cred-1', WORKER_TOKEN: 'fwt1.cred-1.secret' });
    const login = await waitFor(() => logins.find((l) => l.username === 'cred-1'), {
      what: 'login',
    });
    expect(login).toEqual({
      clientId: 'flota-worker-cred-1',
      username: 'cred-1',
      password: 'fwt1.cred-1.secret',
    });
    expect(await resultAuthorization(await assign('cred-1'))).toBe('Bearer fwt1.cred-1.secret');
  });

  it('MQTT_USERNAME / MQTT_PASSWORD replace the broker login (an external broker of its own)', async () => {
    await start({
      WORKER_ID: 'cred-2',
      WORKER_TOKEN: 'fwt1.cred-2.secret',
      MQTT_USERNAME: 'site-login',
      MQTT_PASSWORD: 'site-password',
    });
    const login = await waitFor(() => logins.find((l) => l.clientId === 'flota-worker-cred-2'), {
      what: 'login',
    });
    expect(login).toMatchObject({ username: 'site-login', password: 'site-password' });
  });

  it('with a join token, enrolls first and then uses the credential it got', async () => {
    await start({ WORKER_ID: 'joined-1', WORKER_JOIN_TOKEN: 'fjt1.joined-.1.sig' });
    expect(master.enrollments).toContainEqual({
      workerId: 'joined-1',
      authorization: 'Bearer fjt1.joined-.1.sig',
    });
    const login = await waitFor(() => logins.find((l) => l.username === 'joined-1'), {
      what: 'login',
    });
    expect(login.password).toBe(enrolledCredential('joined-1'));
    expect(await resultAuthorization(await assign('joined-1'))).toBe(
      `Bearer ${enrolledCredential('joined-1')}`,
    );
  });

  it('refuses to start with neither a credential nor a join token', async () => {
    const refused = await start({ WORKER_ID: 'nothing-1' }).catch((e) => e);
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as Error).message).toMatch(/WORKER_TOKEN or WORKER_JOIN_TOKEN/);
    expect(logins.some((l) => l.clientId === 'flota-worker-nothing-1')).toBe(false);
  });
});

describe('a refused credential', () => {
  let refusing: TestMaster | undefined;
  let reporter: ResultReporter | undefined;
  afterEach(async () => {
    reporter?.close();
    await refusing?.close();
    reporter = undefined;
    refusing = undefined;
  });

  const connectReporter = (address: string) => {
    reporter = createResultReporter({
      address,
      workerId: 'revoked-1',
      credential: 'fwt1.revoked-1.x',
      channelCredentials: grpc.credentials.createInsecure(),
      log: pino({ level: 'silent' }),
    });
    return reporter;
  };
  const result = { taskId: 't', attempt: 1, lease: 'l', workerId: 'revoked-1', text: 'x' };

  it.each([
    ['UNAUTHENTICATED', grpc.status.UNAUTHENTICATED],
    ['PERMISSION_DENIED', grpc.status.PERMISSION_DENIED],
  ])('is not retried: one call, then the result is given up (%s)', async (_, code) => {
    // Refused at the call's start, as the real master's auth interceptor does.
    refusing = await startMaster();
    refusing.behaviour = { connect: () => ({ code, details: 'revoked' }) };
    const link = connectReporter(refusing.address);
    const started = Date.now();
    const ack = await link.report(result, Date.now() + 60_000);
    expect(ack).toBeUndefined();
    expect(refusing.connections).toHaveLength(1);
    expect(refusing.connections[0]).toMatchObject({
      workerId: 'revoked-1',
      authorization: 'Bearer fwt1.revoked-1.x',
      messages: 0,
    });
    expect(refusing.deliveries).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('revoked while its stream is open: the result waiting for an answer is given up, not resent', async () => {
    refusing = await startMaster();
    refusing.behaviour = { result: () => DROP };
    const link = connectReporter(refusing.address);
    const started = Date.now();
    const ack = link.report(result, Date.now() + 60_000);
    await waitFor(() => refusing?.deliveries.length === 1, { what: 'the result to arrive' });
    // The real master ends a revoked worker's open calls with UNAUTHENTICATED.
    refusing.cut(grpc.status.UNAUTHENTICATED);
    expect(await ack).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(refusing.connections).toHaveLength(1);
    expect(refusing.deliveries).toHaveLength(1);
  });
});
