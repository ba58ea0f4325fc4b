/**
 * `flota tasks` and `flota usage` as a terminal runs them, against a real
 * master (Redis store) with an echo worker: the history newest first,
 * filtered and searched, usage summed per group, a user's token seeing its
 * own tenant only, and bad options refused before any request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { TaskPage, UsageReport } from '../../../proto/src/schemas/console.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { waitOnline } from '../master/cache-support.ts';
import { api, startTestMaster, startTestWorker } from '../master/support.ts';
import { asJson, type Run, runFlotaAt } from './run-flota.ts';

const ADMIN = 'cli-history-admin-0123456789';
const USER = 'cli-history-user-0123456789';

let redis: RedisServer;
let master: MasterHandle;
let worker: WorkerHandle;

const flota = (args: string[], token = ADMIN): Promise<Run> =>
  runFlotaAt(master.httpUrl, args, { FLOTA_TOKEN: token });

async function submit(prompt: string, token: string): Promise<string> {
  const { status, body } = await api<{ id: string }>(master, '/api/tasks', {
    body: { prompt, model: 'echo', cache: false },
    headers: { authorization: `Bearer ${token}` },
  });
  expect(status).toBe(202);
  return body.id;
}

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `ops:${ADMIN}:admin,acme:${USER}` },
  });
  worker = await startTestWorker(master, { WORKER_ID: 'cli-history-1', ECHO_DELAY_MS: '0' });
  await waitOnline(master, 'cli-history-1', { authorization: `Bearer ${ADMIN}` });
  await submit('a question about quorum', ADMIN);
  await submit('a question about leases', ADMIN);
  await submit('acme asks about fencing', USER);
  // The history is written within about a second of each change.
  await waitFor(
    async () => {
      const page = asJson<TaskPage>(await flota(['tasks', '--state', 'completed', '--json']));
      return page.tasks.length === 3 || undefined;
    },
    { what: 'three completed tasks in the history', timeoutMs: 20_000 },
  );
});

afterAll(async () => {
  await worker?.close();
  await master?.close();
  await redis?.stop();
});

describe('flota tasks', () => {
  it('lists the history newest first, searches it, and pages it', async () => {
    const all = asJson<TaskPage>(await flota(['tasks', '--json']));
    expect(all.tasks.map((t) => t.prompt)).toEqual([
      'acme asks about fencing',
      'a question about leases',
      'a question about quorum',
    ]);
    const found = asJson<TaskPage>(await flota(['tasks', '--search', 'LEASES', '--json']));
    expect(found.tasks.map((t) => t.prompt)).toEqual(['a question about leases']);

    const first = await flota(['tasks', '--limit', '1']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('acme asks about fencing');
    expect(first.stdout).toContain('completed');
    const cursor = /more: --cursor (\S+)/.exec(first.stdout)?.[1];
    expect(cursor).toBeDefined();
    const next = asJson<TaskPage>(
      await flota(['tasks', '--limit', '1', '--cursor', cursor as string, '--json']),
    );
    expect(next.tasks.map((t) => t.prompt)).toEqual(['a question about leases']);
  });

  it("shows a user's token its own tenant's tasks only", async () => {
    const mine = asJson<TaskPage>(await flota(['tasks', '--tenant', 'ops', '--json'], USER));
    expect(mine.tasks.map((t) => t.tenant)).toEqual(['acme']);
  });

  it('refuses a bad option before asking the master', async () => {
    const bad = await flota(['tasks', '--state', 'lost']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/state/);
  });
});

describe('flota usage', () => {
  it('sums the finished tasks per tenant and model', async () => {
    const report = asJson<UsageReport>(
      await flota(['usage', '--group-by', 'tenant,model', '--json']),
    );
    expect(report.groupBy).toEqual(['tenant', 'model']);
    const byTenant = Object.fromEntries(report.rows.map((r) => [r.tenant, r]));
    expect(byTenant.ops).toMatchObject({ model: 'echo', requests: 2, completed: 2 });
    expect(byTenant.acme).toMatchObject({ model: 'echo', requests: 1, completed: 1 });
    expect(byTenant.ops?.outputTokens).toBeGreaterThan(0);

    const human = await flota(['usage']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^usage from \d{4}-/);
    expect(human.stdout).toContain('tokens out');

    const mine = asJson<UsageReport>(await flota(['usage', '--json'], USER));
    expect(mine.rows.map((r) => r.tenant)).toEqual(['acme']);

    const bad = await flota(['usage', '--group-by', 'planet']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/groupBy: planet/);
  });
});
