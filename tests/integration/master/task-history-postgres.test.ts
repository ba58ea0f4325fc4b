/**
 * The task history of a real master on PostgreSQL: tasks an echo worker ran
 * are listed, told in a timeline and summed in usage from the store's
 * tables, and a restarted master still reads them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EmbeddedPostgresServer,
  startEmbeddedPostgres,
} from '../../../master/src/store/embedded-postgres.ts';
import type { TaskPage, TaskTimeline, UsageReport } from '../../../proto/src/schemas/console.ts';
import { randomName } from '../../helpers/random-name.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

const ADMIN = 'pgh-admin-token-0123456789';
const ACME = 'pgh-acme-token-0123456789';
const as = (token: string) => ({ authorization: `Bearer ${token}` });

let dataDir: string;
let pg: EmbeddedPostgresServer;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'flota-history-pg-'));
  pg = await startEmbeddedPostgres({ dataDir, log: pino({ level: 'silent' }) });
});

afterAll(async () => {
  await pg?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('task history on PostgreSQL', () => {
  it('lists, tells and sums the tasks a worker ran, also after a master restart', async () => {
    const options = {
      queueUrl: pg.connectionString,
      env: {
        API_TOKENS: `ops:${ADMIN}:admin,acme:${ACME}`,
        QUEUE_NAMESPACE: randomName('h'),
      },
    };
    const first = await startTestMaster(options);
    const worker = await startTestWorker(first, { WORKER_ID: 'pgh-echo' });
    const ids: string[] = [];
    try {
      for (const [token, prompt] of [
        [ACME, 'first'],
        [ACME, 'second'],
        [ADMIN, 'third'],
      ] as const) {
        const { status, body } = await api<{ id: string }>(first, '/api/tasks', {
          body: { prompt, model: 'echo' },
          headers: as(token),
        });
        expect(status).toBe(202);
        ids.push(body.id);
      }
      await waitFor(
        async () => {
          const { body } = await api<TaskPage>(first, '/api/tasks?state=completed', {
            headers: as(ADMIN),
          });
          return body.tasks.length === 3;
        },
        { what: 'three completed tasks in the history', timeoutMs: 20_000 },
      );
    } finally {
      await worker.close();
      await first.close();
    }

    const second = await startTestMaster(options);
    try {
      const own = await api<TaskPage>(second, '/api/tasks', { headers: as(ACME) });
      expect(own.body.tasks.map((t) => t.prompt)).toEqual(['second', 'first']);
      const timeline = await api<TaskTimeline>(second, `/api/tasks/${ids[0]}/timeline`, {
        headers: as(ACME),
      });
      expect(timeline.body.events.map((e) => e.kind)).toEqual(['queued', 'assigned', 'completed']);
      const usage = await api<UsageReport>(second, '/api/usage?groupBy=tenant,worker', {
        headers: as(ADMIN),
      });
      expect(usage.body.rows.map((r) => [r.tenant, r.workerId, r.completed])).toEqual([
        ['acme', 'pgh-echo', 2],
        ['ops', 'pgh-echo', 1],
      ]);
    } finally {
      await second.close();
    }
  });
});
