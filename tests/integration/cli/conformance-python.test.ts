/**
 * The Python worker (workers/python) against `flota conformance`, as a
 * terminal runs it: every check of docs/PROTOCOL.md § Conformance passes.
 * It runs on Debian's python3 with python3-paho-mqtt, python3-grpcio,
 * python3-protobuf and python3-grpc-tools (docs/DEVELOPMENT.md).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConformanceReport } from '../../../cli/conformance/run.ts';
import { CHECKS } from '../../../cli/conformance/runner.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { runFlota } from './run-flota.ts';

const PYTHON_WORKER = fileURLToPath(new URL('../../../workers/python/worker.py', import.meta.url));

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

describe('flota conformance against the Python worker', () => {
  it('passes every check', { timeout: 120_000 }, async () => {
    const run = await runFlota(
      ['conformance', '--json', '--queue-url', redis.url, '--', '/usr/bin/python3', PYTHON_WORKER],
      { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    );
    const report = JSON.parse(run.stdout) as ConformanceReport;
    const notPassed = report.checks.filter((c) => c.outcome !== 'passed');
    expect(notPassed).toEqual([]);
    expect(report.checks.map((c) => c.id)).toEqual(CHECKS.map((c) => c.id));
    expect(report.ok).toBe(true);
    expect(run.code).toBe(0);
  });
});
