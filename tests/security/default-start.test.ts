/**
 * Attacks on the default `npm start` (`flota up`, nothing configured): what
 * an attacker who can reach its ports tries, and what the system does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTopics, DEFAULT_TOPIC_PREFIX } from '../../proto/src/topics.ts';
import { listWorkers, submitTask, waitForCompleted } from '../e2e/support/api.ts';
import { dumpOutput, type FlotaProcess } from '../e2e/support/flota-process.ts';
import { type LogTap, tapTopic } from '../e2e/support/log-tap.ts';
import { processesMentioning } from '../e2e/support/proc-scan.ts';
import { startUp, type UpSystem } from '../e2e/support/system.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { grpcClient, listenAddresses, reportResult } from './support/attacker.ts';
import { mqttAttacks } from './support/mqtt-attacks.ts';

const topics = createTopics(DEFAULT_TOPIC_PREFIX);
const started: FlotaProcess[] = [];
let dataDir: string;
let system: UpSystem;
let masterPid = 0;

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${system.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await res.json().catch(() => undefined)) as Record<string, unknown>,
    headers: res.headers,
  };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'flota-sec-default-'));
  system = await startUp(dataDir, { ECHO_DELAY_MS: '0' });
  started.push(system.up);
  const master = (await processesMentioning(dataDir)).find((p) =>
    p.cmdline.includes('bin/flota.mjs master'),
  );
  masterPid = master?.pid ?? 0;
});

beforeEach((ctx) => {
  ctx.onTestFailed(() => dumpOutput(started));
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop('SIGINT')));
  await rm(dataDir, { recursive: true, force: true });
});

describe('default npm start: listeners', () => {
  it('HTTP, gRPC and the embedded broker listen on loopback only', async () => {
    const port = Number(new URL(system.baseUrl).port);
    for (const p of [port, system.grpcPort, system.mqttPort]) {
      const addresses = await listenAddresses(p);
      expect(addresses.length, `port ${p} listens`).toBeGreaterThan(0);
      for (const address of addresses) expect(['127.0.0.1', '::1'], `port ${p}`).toContain(address);
    }
    expect(system.up.stderr()).toContain('http://127.0.0.1:');
  });
});

describe('default npm start: MQTT', () => {
  mqttAttacks(() => ({
    mqttUrl: `mqtt://127.0.0.1:${system.mqttPort}`,
    topics,
    victimId: 'local-1',
    otherId: 'local-2',
    issueCredential: async (workerId) => {
      const res = await post(`/api/workers/${workerId}/credential`, {});
      expect(res.status).toBe(201);
      return String(res.body.credential);
    },
    roundTrip: async (prompt) => {
      const id = await submitTask(system.baseUrl, prompt);
      return (await waitForCompleted(system.baseUrl, id)).result ?? '';
    },
    workerState: async (workerId) => {
      const worker = (await listWorkers(system.baseUrl)).find((w) => w.id === workerId);
      return worker ? worker.state : 'absent';
    },
    brokerPid: () => masterPid,
  }));
});

describe('default npm start: gRPC and logs', () => {
  it('a result without a worker credential is refused, and the user sees the real answer', async () => {
    const id = await submitTask(system.baseUrl, 'the genuine answer');
    const client = grpcClient(`127.0.0.1:${system.grpcPort}`);
    const forged = {
      taskId: id,
      attempt: 1,
      lease: 'read-on-the-broker',
      workerId: 'local-1',
      text: 'FORGED',
      model: 'echo',
    };
    const anonymous = await reportResult(client, forged, { workerId: 'local-1' });
    expect(anonymous.code).toBe(grpc.status.UNAUTHENTICATED);
    const guessed = await reportResult(client, forged, {
      workerId: 'local-1',
      bearer: 'fwt1.local-1.1.x',
    });
    expect(guessed.code).toBe(grpc.status.UNAUTHENTICATED);
    client.close();
    const view = await waitForCompleted(system.baseUrl, id);
    expect(view.result).toContain('the genuine answer');
    expect(view.result).not.toContain('FORGED');
  });

  it('the log topic is readable by an observer and carries no session id, lease or credential', async () => {
    let tap: LogTap | undefined;
    try {
      tap = await tapTopic(system.mqttPort, `${DEFAULT_TOPIC_PREFIX}/logs/#`);
      const session = `sess-${Date.now().toString(36)}-secret`;
      const credential = String(
        (await post('/api/workers/observer-check/credential', {})).body.credential,
      );
      const res = await post(
        '/api/tasks',
        { prompt: 'a private question' },
        { 'x-flota-session': session },
      );
      expect(res.status).toBe(202);
      const taskId = String(res.body.id);
      await waitForCompleted(system.baseUrl, taskId);
      // The worker's and the master's lines about this task have arrived.
      const lines = await waitFor(
        () => {
          const about = tap?.messages.filter((m) => m.payload.includes(taskId)) ?? [];
          return new Set(about.map((m) => m.topic)).size >= 2 ? tap?.messages : undefined;
        },
        { what: 'log lines about the task from the master and a worker' },
      );
      const text = lines.map((m) => m.payload).join('\n');
      expect(text).not.toContain(session);
      expect(text).not.toContain(credential);
      expect(text).not.toContain('a private question');
      expect(text).not.toMatch(/"lease":"[^"[]/);
    } finally {
      await tap?.stop();
    }
  });
});

describe('default npm start: REST input and limits', () => {
  it('a NUL, a lone surrogate or a reserved label key is a 400, not a 503', async () => {
    for (const body of [
      '{"prompt":"a\\u0000b"}',
      '{"prompt":"a\\ud800b"}',
      '{"prompt":"hi","requires":{"labels":{"__proto__":"x"}}}',
    ]) {
      const res = await post('/api/tasks', body);
      expect(res.status, body).toBe(400);
      expect(String(res.body.error)).not.toBe('');
    }
  });

  it('a model nobody serves is refused with the list of models, and creates nothing', async () => {
    for (let i = 0; i < 60; i++) {
      const res = await post('/api/tasks', { prompt: 'hi', model: `no-such-model-${i}` });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain('echo');
    }
    const ready = await fetch(`${system.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await fetch(`${system.baseUrl}/metrics`);
    expect(metrics.status).toBe(200);
  });

  // Last: it spends this address's budget for the minute.
  it('requests are rate limited by default, with the limit headers on every answer', async () => {
    const first = await fetch(`${system.baseUrl}/api/workers`);
    expect(first.headers.get('x-ratelimit-limit')).toBe('600');
    expect(first.headers.get('x-ratelimit-remaining')).not.toBeNull();
    expect(first.headers.get('x-ratelimit-reset')).not.toBeNull();
    let limited: Response | undefined;
    for (let i = 0; i < 700 && !limited; i++) {
      const res = await fetch(`${system.baseUrl}/api/workers`);
      await res.arrayBuffer();
      if (res.status === 429) limited = res;
    }
    expect(limited?.status).toBe(429);
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
