/**
 * `flota workers drain|resume|config|cordon`, `flota fleet` and `flota
 * audit` as a terminal runs them, against a real master (Redis store, admin
 * token) and a real echo worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { AuditPage } from '../../../proto/src/schemas/audit.ts';
import type { FleetState, WorkerCommandResponse } from '../../../proto/src/schemas/fleet.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitOnline } from '../master/cache-support.ts';
import { startTestMaster, startTestWorker } from '../master/support.ts';
import { asJson, type Run, runFlotaAt } from './run-flota.ts';

const ADMIN = 'cli-admin-token-0123456789';

let redis: RedisServer;
let master: MasterHandle;
let worker: WorkerHandle;

const flota = (args: string[]): Promise<Run> =>
  runFlotaAt(master.httpUrl, args, { FLOTA_TOKEN: ADMIN });

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `ops:${ADMIN}:admin` },
  });
  worker = await startTestWorker(master, { WORKER_ID: 'cli-fleet-1', ECHO_DELAY_MS: '0' });
  await waitOnline(master, 'cli-fleet-1', { authorization: `Bearer ${ADMIN}` });
});

afterAll(async () => {
  await worker?.close();
  await master?.close();
  await redis?.stop();
});

describe('flota workers (fleet control)', () => {
  it('drains, reconfigures and resumes a worker, each acknowledged', async () => {
    const drained = asJson<WorkerCommandResponse>(
      await flota(['workers', 'drain', 'cli-fleet-1', '--json']),
    );
    expect(drained).toMatchObject({ command: 'drain', worker: { draining: true } });

    const human = await flota(['workers', 'config', 'cli-fleet-1', '--slots', '3']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^config cli-fleet-1: acknowledged .*\/3 slots/);

    const resumed = asJson<WorkerCommandResponse>(
      await flota(['workers', 'resume', 'cli-fleet-1', '--json']),
    );
    expect(resumed.worker).toMatchObject({ draining: false, slots: 3 });

    const bad = await flota(['workers', 'config', 'cli-fleet-1', '--slots', '0']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/slots/);
  });

  it('stops and resumes all dispatch, and shows the audit trail', async () => {
    const stopped = asJson<FleetState>(
      await flota(['fleet', 'stop', '--cancel-running', '--json']),
    );
    expect(stopped).toMatchObject({
      dispatch: 'stopped',
      stopped: { running: 'cancel', by: 'ops' },
    });
    const status = await flota(['fleet', 'status']);
    expect(status.stdout).toMatch(/^dispatch: stopped since /);
    expect(asJson<FleetState>(await flota(['fleet', 'resume', '--json'])).dispatch).toBe('running');

    const page = asJson<AuditPage>(await flota(['audit', '--action', 'fleet.stop', '--json']));
    expect(page.records[0]).toMatchObject({ actor: 'ops', action: 'fleet.stop', result: 'ok' });
    const table = await flota(['audit', '--limit', '3']);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('fleet.resume');
  });
});
