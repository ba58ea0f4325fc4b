/**
 * `flota conformance` as a terminal runs it: the reference worker
 * (`node bin/flota.mjs worker`) passes every check, and a worker that
 * breaks a rule (never heartbeats; sends chunk 1 before chunk 0; never
 * sends a result again nor answers a control) fails the check of that
 * rule, citing the section of docs/PROTOCOL.md it breaks, with a non-zero
 * exit.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConformanceReport } from '../../../cli/conformance/run.ts';
import { CHECKS } from '../../../cli/conformance/runner.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { runFlota } from './run-flota.ts';

const FLOTA_BIN = fileURLToPath(new URL('../../../bin/flota.mjs', import.meta.url));
const FAULTY_WORKER = fileURLToPath(new URL('../../helpers/faulty-worker.mjs', import.meta.url));

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

const conformance = async (args: string[], env: Record<string, string> = {}) => {
  const run = await runFlota(['conformance', '--json', '--queue-url', redis.url, ...args], {
    ...process.env,
    ...env,
  });
  return {
    code: run.code,
    report: JSON.parse(run.stdout) as ConformanceReport,
    stderr: run.stderr,
  };
};

describe('flota conformance', () => {
  it('passes the reference worker on every check', { timeout: 90_000 }, async () => {
    const { code, report } = await conformance(['--', process.execPath, FLOTA_BIN, 'worker']);
    const notPassed = report.checks.filter((c) => c.outcome !== 'passed');
    expect(notPassed).toEqual([]);
    expect(report.checks.map((c) => c.id)).toEqual(CHECKS.map((c) => c.id));
    expect(report.ok).toBe(true);
    expect(code).toBe(0);
  });

  it('fails a worker that never heartbeats, citing PROTOCOL.md, and exits non-zero', async () => {
    const { code, report } = await conformance(
      ['--checks', 'registration.online-status,registration.heartbeat', '--'].concat(
        process.execPath,
        FAULTY_WORKER,
      ),
      { FAULT: 'no-heartbeat' },
    );
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    const outcome = Object.fromEntries(report.checks.map((c) => [c.id, c]));
    expect(outcome['registration.online-status']?.outcome).toBe('passed');
    expect(outcome['registration.heartbeat']).toMatchObject({
      outcome: 'failed',
      citation: 'PROTOCOL.md § MQTT › workers/{id}/heartbeat',
    });
    expect(outcome['registration.heartbeat']?.detail).toMatch(
      /no heartbeat within \d+ ms .*\(PROTOCOL\.md § MQTT › workers\/\{id\}\/heartbeat\)$/,
    );
  });

  it('fails a worker that sends chunk 1 before chunk 0 on the stream check, not the result check', async () => {
    const { code, report } = await conformance(
      ['--checks', 'tasks.result,tasks.stream-order', '--'].concat(process.execPath, FAULTY_WORKER),
      { FAULT: 'chunks-out-of-order' },
    );
    expect(code).toBe(1);
    const failed = report.checks.filter((c) => c.outcome === 'failed');
    expect(failed.map((c) => c.id)).toEqual(['tasks.stream-order']);
    expect(failed[0]?.detail).toMatch(
      /^chunk seq went 1, 0, 2, .*\(PROTOCOL\.md § gRPC › Connect\)$/,
    );
  });

  it('fails a worker that never resends a result nor answers a config, on those checks', {
    timeout: 60_000,
  }, async () => {
    const { code, report } = await conformance(
      ['--checks', 'control.config,recovery.result-resend', '--'].concat(
        process.execPath,
        FAULTY_WORKER,
      ),
      { FAULT: 'no-resend' },
    );
    expect(code).toBe(1);
    const outcome = Object.fromEntries(report.checks.map((c) => [c.id, c]));
    expect(outcome['control.config']).toMatchObject({
      outcome: 'failed',
      citation: 'PROTOCOL.md § MQTT › workers/{id}/control',
    });
    expect(outcome['control.config']?.detail).toMatch(
      /^the master got no ack within 5 s: .*\(PROTOCOL\.md § MQTT › workers\/\{id\}\/control\)$/,
    );
    expect(outcome['recovery.result-resend']).toMatchObject({
      outcome: 'failed',
      citation: 'PROTOCOL.md § gRPC › Deadlines and retries',
    });
    expect(outcome['recovery.result-resend']?.detail).toMatch(
      /^the master answered its result store_unavailable, and it was not sent again within 5000 ms: send the same result again after a backoff \(PROTOCOL\.md § gRPC › Deadlines and retries\)$/,
    );
  });
});
