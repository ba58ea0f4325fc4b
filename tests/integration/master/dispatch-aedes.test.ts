import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { createTopics, workerClientId } from '../../../proto/src/topics.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { describeDispatchContract } from './dispatch.contract.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

describeDispatchContract('the embedded aedes broker', async () => ({
  mqttUrl: undefined,
  stop: async () => {},
}));

describe('embedded broker privacy', () => {
  let redis: RedisServer;
  let master: MasterHandle;
  let worker: WorkerHandle;
  beforeAll(async () => {
    redis = await startRedis();
    master = await startTestMaster({ queueUrl: redis.url });
    worker = await startTestWorker(master, { WORKER_ID: 'private-1' });
  });
  afterAll(async () => {
    await worker?.close();
    await master?.close();
    await redis?.stop();
  });

  it('never shows an assignment (and its API key) to an observer or another worker', async () => {
    const topics = createTopics();
    const spy = await mqtt.connectAsync(master.mqttUrl, { clientId: 'curious' });
    const seen: string[] = [];
    spy.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    await spy.subscribeAsync(topics.allLogs());
    for (const filter of ['flota/v1/#', '#', topics.tasks('private-1'), topics.allStatus()]) {
      await expect(spy.subscribeAsync(filter)).rejects.toMatchObject({
        packet: { granted: [128] },
      });
    }
    const nosy = await mqtt.connectAsync(master.mqttUrl, {
      clientId: workerClientId('nosy'),
      username: 'nosy',
      password: await master.issueWorkerCredential('nosy'),
    });
    await expect(nosy.subscribeAsync(topics.tasks('private-1'))).rejects.toMatchObject({
      packet: { granted: [128] },
    });
    const { body } = await api<{ id: string }>(master, '/api/tasks', {
      body: { prompt: 'secret work', apiKey: 'sk-very-secret-key' },
    });
    const task = await waitFor(
      async () => {
        const { body: t } = await api<TaskView>(master, `/api/tasks/${body.id}`);
        return t.state === 'completed' ? t : undefined;
      },
      { what: 'task completed' },
    );
    expect(task.result).toBe('echo: secret work');
    await waitFor(() => seen.some((line) => line.startsWith('flota/v1/logs/private-1')), {
      what: 'worker logs',
    });
    await Promise.all([spy.endAsync(), nosy.endAsync()]);
    expect(seen.every((line) => line.startsWith('flota/v1/logs/'))).toBe(true);
    expect(seen.filter((line) => line.includes('sk-very-secret-key'))).toEqual([]);
  });
});
