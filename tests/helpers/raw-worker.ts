/**
 * A hand-written worker on the broker (raw MQTT, its own credential), for
 * tests that need a worker to say exactly what they choose: a catalog in its
 * status, a set of loaded models in its heartbeats. It records the
 * assignments it is sent and never runs them.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Assignment } from '../../proto/src/schemas/task.ts';
import type { Heartbeat, LoadedModel, WorkerOnline } from '../../proto/src/schemas/worker.ts';
import { createTopics, workerClientId } from '../../proto/src/topics.ts';

export interface RawWorker {
  id: string;
  client: MqttClient;
  /** Assignments received, oldest first. */
  assignments: Assignment[];
  /** Publishes a heartbeat listing these models as loaded (absent: none listed). */
  beat(loaded?: LoadedModel[]): Promise<void>;
  close(): Promise<void>;
}

export interface RawWorkerOptions {
  mqttUrl: string;
  credential: string;
  /** The online status; `id`, `state` and `startedAt` are filled in. */
  status: Omit<WorkerOnline, 'id' | 'state' | 'startedAt'>;
}

const topics = createTopics();

export async function startRawWorker(id: string, options: RawWorkerOptions): Promise<RawWorker> {
  const client = await mqtt.connectAsync(options.mqttUrl, {
    clientId: workerClientId(id),
    username: id,
    password: options.credential,
    will: {
      topic: topics.status(id),
      payload: Buffer.from(JSON.stringify({ state: 'offline', id })),
      retain: true,
      qos: 1,
    },
  });
  const assignments: Assignment[] = [];
  client.on('message', (topic, payload) => {
    if (topic === topics.tasks(id)) assignments.push(JSON.parse(payload.toString()) as Assignment);
  });
  await client.subscribeAsync(topics.tasks(id), { qos: 1 });
  const status: WorkerOnline = { ...options.status, id, state: 'online', startedAt: Date.now() };
  await client.publishAsync(topics.status(id), JSON.stringify(status), { retain: true, qos: 1 });
  return {
    id,
    client,
    assignments,
    async beat(loaded) {
      const heartbeat: Heartbeat = {
        id,
        ts: Date.now(),
        cpuPct: 5,
        mem: { usedPct: 20, totalMb: 8_192, rssMb: 100 },
        gpus: [],
        freeSlots: status.slots,
        active: [],
        draining: false,
        ...(loaded && { loaded }),
      };
      await client.publishAsync(topics.heartbeat(id), JSON.stringify(heartbeat), { qos: 1 });
    },
    async close() {
      await client.publishAsync(
        topics.status(id),
        JSON.stringify({ state: 'offline', id, reason: 'shutdown' }),
        { retain: true, qos: 1 },
      );
      await client.endAsync();
    },
  };
}

/** A llama worker's status serving `models`, each catalogued; a long heartbeat period, so tests beat when they choose. */
export function llamaStatus(
  models: string[],
  over: Partial<RawWorkerOptions['status']> = {},
): RawWorkerOptions['status'] {
  return {
    kind: 'cpu',
    models,
    providers: ['llama'],
    catalog: models.map((name) => ({
      name,
      provider: 'llama',
      sizeBytes: 600_000_000,
      quantization: 'Q4_K_M',
      contextLength: 2048,
    })),
    slots: 4,
    labels: {},
    weight: 1,
    version: 'raw',
    host: 'test',
    heartbeatMs: 60_000,
    ...over,
  };
}
