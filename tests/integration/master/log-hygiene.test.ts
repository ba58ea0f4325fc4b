/**
 * The MQTT log topic is readable without a login, so a master's and a
 * worker's published log lines must carry no broker password, session id,
 * lease, prompt or answer — checked as an anonymous observer would read them,
 * after a task submitted within a session has run.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMqtt, waitConnected } from '../../../common/mqtt.ts';
import type { MasterHandle } from '../../../master/src/main.ts';
import { SESSION_HEADER } from '../../../proto/src/http-api.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { createTopics, DEFAULT_TOPIC_PREFIX } from '../../../proto/src/topics.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type MosquittoServer, startMosquitto } from '../../helpers/mosquitto-server.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

const PASSWORD = 'broker-pw-7f3a9c';
const SESSION = 'sess_LogHygiene_0042';
const PROMPT = 'a prompt nobody else may read 5e1d';

describe('log hygiene on the MQTT log topic', () => {
  let redis: RedisServer;
  let mosquitto: MosquittoServer;
  let master: MasterHandle;
  let worker: WorkerHandle;
  let observer: MqttClient;
  const lines: string[] = [];
  const leases: string[] = [];
  const topics = createTopics();

  beforeAll(async () => {
    [redis, mosquitto] = await Promise.all([startRedis(), startMosquitto()]);
    // An anonymous reader, as `mosquitto_sub -t 'flota/v1/logs/#'`; it also notes each lease sent.
    observer = connectMqtt(mosquitto.url, { clientId: 'log-observer' });
    await waitConnected(observer, mosquitto.url);
    observer.on('message', (topic, payload) => {
      if (topic.endsWith('/tasks')) {
        const lease = (JSON.parse(payload.toString()) as { lease?: unknown }).lease;
        if (typeof lease === 'string') leases.push(lease);
      } else lines.push(payload.toString());
    });
    await observer.subscribeAsync([topics.allLogs(), `${DEFAULT_TOPIC_PREFIX}/workers/+/tasks`]);
    const withPassword = mosquitto.url.replace('mqtt://', `mqtt://flota:${PASSWORD}@`);
    master = await startTestMaster({ queueUrl: redis.url, mqttUrl: withPassword });
    worker = await startTestWorker(master, { WORKER_ID: 'hygiene-1', ECHO_DELAY_MS: '1' });
  });

  afterAll(async () => {
    await worker?.close();
    await master?.close();
    await observer?.endAsync();
    await Promise.all([redis?.stop(), mosquitto?.stop()]);
  });

  it('publishes no password, session id, lease, prompt or answer', async () => {
    await waitFor(
      async () => (await api<{ workers: unknown[] }>(master, '/api/workers')).body.workers.length,
      { what: 'the worker online' },
    );
    const { status, body } = await api<{ id: string }>(master, '/api/tasks', {
      body: { prompt: PROMPT, model: 'echo' },
      headers: { [SESSION_HEADER]: SESSION },
    });
    expect(status).toBe(202);
    const task = await waitFor(
      async () => {
        const view = (await api<TaskView>(master, `/api/tasks/${body.id}`)).body;
        return view.state === 'completed' ? view : undefined;
      },
      { timeoutMs: 20_000, what: 'the task completed' },
    );
    // The lines about this task have reached the observer (the master's last one is its completion).
    await waitFor(() => lines.some((l) => l.includes(body.id) && l.includes('task completed')), {
      what: 'the completion log line',
    });
    expect(leases.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes('"msg":"task queued"'))).toBe(true);
    expect(lines.some((l) => l.includes('"msg":"master ready"'))).toBe(true);

    const published = lines.join('\n');
    expect(published).not.toContain(PASSWORD);
    expect(published).not.toContain(SESSION);
    expect(published).not.toContain(PROMPT);
    expect(published).not.toContain(task.result as string);
    for (const lease of leases) expect(published).not.toContain(lease);
  });
});
