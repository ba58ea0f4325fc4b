/** The conformance kit's pure parts: which checks `--checks` picks, the table, the worker's environment. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CheckResult } from '../../../cli/conformance/check.ts';
import { conformanceOptionsSchema } from '../../../cli/conformance/options.ts';
import {
  CHECKS,
  formatTable,
  selectChecks,
  UnknownCheckError,
} from '../../../cli/conformance/runner.ts';
import { workerEnv } from '../../../cli/conformance/worker-env.ts';

describe('selectChecks', () => {
  it('runs every check, in order, when none is named', () => {
    expect(selectChecks(undefined)).toEqual(CHECKS);
  });

  it('takes ids and groups, keeping the run order', () => {
    const ids = selectChecks(['tasks', 'registration.heartbeat']).map((c) => c.id);
    expect(ids).toEqual([
      'registration.heartbeat',
      'tasks.result',
      'tasks.stream-order',
      'tasks.slots',
    ]);
  });

  it('runs the recovery checks after the others but before the ones that stop the worker', () => {
    const ids = CHECKS.map((c) => c.id);
    expect(selectChecks(['recovery', 'control']).map((c) => c.id)).toEqual([
      'control.config',
      'recovery.result-resend',
      'recovery.broker-restart',
      'recovery.master-restart',
    ]);
    expect(ids.slice(-2)).toEqual(['registration.last-will', 'shutdown.sigterm']);
  });

  it('refuses a name that is no check and no group, listing the checks', () => {
    expect(() => selectChecks(['task'])).toThrow(UnknownCheckError);
    expect(() => selectChecks(['registration.heart'])).toThrow(/the checks are registration\./);
  });

  it('lists every check in PROTOCOL.md § Conformance, in the order they run', () => {
    const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('\n## Conformance'));
    const rows = [...section.matchAll(/^\| `([a-z-]+\.[a-z-]+)` +\|/gm)].map((m) => m[1]);
    expect(rows).toEqual(CHECKS.map((c) => c.id));
  });

  it('cites a section of PROTOCOL.md for every check', () => {
    expect(new Set(CHECKS.map((c) => c.id)).size).toBe(CHECKS.length);
    for (const check of CHECKS) expect(check.section.length).toBeGreaterThan(0);
  });
});

describe('formatTable', () => {
  it('prints one line per check, the reason under a failure or a skip, and the counts', () => {
    const results: CheckResult[] = [
      { id: 'a.one', title: 'does one', outcome: 'passed', citation: 'PROTOCOL.md § A', ms: 120 },
      {
        id: 'b.two',
        title: 'does two',
        outcome: 'failed',
        citation: 'PROTOCOL.md § B',
        detail: 'it did not (PROTOCOL.md § B)',
        ms: 3_000,
      },
      {
        id: 'c.three',
        title: 'does three',
        outcome: 'skipped',
        citation: 'PROTOCOL.md § C',
        detail: 'n/a',
        ms: 0,
      },
    ];
    const lines = formatTable(results).split('\n');
    expect(lines[1]).toMatch(/^a\.one\s+pass\s+0\.1s\s+does one$/);
    expect(lines[2]).toMatch(/^b\.two\s+FAIL\s+3\.0s\s+does two$/);
    expect(lines[3]).toMatch(/└ it did not \(PROTOCOL\.md § B\)$/);
    expect(lines[4]).toMatch(/^c\.three\s+skip/);
    expect(lines.at(-1)).toBe('1 passed, 1 failed, 1 skipped');
  });
});

describe('workerEnv', () => {
  it("keeps the caller's environment but none of its worker settings, then adds the kit's", () => {
    const env = workerEnv(
      { PATH: '/bin', HOME: '/h', WORKER_JOIN_TOKEN: 'fjt1.x', MQTT_USERNAME: 'u', SLOTS: '9' },
      { SLOTS: '2', WORKER_ID: 'w' },
    );
    expect(env).toEqual({ PATH: '/bin', HOME: '/h', SLOTS: '2', WORKER_ID: 'w' });
  });
});

describe('conformanceOptionsSchema', () => {
  it('needs a command and at least 2 slots', () => {
    expect(conformanceOptionsSchema.safeParse({ command: [] }).success).toBe(false);
    expect(conformanceOptionsSchema.safeParse({ command: ['w'], slots: '1' }).success).toBe(false);
    expect(conformanceOptionsSchema.parse({ command: ['w'] })).toMatchObject({
      workerId: 'conformance-1',
      slots: 2,
      heartbeatMs: 300,
    });
  });
});
