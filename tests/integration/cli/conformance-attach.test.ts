/**
 * `flota conformance --attach` as a terminal runs it: the kit prints (and
 * writes with --write-env) the environment, the reference worker is started
 * by hand with it as a separate process, and every check that needs nothing
 * but the wire passes. Without --pid the checks that signal the worker are
 * skipped, saying why; with --pid the ones that signal it without starting
 * it again pass. Either way the run exits 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NEEDS_COMMAND, NEEDS_RESTART } from '../../../cli/conformance/attach.ts';
import { NEEDS_PROCESS } from '../../../cli/conformance/attached-worker.ts';
import type { ConformanceReport } from '../../../cli/conformance/run.ts';
import { CHECKS } from '../../../cli/conformance/runner.ts';
import { workerEnv } from '../../../cli/conformance/worker-env.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import type { Run } from './run-flota.ts';

const FLOTA_BIN = fileURLToPath(new URL('../../../bin/flota.mjs', import.meta.url));

/** Why each check that needs more than the wire is skipped for a worker attached without --pid. */
const SKIPPED_WITHOUT_PID: Record<string, string> = {
  'registration.login': NEEDS_COMMAND,
  'failures.lease-revoked': NEEDS_PROCESS,
  'continuation.continue-from': NEEDS_RESTART,
  'registration.last-will': NEEDS_RESTART,
  'shutdown.sigterm': NEEDS_PROCESS,
};

let redis: RedisServer;
let dir = '';
const started: ChildProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

afterEach(async () => {
  await Promise.all(started.splice(0).map(stop));
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = '';
});

/** SIGTERM, SIGKILL after 5 s; resolves once it has exited. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** `node bin/flota.mjs conformance --attach …`, with what it printed once it exited. */
function startKit(args: string[]): Promise<Run> {
  const child = spawn(
    process.execPath,
    [FLOTA_BIN, 'conformance', '--attach', '--json', '--queue-url', redis.url, ...args],
    { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  started.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Resolves once `path` exists (the kit renames it into place whole); rejects after `ms`. */
function fileAppears(path: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const watcher = watch(dirname(path));
    const done = (err?: Error) => {
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve();
    };
    const look = () =>
      stat(path).then(
        () => done(),
        () => undefined,
      );
    const timer = setTimeout(() => done(new Error(`${path} did not appear within ${ms} ms`)), ms);
    watcher.on('change', look);
    void look();
  });
}

/** `KEY=value` lines, as the kit writes them. */
async function readEnvFile(path: string): Promise<Record<string, string>> {
  const text = await readFile(path, 'utf8');
  return Object.fromEntries(
    text
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

const outcomes = (report: ConformanceReport) =>
  Object.fromEntries(report.checks.map((c) => [c.id, c]));

/**
 * The checks of the first run: wire checks that pass attached (the restarts of
 * the kit's broker and master among them, which an attached worker must ride
 * out) and every process-bound one. The spawned runs prove the rest of the
 * wire checks; what attaching changes is the start, the wait and the skips.
 */
const ATTACHED_RUN = new Set([
  'registration.online-status',
  'tasks.result',
  'failures.cancel',
  'recovery.broker-restart',
  'recovery.master-restart',
  ...Object.keys(SKIPPED_WITHOUT_PID),
]);

describe('flota conformance --attach', () => {
  it('runs the wire checks against a worker started by hand, skipping the process-bound ones', {
    timeout: 180_000,
  }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'flota-attach-'));
    const envFile = join(dir, 'worker.env');
    const kit = startKit(['--write-env', envFile, '--checks', [...ATTACHED_RUN].join(',')]);
    await fileAppears(envFile, 60_000);
    expect((await stat(envFile)).mode & 0o777).toBe(0o600);
    const settings = await readEnvFile(envFile);
    expect(settings).toMatchObject({ WORKER_ID: 'conformance-1', PROVIDER: 'echo', SLOTS: '2' });
    expect(settings.MQTT_URL).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    expect(settings.MASTER_GRPC).toMatch(/^127\.0\.0\.1:\d+$/);
    started.push(
      spawn(process.execPath, [FLOTA_BIN, 'worker'], {
        env: workerEnv(process.env, settings),
        stdio: 'ignore',
      }),
    );

    const run = await kit;
    const report = JSON.parse(run.stdout) as ConformanceReport;
    const selected = CHECKS.filter((c) => ATTACHED_RUN.has(c.id));
    expect(report.checks.map((c) => c.id)).toEqual(selected.map((c) => c.id));
    const byId = outcomes(report);
    for (const check of selected) {
      const why = SKIPPED_WITHOUT_PID[check.id];
      if (why) expect(byId[check.id]).toMatchObject({ outcome: 'skipped', detail: why });
      else expect(byId[check.id]).toMatchObject({ outcome: 'passed' });
    }
    expect(NEEDS_PROCESS).toBe(
      "needs the worker's process: run it as a command (flota conformance -- <command>) or give --pid",
    );
    expect(run.stderr).toContain(`WORKER_TOKEN=${settings.WORKER_TOKEN}`);
    expect(run.stderr).toMatch(/^skipped: registration\.login \(/m);
    expect(report.ok).toBe(true);
    expect(run.code).toBe(0);
    // The credential in it died with the run.
    await expect(stat(envFile)).rejects.toThrow();
  });

  it('with --pid, signals that process: the lease and SIGTERM checks pass', {
    timeout: 120_000,
  }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'flota-attach-'));
    const envFile = join(dir, 'worker.env');
    // Its pid is known before the kit starts: it waits for the file, then becomes the worker.
    const worker = spawn(
      '/bin/sh',
      [
        '-c',
        'while [ ! -s "$1" ]; do sleep 0.1; done; set -a; . "$1"; exec "$2" "$3" worker',
        'sh',
        envFile,
        process.execPath,
        FLOTA_BIN,
      ],
      { env: workerEnv(process.env, {}), stdio: 'ignore' },
    );
    started.push(worker);
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    const run = await startKit([
      '--write-env',
      envFile,
      '--pid',
      String(worker.pid),
      '--checks',
      'registration.login,failures.lease-revoked,continuation,registration.last-will,shutdown',
    ]);
    const byId = outcomes(JSON.parse(run.stdout) as ConformanceReport);
    expect(byId['failures.lease-revoked']).toMatchObject({ outcome: 'passed' });
    expect(byId['shutdown.sigterm']).toMatchObject({ outcome: 'passed' });
    expect(byId['registration.login']).toMatchObject({ outcome: 'skipped', detail: NEEDS_COMMAND });
    expect(byId['continuation.continue-from']).toMatchObject({
      outcome: 'skipped',
      detail: NEEDS_RESTART,
    });
    expect(byId['registration.last-will']).toMatchObject({
      outcome: 'skipped',
      detail: NEEDS_RESTART,
    });
    expect(run.code).toBe(0);
    // shutdown.sigterm stopped it.
    const timer = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms, 'running'));
    expect(await Promise.race([exited.then(() => 'exited'), timer(5_000)])).toBe('exited');
  });

  it('fails with a clear message when the worker never comes online', {
    timeout: 60_000,
  }, async () => {
    const run = await startKit(['--attach-timeout-s', '2', '--checks', 'tasks.result']);
    const report = JSON.parse(run.stdout) as ConformanceReport;
    expect(report.error).toMatch(/never came online .*within 2 s/);
    expect(run.stderr).toMatch(/^WORKER_ID=conformance-1$/m);
    expect(run.code).toBe(1);
  });
});
