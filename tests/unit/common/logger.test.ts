/** Log hygiene: what a log line may carry, on stdout and on the MQTT log topic anyone may read. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, lineForMqtt } from '../../../common/logger.ts';
import { hashId, redactUrl, redactUrlsIn } from '../../../common/redact.ts';

function capture() {
  const stdout: string[] = [];
  const mqtt: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      stdout.push(String(chunk));
      done();
    },
  });
  const flota = createLogger({ source: 'test', level: 'debug', destination });
  flota.attachPublisher((line) => mqtt.push(line));
  return { log: flota.logger, stdout, mqtt };
}

const SESSION = 'sess_Secret_1234';

describe('logger', () => {
  it('censors secret keys at the top level and inside objects, on both copies', () => {
    const { log, stdout, mqtt } = capture();
    log.info(
      {
        taskId: 't1',
        lease: 'lease-top',
        prompt: 'my prompt',
        credential: 'fwt1.w.x.mac',
        joinToken: 'fjt1.join',
        job: { text: 'an answer', messages: [{ role: 'user', content: 'hi' }], apiKey: 'AIza' },
      },
      'task queued',
    );
    for (const line of [...stdout, ...mqtt]) {
      for (const secret of [
        'lease-top',
        'my prompt',
        'fwt1',
        'fjt1',
        'an answer',
        'AIza',
        '"hi"',
      ]) {
        expect(line).not.toContain(secret);
      }
      expect(JSON.parse(line)).toMatchObject({ taskId: 't1', msg: 'task queued' });
    }
  });

  it('censors secret keys at any depth on the MQTT copy', () => {
    const { log, mqtt } = capture();
    log.warn({ a: { b: { c: [{ lease: 'deep-lease', prompt: 'deep-prompt' }] } } }, 'nested');
    expect(mqtt).toHaveLength(1);
    expect(mqtt[0]).not.toContain('deep-lease');
    expect(mqtt[0]).not.toContain('deep-prompt');
    expect(JSON.parse(mqtt[0] as string).a.b.c[0].lease).toBe('[redacted]');
  });

  it('logs session ids as a short hash, the same on both copies', () => {
    const { log, stdout, mqtt } = capture();
    log.info({ sessionId: SESSION }, 'resync failed');
    log.info({ ctx: { sessionId: SESSION } }, 'one level down');
    log.info({ a: { b: { sessionId: SESSION } } }, 'deeper');
    const tag = hashId(SESSION);
    expect(tag).toMatch(/^#[0-9a-f]{10}$/);
    // stdout (the operator's own) is censored two levels deep; what goes on MQTT at any depth.
    for (const line of [...stdout.slice(0, 2), ...mqtt]) expect(line).not.toContain(SESSION);
    expect(JSON.parse(stdout[0] as string).sessionId).toBe(tag);
    expect(JSON.parse(mqtt[0] as string).sessionId).toBe(tag);
    expect(JSON.parse(mqtt[2] as string).a.b.sessionId).toBe(tag);
  });

  it('masks the password of any URL, in fields, messages and errors', () => {
    const { log, stdout, mqtt } = capture();
    log.info({ mqttUrl: 'mqtts://flota:hunter2@broker:8883' }, 'master ready');
    log.warn('cannot reach redis://:hunter2@cache:6379/0 now');
    log.error({ err: new Error('connect postgres://u:hunter2@db/flota failed') }, 'store down');
    for (const line of [...stdout, ...mqtt]) {
      expect(line).not.toContain('hunter2');
      expect(() => JSON.parse(line)).not.toThrow();
    }
    expect(JSON.parse(stdout[0] as string).mqttUrl).toBe('mqtts://flota:***@broker:8883');
  });

  it('publishes nothing that is not a JSON line', () => {
    expect(lineForMqtt('not json')).toBeUndefined();
    expect(lineForMqtt('{"lease":"x","n":1}')).toBe('{"lease":"[redacted]","n":1}');
    // Already censored (or holding no secret key): passed on as it is, unparsed.
    const clean = '{"level":"info","lease":"[redacted]","sessionId":"#0123456789","msg":"ok"}';
    expect(lineForMqtt(clean)).toBe(clean);
    expect(lineForMqtt('{"a":{"b":{"c":{"prompt":"hi"}}}}')).toBe(
      '{"a":{"b":{"c":{"prompt":"[redacted]"}}}}',
    );
  });
});

describe('redact helpers', () => {
  it('redactUrl masks the password and keeps the user', () => {
    expect(redactUrl('mqtt://flota:pw@host:1883')).toBe('mqtt://flota:***@host:1883');
    expect(redactUrl('mqtt://host:1883')).toBe('mqtt://host:1883');
  });

  it('redactUrlsIn masks every URL in a text and leaves the rest alone', () => {
    expect(redactUrlsIn('a mqtt://u:p@h:1 b redis://:q@r c')).toBe(
      'a mqtt://u:***@h:1 b redis://:***@r c',
    );
    expect(redactUrlsIn('see http://host:8080/x and user@example.org')).toBe(
      'see http://host:8080/x and user@example.org',
    );
    expect(redactUrlsIn('{"a":"x://foo","b":"bar@baz"}')).toBe('{"a":"x://foo","b":"bar@baz"}');
  });

  it('hashId is stable, short, and idempotent', () => {
    expect(hashId('abc')).toBe(hashId('abc'));
    expect(hashId('abc')).not.toBe(hashId('abd'));
    expect(hashId(hashId('abc'))).toBe(hashId('abc'));
  });
});
