/**
 * Bad input on every MQTT topic a flota process listens to, against a real
 * master and a real worker, on the embedded broker and on Mosquitto: each
 * message is dropped with a logged reason, and the system keeps serving.
 *
 * Garbage on status and heartbeat topics comes from a worker logged in with a
 * credential of its own, on its own topics (the most any third party can do on
 * the embedded broker). On the embedded broker nobody but the master may
 * publish a worker's tasks or control, and no packet may exceed the size
 * bound: those publishes are refused by the broker (it says so in its log);
 * on an open Mosquitto they reach the worker, which drops them.
 */
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
  type ErrorTrap,
  type LogTap,
  runTask,
  sendOnce,
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

/** A worker with a credential of its own, sending garbage on its own topics. */
const GARBLER = 'garbler-1';

interface Listener {
  topic: string;
  /** The log `source` of the process that must log the drop. */
  source: string;
  /** Who sends: a worker id (logged in as itself), or undefined for an anonymous client. */
  sender?: string;
  /** Only the master may publish here: the embedded broker refuses anyone else. */
  masterOnly: boolean;
}

const LISTENERS: Record<string, Listener> = {
  'worker status (master)': {
    topic: topics.status(GARBLER),
    source: 'master',
    sender: GARBLER,
    masterOnly: false,
  },
  'worker heartbeat (master)': {
    topic: topics.heartbeat(GARBLER),
    source: 'master',
    sender: GARBLER,
    masterOnly: false,
  },
  'worker tasks (worker)': { topic: topics.tasks(WORKER), source: WORKER, masterOnly: true },
  'worker control (worker)': { topic: topics.control(WORKER), source: WORKER, masterOnly: true },
};

const dropped = (l: Pick<Listener, 'topic' | 'source'>, reason: RegExp) => (line: TappedLine) =>
  line.source === l.source &&
  line.topic === l.topic &&
  /dropped|ignored/.test(line.msg) &&
  reason.test(line.msg);

/** The embedded broker's log lines for what it refuses. */
const refusedPublish = (topic: string) => (line: TappedLine) =>
  line.source === 'master' && line.msg === 'mqtt publish refused' && line.topic === topic;
const cutOversized = (line: TappedLine) =>
  line.source === 'master' && /packet over MQTT_MAX_PACKET_BYTES/.test(line.msg);

