/**
 * `flota doctor` as a terminal runs it (`node bin/flota.mjs doctor`): against
 * a real master (Redis store, embedded broker, API tokens) with a real
 * worker, every check passes; with a Mosquitto of our own on MQTT_PORT and
 * no master, the MQTT_PORT line names the broker and both ways out.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult } from '../../../cli/doctor/result.ts';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { freePort } from '../../helpers/free-port.ts';
import { type MosquittoServer, startMosquitto } from '../../helpers/mosquitto-server.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitOnline } from '../master/cache-support.ts';
import { startTestMaster, startTestWorker } from '../master/support.ts';
import { type Run, runFlota } from './run-flota.ts';

const TOKEN = 'doctor-admin-token-0123456789';
const API_TOKENS = `ops:${TOKEN}:admin`;

/** Runs `flota doctor` with only the environment given (nothing from the caller's shell but PATH). */
function doctor(args: string[], env: Record<string, string>): Promise<Run> {
  return runFlota(['doctor', ...args], {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    ...env,
  });
}

const portOf = (url: string) => new URL(url).port;

let redis: RedisServer;
let dataDir: string;

beforeAll(async () => {
  redis = await startRedis();
  dataDir = await mkdtemp(join(tmpdir(), 'flota-doctor-'));
});

afterAll(async () => {
  await redis?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('against a running master with a worker', () => {
  let master: MasterHandle;
  let worker: WorkerHandle;
  let env: Record<string, string>;

  beforeAll(async () => {
    master = await startTestMaster({ queueUrl: redis.url, dataDir, env: { API_TOKENS } });
    worker = await startTestWorker(master, { WORKER_ID: 'doctor-w1', ECHO_DELAY_MS: '0' });
    await waitOnline(master, 'doctor-w1', { authorization: `Bearer ${TOKEN}` });
    // The environment the master was started with, its ports now known.
    env = {
      HOST: '127.0.0.1',
      PORT: portOf(master.httpUrl),
      GRPC_PORT: String(master.grpcPort),
      MQTT_PORT: portOf(master.mqttUrl),
      QUEUE_URL: redis.url,
      FLOTA_DATA_DIR: dataDir,
      API_TOKENS,
    };
  });

  afterAll(async () => {
    await worker?.close();
    await master?.close();
  });

  it('passes every check and exits 0', async () => {
    const run = await doctor([], env);
    expect(run.stderr).toBe('');
    const lines = run.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('✗'))).toEqual([]);
    expect(lines).toEqual(
      expect.arrayContaining([
        `✓ flota master running at ${master.httpUrl}`,
        `✓ PORT ${env.PORT} in use by the running flota master`,
        `✓ GRPC_PORT ${env.GRPC_PORT} in use by the running flota master`,
        `✓ MQTT_PORT ${env.MQTT_PORT} in use by the running flota master`,
        `✓ Redis at ${redis.url} answers`,
        `✓ gRPC on 127.0.0.1:${env.GRPC_PORT} SERVING`,
        '✓ 1 worker online',
        '✓ HOST=127.0.0.1: local only',
      ]),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^✓ clock agrees with Redis/));
    expect(lines.at(-1)).toMatch(/^all \d+ checks passed$/);
    expect(run.code).toBe(0);
  });

  it('--json prints one {check, ok, detail, fix} record per check', async () => {
    const run = await doctor(['--json'], env);
    expect(run.code).toBe(0);
    const results = JSON.parse(run.stdout) as CheckResult[];
    expect(results.map((r) => r.check)).toEqual(
      expect.arrayContaining([
        'node',
        'config',
        'port:MQTT_PORT',
        'store',
        'grpc',
        'workers',
        'clock',
      ]),
    );
    for (const result of results) {
      expect(result).toEqual({
        check: expect.any(String),
        ok: true,
        detail: expect.any(String),
        fix: null,
      });
    }
  });

  it('without the API token, says to pass one and exits 1', async () => {
    const { API_TOKENS: _tokens, ...withoutTokens } = env;
    const run = await doctor([], withoutTokens);
    expect(run.stdout).toContain(
      '✗ workers: cannot list them — the master asks for an API token. Pass --token or set FLOTA_TOKEN',
    );
    expect(run.code).toBe(1);
    const given = await doctor(['--token', TOKEN], withoutTokens);
    expect(given.stdout).toContain('✓ 1 worker online');
    expect(given.code).toBe(0);
  });
});

describe('with an MQTT broker on MQTT_PORT and no master', () => {
  let mosquitto: MosquittoServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    mosquitto = await startMosquitto();
    env = {
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      GRPC_PORT: String(await freePort()),
      MQTT_PORT: String(mosquitto.port),
      QUEUE_URL: redis.url,
      FLOTA_DATA_DIR: dataDir,
    };
  });

  afterAll(() => mosquitto?.stop());

  it('names the broker and both fixes on one line, and exits 1', async () => {
    const run = await doctor([], env);
    const port = mosquitto.port;
    const failed = run.stdout.split('\n').filter((l) => l.startsWith('✗'));
    expect(failed).toEqual([
      expect.stringMatching(
        new RegExp(
          `^✗ MQTT_PORT ${port} is taken on 127\\.0\\.0\\.1 — an MQTT broker answers on ${port}\\. ` +
            `Set MQTT_PORT=\\d+ to move the embedded broker, or MQTT_URL=mqtt://127\\.0\\.0\\.1:${port} to use it$`,
        ),
      ),
    ]);
    expect(run.stdout).toContain(`✓ no flota master running at http://127.0.0.1:${env.PORT}`);
    expect(run.stdout).not.toMatch(/\n\s+at /);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(1);
  });

  it('--json parses and marks MQTT_PORT failed with its fix', async () => {
    const run = await doctor(['--json'], env);
    expect(run.code).toBe(1);
    const results = JSON.parse(run.stdout) as CheckResult[];
    expect(results.find((r) => r.check === 'port:MQTT_PORT')).toMatchObject({
      ok: false,
      detail: `MQTT_PORT ${mosquitto.port} is taken on 127.0.0.1 — an MQTT broker answers on ${mosquitto.port}`,
      fix: expect.stringContaining(`MQTT_URL=mqtt://127.0.0.1:${mosquitto.port}`),
    });
  });
});
