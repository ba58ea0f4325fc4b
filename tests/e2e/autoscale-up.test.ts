/**
 * `npm start --autoscale` as processes: npm hands the flag over as
 * npm_config_autoscale, exactly as set here. One local worker to begin with;
 * a backlog grows the pool to AUTOSCALE_MAX with real `flota worker`
 * processes; every task completes, also on the new workers; idle, the pool
 * drains back to AUTOSCALE_MIN; the autoscaler's /status and /metrics tell
 * the story; Ctrl-C leaves no process behind.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoscalerStatusSchema } from '../../proto/src/schemas/autoscaler.ts';
import { freePort } from '../helpers/free-port.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { getJson, listWorkers, submitTask, waitForCompleted } from './support/api.ts';
import { SHOW_LOGS } from './support/config.ts';
import { dumpOutput, type FlotaProcess } from './support/flota-process.ts';
import { leftoverProcesses } from './support/proc-scan.ts';
import { startUp, type UpSystem } from './support/system.ts';

const TASKS = 36;
let dataDir: string;
let system: UpSystem | undefined;
let statusUrl: string;
let failed = false;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'flota-e2e-autoscale-'));
  const autoscalePort = await freePort();
  statusUrl = `http://127.0.0.1:${autoscalePort}`;
  system = await startUp(
    dataDir,
    {
      npm_config_autoscale: 'true',
      WORKERS: '1',
      ECHO_DELAY_MS: '300',
      AUTOSCALE_MIN: '1',
      AUTOSCALE_MAX: '3',
      AUTOSCALE_STEP_UP: '2',
      AUTOSCALE_INTERVAL_MS: '250',
      AUTOSCALE_COOLDOWN_UP_MS: '500',
      AUTOSCALE_COOLDOWN_DOWN_MS: '1500',
      AUTOSCALE_PORT: String(autoscalePort),
      // The test polls the API every 25 ms from loopback, as does the autoscaler every 250 ms:
      // on a slow run that passes the default 600 requests a minute per address.
      RATE_LIMIT_RPM: '0',
    },
    { workers: ['local-1'] },
  );
});

afterAll(async () => {
  const up: FlotaProcess | undefined = system?.up;
  if (up && (failed || SHOW_LOGS)) dumpOutput([up]);
  await up?.stop('SIGINT');
  await rm(dataDir, { recursive: true, force: true });
});

const online = async () =>
  (await listWorkers(system!.baseUrl))
    .filter((w) => w.state === 'online')
    .map((w) => w.id)
    .sort();

describe('npm start --autoscale', () => {
  it('grows under a backlog, serves on every new worker, then drains back to the minimum', async () => {
    try {
      expect(await online()).toEqual(['local-1']);
      const ids = await Promise.all(
        Array.from({ length: TASKS }, (_, i) => submitTask(system!.baseUrl, `task ${i}`)),
      );
      await waitFor(async () => (await online()).length === 3, {
        timeoutMs: 30_000,
        what: 'the pool to grow to 3 workers',
      });
      expect(await online()).toEqual(['local-1', 'local-2', 'local-3']);

      const views = await Promise.all(
        ids.map((id) => waitForCompleted(system!.baseUrl, id, { timeoutMs: 60_000 })),
      );
      const servedBy = new Set(views.map((v) => v.workerId));
      expect(servedBy).toContain('local-3');

      const metrics = await fetch(`${statusUrl}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(
        /flota_autoscaler_decisions_total\{pool="local",action="up",reason="backlog"\} [1-9]/,
      );

      await waitFor(async () => (await online()).length === 1, {
        timeoutMs: 30_000,
        what: 'the idle pool to drain back to 1 worker',
      });
      const { body } = await getJson(`${statusUrl}/status`);
      const pool = autoscalerStatusSchema.parse(body).pools[0];
      expect(pool?.decision).toMatchObject({ replicas: 1 });
      const after = await fetch(`${statusUrl}/metrics`).then((r) => r.text());
      expect(after).toMatch(
        /flota_autoscaler_decisions_total\{pool="local",action="down",reason="idle"\} 2/,
      );
      expect(after).toContain('flota_autoscaler_replicas{pool="local"} 1');
    } catch (err) {
      failed = true;
      throw err;
    }
  });

  it('Ctrl-C stops the autoscaler, its workers and the master, and leaves nothing', async () => {
    const up = system!.up;
    up.signalGroup('SIGINT');
    await waitFor(() => up.hasExited(), { timeoutMs: 30_000, what: 'flota up to exit' });
    await expect(up.exited).resolves.toEqual({ code: 0, signal: null });
    expect(await leftoverProcesses(dataDir)).toEqual([]);
  });
});