function describeBadMqttInput(
  label: string,
  embedded: boolean,
  openBroker: () => Promise<{ url?: string; stop(): Promise<void> }>,
) {
  describe(`bad MQTT input on ${label}`, () => {
    let trap: ErrorTrap;
    let redis: RedisServer;
    let broker: { url?: string; stop(): Promise<void> };
    let master: MasterHandle;
    let worker: WorkerHandle;
    let logs: LogTap;

    const workers = async () =>
      (await api<{ workers: WorkerView[] }>(master, '/api/workers')).body.workers;
    /** Resolves with the first line matching that was not in the log when called. */
    const nextLine = (match: (line: TappedLine) => boolean, what: string) => {
      const before = logs.lines.filter(match).length;
      return waitFor(() => logs.lines.filter(match)[before], { what: `log line: ${what}` });
    };

    beforeAll(async () => {
      trap = trapProcessErrors();
      [redis, broker] = await Promise.all([startRedis(), openBroker()]);
      master = await startTestMaster({ queueUrl: redis.url, mqttUrl: broker.url });
      logs = await tapLogs(master.mqttUrl);
      worker = await startTestWorker(master, { WORKER_ID: WORKER, ECHO_DELAY_MS: '1' });
      const online = async () =>
        (await workers()).some((w) => w.id === WORKER && w.state === 'online');
      await waitFor(online, { what: 'worker online' });
      // The worker's log lines reach the tap only once its link is up.
      await logs.waitForLine((l) => l.source === WORKER, 'first worker log line');
    });

    afterAll(async () => {
      await worker?.close();
      await logs?.close();
      await master?.close();
      await Promise.all([redis?.stop(), broker?.stop()]);
      trap?.dispose();
    });

    for (const [where, listener] of Object.entries(LISTENERS)) {
      for (const [kind, payload] of Object.entries(GARBAGE) as Array<[GarbageKind, Buffer]>) {
        const oversized = kind === 'a payload over 2 MB';
        if (embedded && oversized) {
          it(`cuts ${kind} on ${where} at the broker, before it is read`, async () => {
            const cut = nextLine(cutOversized, `oversized packet on ${listener.topic}`);
            expect(await sendOnce(master, listener.topic, payload, listener.sender)).toBe('cut');
            expect((await cut).bytes).toBeGreaterThan(OVERSIZED.length);
          });
          continue;
        }
        if (embedded && listener.masterOnly) {
          it(`refuses ${kind} on ${where} from anyone but the master`, async () => {
            for (const sender of [undefined, GARBLER]) {
              const refused = nextLine(
                refusedPublish(listener.topic),
                `refusal on ${listener.topic}`,
              );
              expect(await sendOnce(master, listener.topic, payload, sender)).toBe('cut');
              await refused;
            }
          });
          continue;
        }
        it(`drops ${kind} on ${where} with a logged reason`, async () => {
          const seen = nextLine(dropped(listener, REASON[kind]), `${kind} on ${listener.topic}`);
          expect(await sendOnce(master, listener.topic, payload, listener.sender)).toBe('accepted');
          const line = await seen;
          expect(line).toMatchObject({ topic: listener.topic, source: listener.source });
          if (oversized) {
            expect(line).toMatchObject({ bytes: OVERSIZED.length });
            expect(line.msg).toContain(String(OVERSIZED.length));
          }
          if (kind === 'JSON of the wrong shape') expect(line.reason).toEqual(expect.any(String));
        });
      }
    }

    it('takes garbage on the log topic without harm (no flota process reads it)', async () => {
      const topic = topics.log(GARBLER);
      for (const payload of Object.values(GARBAGE)) await sendOnce(master, topic, payload, GARBLER);
      expect((await runTask(master, 'after log garbage')).state).toBe('completed');
    });

    it("drops a status on workers/B/status that claims another worker's id", async () => {
      const topic = topics.status('impostor-b');
      const l = { topic, source: 'master' };
      const first = nextLine(dropped(l, /id does not match/), 'offline claim dropped');
      await sendOnce(
        master,
        topic,
        json({ state: 'offline', id: WORKER, reason: 'shutdown' }),
        'impostor-b',
      );
      await first;
      const second = nextLine(dropped(l, /id does not match/), 'online claim dropped');
      await sendOnce(
        master,
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
        'impostor-b',
      );
      await second;
      const view = (await workers()).find((w) => w.id === WORKER);
      expect(view).toMatchObject({ state: 'online', kind: 'cpu', models: ['echo'] });
      expect((await workers()).map((w) => w.id)).not.toContain('impostor-b');
    });

    it("drops a heartbeat on workers/B/heartbeat that claims another worker's id", async () => {
      const topic = topics.heartbeat('impostor-b');
      const seen = nextLine(
        dropped({ topic, source: 'master' }, /id does not match/),
        'spoofed heartbeat',
      );
      await sendOnce(master, topic, heartbeatOf(WORKER), 'impostor-b');
      expect(await seen).toMatchObject({ claimed: WORKER });
    });

    it('drops a heartbeat for a worker it does not know, with a logged reason', async () => {
      const topic = topics.heartbeat('ghost-9');
      const seen = nextLine(
        dropped({ topic, source: 'master' }, /./),
        'heartbeat of an unknown worker',
      );
      await sendOnce(master, topic, heartbeatOf('ghost-9'), 'ghost-9');
      expect((await seen).level).toMatch(/debug|info|warn/);
      expect((await workers()).map((w) => w.id)).not.toContain('ghost-9');
    });

    const forged = json({
      taskId: 'any.echo.forged',
      attempt: 1,
      lease: 'forged-lease',
      model: 'echo',
      prompt: 'forged',
      deadline: Date.now() + 30_000,
      queuedAt: Date.now(),
    });
    if (embedded) {
      it('refuses a well-formed assignment from anyone but the master', async () => {
        const refused = nextLine(refusedPublish(topics.tasks(WORKER)), 'forged assignment refused');
        expect(await sendOnce(master, topics.tasks(WORKER), forged)).toBe('cut');
        await refused;
      });
    } else {
      it('lets the master refuse a well-formed assignment for a task it never gave out', async () => {
        await sendOnce(master, topics.tasks(WORKER), forged);
        const line = await logs.waitForLine(
          (l) =>
            l.source === WORKER &&
            l.msg === 'master rejected the result' &&
            (l as { taskId?: string }).taskId === 'any.echo.forged',
          'forged assignment refused by the master',
        );
        // Its lease names no worker the master made it for: refused before any store look-up.
        expect(line.reason).toBe('stale_lease');
      });
    }

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

describeBadMqttInput('the embedded aedes broker', true, async () => ({
  url: undefined,
  stop: async () => {},
}));

describeBadMqttInput('Mosquitto', false, async () => {
  const mosquitto = await startMosquitto();
  return { url: mosquitto.url, stop: () => mosquitto.stop() };
});
