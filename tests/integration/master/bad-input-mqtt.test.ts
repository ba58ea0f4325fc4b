/**
 * Bad input on every MQTT topic a flota process listens to, against a real
 * master and a real worker, on the embedded broker and on Mosquitto: each
 * message is dropped with a logged reason, and the system keeps serving.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MQTT_PAYLOAD_BYTES } from '../../../common/mqtt.ts';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import { MAX_ASSIGNMENT_BYTES } from '../../../worker/src/agent.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { startMosquitto } from '../../helpers/mosquitto-server.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import {
  connectRogue,
  type ErrorTrap,
  type LogTap,
  runTask,
  type TappedLine,
  tapLogs,
  topics,
  trapProcessErrors,
} from './bad-input-support.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

const WORKER = 'sturdy-1';
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
/** A well-formed heartbeat body claiming to come from `id`. */
const heartbeatOf = (id: string) =>
  json({ id, ts: Date.now(), cpuPct: 1, mem: { usedPct: 1, totalMb: 1, rssMb: 1 }, freeSlots: 1 });

/** Valid JSON just over the largest bound any topic allows (the assignment one): over 2 MB. */
const OVERSIZED = (() => {
  const size = Math.max(MAX_MQTT_PAYLOAD_BYTES, MAX_ASSIGNMENT_BYTES) + 1;
  const head = '{"pad":"';
  return Buffer.from(`${head}${'x'.repeat(size - head.length - 2)}"}`);
})();

const GARBAGE = {
  'non-JSON bytes': Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x6e, 0x6f, 0x74]),
  'JSON of the wrong shape': json({ hello: 'world', id: 42, state: 'sideways', type: 'explode' }),
  'a payload over 2 MB': OVERSIZED,
  'an empty payload': Buffer.alloc(0),
} as const;
type GarbageKind = keyof typeof GARBAGE;

/** What the drop log line says, by kind of garbage. */
const REASON: Record<GarbageKind, RegExp> = {
  'non-JSON bytes': /not JSON/,
  'JSON of the wrong shape': /invalid/,
  'a payload over 2 MB': /too large/,
  'an empty payload': /empty/,
};

interface Listener {
  topic: string;
  /** The log `source` of the process that must log the drop. */
  source: string;
}

const LISTENERS: Record<string, Listener> = {
  'worker status (master)': { topic: topics.status(WORKER), source: 'master' },
  'worker heartbeat (master)': { topic: topics.heartbeat(WORKER), source: 'master' },
  'worker tasks (worker)': { topic: topics.tasks(WORKER), source: WORKER },
  'worker control (worker)': { topic: topics.control(WORKER), source: WORKER },
};

const dropped = (l: Listener, reason: RegExp) => (line: TappedLine) =>
  line.source === l.source &&
  line.topic === l.topic &&
  /dropped|ignored/.test(line.msg) &&
  reason.test(line.msg);

