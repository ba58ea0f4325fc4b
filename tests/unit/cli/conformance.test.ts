/**
 * The conformance kit's pure parts: which checks `--checks` picks, the
 * table, the worker's environment, the options (a command or --attach), and
 * when an attached worker counts as running.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envLines } from '../../../cli/conformance/attach-env.ts';
import { AttachedWorker, NEEDS_PROCESS } from '../../../cli/conformance/attached-worker.ts';
import type { CheckResult } from '../../../cli/conformance/check.ts';
import { CheckSkipped } from '../../../cli/conformance/check-errors.ts';
import { conformanceOptionsSchema } from '../../../cli/conformance/options.ts';
import type { Probe } from '../../../cli/conformance/probe.ts';
import {
  CHECKS,
  formatSkipped,
  formatTable,
  selectChecks,
  UnknownCheckError,
} from '../../../cli/conformance/runner.ts';
import { kitWorkerSettings, workerEnv } from '../../../cli/conformance/worker-env.ts';

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

describe('conformanceOptionsSchema: a command or --attach', () => {
  const problems = (input: object) => {
    const parsed = conformanceOptionsSchema.safeParse(input);
    return parsed.success
      ? []
      : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('refuses neither a command nor --attach, naming both ways', () => {
    expect(problems({})).toEqual([
      'command: give the worker command after --, e.g. -- node bin/flota.mjs worker, or --attach to start the worker yourself',
    ]);
    expect(problems({ command: [], attach: false })).toHaveLength(1);
  });

  it('refuses a command and --attach together', () => {
    expect(problems({ command: ['w'], attach: true })).toEqual([
      '--attach: give either a worker command after -- (the kit starts it) or --attach (you start it), not both',
    ]);
  });

  it('refuses the attach flags without --attach, each by its name', () => {
    expect(
      problems({ command: ['w'], writeEnv: '/tmp/e', pid: '12', host: 'h', attachTimeoutS: '5' }),
    ).toEqual([
      '--write-env: only with --attach',
      '--attach-timeout-s: only with --attach',
      '--pid: only with --attach',
      '--host: only with --attach',
    ]);
  });

  it('fills the attach defaults once, and none in command mode', () => {
    expect(conformanceOptionsSchema.parse({ attach: true })).toMatchObject({
      command: [],
      attach: { timeoutS: 300, host: '127.0.0.1' },
    });
    expect(conformanceOptionsSchema.parse({ attach: true }).attach).not.toHaveProperty('pid');
    expect(
      conformanceOptionsSchema.parse({
        attach: true,
        writeEnv: 'w.env',
        attachTimeoutS: '30',
        pid: '4242',
        host: '10.0.0.5',
      }).attach,
    ).toEqual({ writeEnv: 'w.env', timeoutS: 30, pid: 4242, host: '10.0.0.5' });
    expect(conformanceOptionsSchema.parse({ command: ['w'] }).attach).toBeUndefined();
  });

  it('refuses a wildcard host, a bad pid and a zero timeout', () => {
    expect(problems({ attach: true, host: '0.0.0.0' })[0]).toMatch(
      /^host: --host: .*not a wildcard/,
    );
    expect(problems({ attach: true, pid: '0' })[0]).toMatch(/--pid/);
    expect(problems({ attach: true, attachTimeoutS: '0' })[0]).toMatch(/at least 1/);
  });
});

describe('envLines', () => {
  it("prints the spawned worker's variables as KEY=value, the addresses on the kit's host", () => {
    const settings = kitWorkerSettings(
      { slots: 2, heartbeatMs: 300, shutdownGraceMs: 5_000 },
      {
        mqttUrl: 'mqtt://10.0.0.5:1883',
        grpcAddress: '10.0.0.5:50051',
        workerId: 'w-1',
        token: 'fwt1.w-1.x.y_z',
      },
    );
    const lines = envLines(settings);
    expect(lines).toContain('MQTT_URL=mqtt://10.0.0.5:1883');
    expect(lines).toContain('MASTER_GRPC=10.0.0.5:50051');
    expect(lines).toContain('WORKER_TOKEN=fwt1.w-1.x.y_z');
    expect(lines.map((l) => l.split('=')[0])).toEqual(Object.keys(settings));
  });

  it('quotes a value a shell would split', () => {
    expect(envLines({ A: "it's a b" })).toEqual([`A='it'\\''s a b'`]);
  });
});

describe('AttachedWorker', () => {
  const HEARTBEAT_MS = 300;
  const probeWith = (statuses: object[], heartbeats: object[]) =>
    ({ statusesOf: () => statuses, heartbeatsOf: () => heartbeats }) as unknown as Probe;
  const online = (at: number) => ({ at, value: { state: 'online' }, retained: false });
  const offline = (at: number) => ({ at, value: { state: 'offline' }, retained: false });
  const beat = (at: number) => ({ at, value: {}, retained: false });

  it('counts as running while its master would not declare it dead', () => {
    const worker = (s: object[], h: object[]) =>
      new AttachedWorker(probeWith(s, h), 'w', HEARTBEAT_MS, undefined);
    expect(worker([], []).heard(10_000)).toBe(false);
    expect(worker([online(10_000)], []).heard(10_100)).toBe(true);
    expect(worker([online(0)], [beat(9_000)]).heard(9_900)).toBe(true);
    expect(worker([online(0)], [beat(9_000)]).heard(9_901)).toBe(false);
    expect(worker([online(0), offline(9_000)], [beat(9_000)]).heard(9_001)).toBe(false);
  });

  it('without a pid, has no output and skips a check that signals it', () => {
    const worker = new AttachedWorker(probeWith([], []), 'w', HEARTBEAT_MS, undefined);
    expect(worker.output()).toMatch(/cannot see the output/);
    expect(() => worker.signal('SIGTERM')).toThrow(CheckSkipped);
    expect(() => worker.signal('SIGTERM')).toThrow(NEEDS_PROCESS);
  });
});

describe('formatSkipped', () => {
  it('names the skipped checks in one line, grouped by why', () => {
    const skip = (id: string, detail: string): CheckResult => ({
      id,
      title: id,
      outcome: 'skipped',
      citation: 'PROTOCOL.md § X',
      detail,
      ms: 0,
    });
    const pass: CheckResult = { id: 'p', title: 'p', outcome: 'passed', citation: 'c', ms: 1 };
    expect(formatSkipped([pass])).toBeUndefined();
    expect(
      formatSkipped([
        skip('a.one', 'why 1'),
        pass,
        skip('b.two', 'why 2'),
        skip('c.three', 'why 1'),
      ]),
    ).toBe('skipped: a.one, c.three (why 1); b.two (why 2)');
  });
});
