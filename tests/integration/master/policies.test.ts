/**
 * Dispatch policies end to end: a real master (embedded aedes, Redis store),
 * real echo workers over MQTT and gRPC, tasks over REST. Each policy must
 * produce the shares it promises, counted from GET /api/tasks/:id.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

interface Fleet {
  master: MasterHandle;
  workers: WorkerHandle[];
}

async function startFleet(
  redis: RedisServer,
  policy: string,
  workers: Record<string, Record<string, string>>,
): Promise<Fleet> {
  const master = await startTestMaster({ queueUrl: redis.url, env: { DISPATCH_POLICY: policy } });
  const fleet: Fleet = { master, workers: [] };
  for (const [id, env] of Object.entries(workers))
    fleet.workers.push(await startTestWorker(master, { WORKER_ID: id, ...env }));
  await waitFor(
    async () => {
      const { body } = await api<{ workers: WorkerView[] }>(master, '/api/workers');
      return body.workers.filter((w) => w.state === 'online').length === fleet.workers.length;
    },
    { what: 'every worker online' },
  );
  return fleet;
}

async function stopFleet(fleet: Fleet | undefined): Promise<void> {
  if (!fleet) return;
  await Promise.all(fleet.workers.map((w) => w.close()));
  await fleet.master.close();
}

/** Submits one task and waits for its outcome. */
async function runTask(master: MasterHandle, prompt: string): Promise<TaskView> {
  const { status, body } = await api<{ id: string }>(master, '/api/tasks', { body: { prompt } });
  expect(status).toBe(202);
  return waitFor(
    async () => {
      const { body: task } = await api<TaskView>(master, `/api/tasks/${body.id}`);
      return TERMINAL.has(task.state) ? task : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 5, what: `task ${body.id} to finish` },
  );
}

/**
 * Runs `total` tasks with at most `inFlight` outstanding (a steady client,
 * not a single burst) and counts the completions per worker.
 */
async function runLoad(
  master: MasterHandle,
  total: number,
  inFlight: number,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let next = 0;
  const client = async () => {
    while (next < total) {
      const n = next++;
      const task = await runTask(master, `task ${n}`);
      expect(task).toMatchObject({ state: 'completed', result: `echo: task ${n}` });
      counts[task.workerId!] = (counts[task.workerId!] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, client));
  return counts;
}

describe('dispatch policies on a real master', () => {
  let redis: RedisServer;
  let fleet: Fleet | undefined;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await stopFleet(fleet);
    fleet = undefined;
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('weighted-round-robin: WEIGHT=3 vs WEIGHT=1 share 200 tasks about 75/25', async () => {
    fleet = await startFleet(redis, 'weighted-round-robin', {
      heavy: { WEIGHT: '3', SLOTS: '16' },
      light: { WEIGHT: '1', SLOTS: '16' },
    });
    const counts = await runLoad(fleet.master, 200, 8);
    expect((counts.heavy ?? 0) + (counts.light ?? 0)).toBe(200);
    // 16 slots each and 8 in flight: nobody fills up, so the rotation alone decides (150/50).
    expect(counts.heavy! / 200).toBeGreaterThanOrEqual(0.7);
    expect(counts.heavy! / 200).toBeLessThanOrEqual(0.8);
  });

  it('latency-aware: a worker with a 40 ms echo delay gets few of 200 tasks', async () => {
    fleet = await startFleet(redis, 'latency-aware', {
      fast: { SLOTS: '4', ECHO_DELAY_MS: '0' },
      slow: { SLOTS: '4', ECHO_DELAY_MS: '40' },
    });
    // Never more than the fast worker's slots in flight, so it can take every task:
    // a latency-blind policy still sends the slow one about a quarter (least-
    // connections) to a half (round-robin). Latency-aware learns from the result
    // handler's observe() calls: one probe at the start, one per PROBE_EVERY picks.
    const counts = await runLoad(fleet.master, 200, 4);
    expect((counts.fast ?? 0) + (counts.slow ?? 0)).toBe(200);
    expect(counts.slow ?? 0).toBeGreaterThanOrEqual(1); // measured, not shunned blind
    expect((counts.slow ?? 0) / 200).toBeLessThanOrEqual(0.15);
  });
});