function describeBadMqttInput(
  label: string,
  openBroker: () => Promise<{ url?: string; stop(): Promise<void> }>,
) {
  describe(`bad MQTT input on ${label}`, () => {
    let trap: ErrorTrap;
    let redis: RedisServer;
    let broker: { url?: string; stop(): Promise<void> };
    let master: MasterHandle;
    let worker: WorkerHandle;
    let logs: LogTap;
    let rogue: MqttClient;

    const workers = async () =>
      (await api<{ workers: WorkerView[] }>(master, '/api/workers')).body.workers;

    beforeAll(async () => {
      trap = trapProcessErrors();
      [redis, broker] = await Promise.all([startRedis(), openBroker()]);
      master = await startTestMaster({ queueUrl: redis.url, mqttUrl: broker.url });
      logs = await tapLogs(master.mqttUrl);
      worker = await startTestWorker(master, { WORKER_ID: WORKER, ECHO_DELAY_MS: '1' });
      const online = async () =>
        (await workers()).some((w) => w.id === WORKER && w.state === 'online');
      await waitFor(online, { what: 'worker online' });
      rogue = await connectRogue(master.mqttUrl);
      // The worker's log lines reach the tap only once its link is up.
      await logs.waitForLine((l) => l.source === WORKER, 'first worker log line');
    });

    afterAll(async () => {
      await rogue?.endAsync();
      await worker?.close();
      await logs?.close();
      await master?.close();
      await Promise.all([redis?.stop(), broker?.stop()]);
      trap?.dispose();
    });

    for (const [where, listener] of Object.entries(LISTENERS)) {
      for (const [kind, payload] of Object.entries(GARBAGE) as Array<[GarbageKind, Buffer]>) {
        it(`drops ${kind} on ${where} with a logged reason`, async () => {
          await rogue.publishAsync(listener.topic, payload, { qos: 1 });
          const line = await logs.waitForLine(
            dropped(listener, REASON[kind]),
            `${kind} on ${listener.topic}`,
          );
          expect(line).toMatchObject({ topic: listener.topic, source: listener.source });
          if (kind === 'a payload over 2 MB') {
            expect(line).toMatchObject({ bytes: OVERSIZED.length });
            expect(line.msg).toContain(String(OVERSIZED.length));
          }
          if (kind === 'JSON of the wrong shape') expect(line.reason).toEqual(expect.any(String));
        });
      }
    }

    it('takes garbage on the log topic without harm (no flota process reads it)', async () => {
      const topic = topics.log('rogue-src');
      for (const payload of Object.values(GARBAGE))
        await rogue.publishAsync(topic, payload, { qos: 1 });
      expect((await runTask(master, 'after log garbage')).state).toBe('completed');
    });

    it("drops a status on workers/B/status that claims another worker's id", async () => {
      const topic = topics.status('impostor-b');
      await rogue.publishAsync(topic, json({ state: 'offline', id: WORKER, reason: 'shutdown' }), {
        qos: 1,
      });
      await rogue.publishAsync(
        topic,
        json({
          state: 'online',
          id: WORKER,
          kind: 'gpu',
          models: ['stolen'],
          providers: ['echo'],
          slots: 64,
          version: 'x',
          host: 'x',
          startedAt: 1,
        }),
        { qos: 1 },
      );
      const l = { topic, source: 'master' };
      await logs.waitForLine(dropped(l, /id does not match/), 'offline claim dropped');
      await waitFor(() => logs.lines.filter(dropped(l, /id does not match/)).length >= 2, {
        what: 'online claim dropped',
      });
      const view = (await workers()).find((w) => w.id === WORKER);
      expect(view).toMatchObject({ state: 'online', kind: 'cpu', models: ['echo'] });
      expect((await workers()).map((w) => w.id)).not.toContain('impostor-b');
    });

    it("drops a heartbeat on workers/B/heartbeat that claims another worker's id", async () => {
      const topic = topics.heartbeat('impostor-b');
      await rogue.publishAsync(topic, heartbeatOf(WORKER), { qos: 1 });
      const line = await logs.waitForLine(
        dropped({ topic, source: 'master' }, /id does not match/),
        'spoofed heartbeat',
      );
      expect(line).toMatchObject({ claimed: WORKER });
    });

    it('drops a heartbeat for a worker it does not know, with a logged reason', async () => {
      const topic = topics.heartbeat('ghost-9');
      await rogue.publishAsync(topic, heartbeatOf('ghost-9'), { qos: 1 });
      const line = await logs.waitForLine(
        dropped({ topic, source: 'master' }, /./),
        'heartbeat of an unknown worker',
      );
      expect(line.level).toMatch(/debug|info|warn/);
      expect((await workers()).map((w) => w.id)).not.toContain('ghost-9');
    });

    it('lets the master refuse a well-formed assignment for a task it never gave out', async () => {
      await rogue.publishAsync(
        topics.tasks(WORKER),
        json({
          taskId: 'any.echo.forged',
          attempt: 1,
          lease: 'forged-lease',
          model: 'echo',
          prompt: 'forged',
          deadline: Date.now() + 30_000,
          queuedAt: Date.now(),
        }),
        { qos: 1 },
      );
      const line = await logs.waitForLine(
        (l) =>
          l.source === WORKER &&
          l.msg === 'master rejected the result' &&
          (l as { taskId?: string }).taskId === 'any.echo.forged',
        'forged assignment refused by the master',
      );
      expect(line.reason).toBe('unknown_task');
    });

    it('still serves a task end to end, with every process up and nothing uncaught', async () => {
      const task = await runTask(master, 'still alive?');
      expect(task).toMatchObject({
        state: 'completed',
        result: 'echo: still alive?',
        workerId: WORKER,
      });
      expect((await api<{ ok: boolean }>(master, '/healthz')).body).toEqual({ ok: true });
      expect((await workers()).find((w) => w.id === WORKER)?.state).toBe('online');
      expect(trap.errors).toEqual([]);
    });
  });
}

describeBadMqttInput('the embedded aedes broker', async () => ({
  url: undefined,
  stop: async () => {},
}));

describeBadMqttInput('Mosquitto', async () => {
  const mosquitto = await startMosquitto();
  return { url: mosquitto.url, stop: () => mosquitto.stop() };
});
