import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../common/errors.ts';
import { openQueueStore, redactUrl, storeKindForUrl } from '../../../master/src/store/index.ts';
import { validateNamespace } from '../../../master/src/store/url.ts';

describe('storeKindForUrl', () => {
  it.each([
    ['redis://127.0.0.1:6379', 'redis'],
    ['rediss://user:pw@cache.example:6380/2', 'redis'],
    ['REDIS://host', 'redis'],
    ['postgres://u:p@db:5432/flota', 'postgres'],
    ['postgresql://db/flota', 'postgres'],
    [undefined, 'embedded-postgres'],
    ['', 'embedded-postgres'],
    ['   ', 'embedded-postgres'],
  ] as const)('%s → %s', (url, kind) => {
    expect(storeKindForUrl(url)).toBe(kind);
  });

  it.each(['mysql://u:p@db/flota', 'http://localhost', 'localhost:6379', 'redis'])(
    'rejects %s with a ConfigError naming the supported schemes',
    (url) => {
      expect(() => storeKindForUrl(url)).toThrow(ConfigError);
      expect(() => storeKindForUrl(url)).toThrow(/redis:\/\/.*postgres:\/\//);
    },
  );

  it('never puts the password of a rejected URL in the message', () => {
    expect(() => storeKindForUrl('mysql://admin:s3cret@db/x')).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('s3cret') }),
    );
  });
});

describe('redactUrl', () => {
  it('masks the password and keeps the user', () => {
    expect(redactUrl('redis://default:hunter2@cache:6379/0')).toBe(
      'redis://default:***@cache:6379/0',
    );
    expect(redactUrl('postgres://flota:p%40ss@db:5432/flota?sslmode=require')).toBe(
      'postgres://flota:***@db:5432/flota?sslmode=require',
    );
  });

  it('masks a password given without a user', () => {
    expect(redactUrl('redis://:hunter2@cache:6379')).toBe('redis://:***@cache:6379');
  });

  it('leaves URLs without a password alone', () => {
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrl('postgres://flota@db/flota')).toBe('postgres://flota@db/flota');
  });

  it('masks credentials even in text that does not parse as a URL', () => {
    expect(redactUrl('redis://u:pw@[bad')).toBe('redis://u:***@[bad');
  });
});

describe('validateNamespace', () => {
  it('accepts simple lower-case identifiers of up to 41 characters', () => {
    expect(validateNamespace('flota')).toBe('flota');
    expect(validateNamespace('tenant_42')).toBe('tenant_42');
    expect(validateNamespace('a'.repeat(41))).toBe('a'.repeat(41));
  });

  it.each(['', '1abc', '_tenant', 'Flota', 'with-dash', 'with:colon', 'a'.repeat(42)])(
    'rejects %j',
    (ns) => {
      expect(() => validateNamespace(ns)).toThrow(ConfigError);
    },
  );
});

describe('openQueueStore', () => {
  const log = pino({ level: 'silent' });

  it('rejects an unsupported URL before connecting anywhere', async () => {
    await expect(
      openQueueStore({ url: 'amqp://broker', dataDir: '/nonexistent', log }),
    ).rejects.toBeInstanceOf(ConfigError);
  });

  it('rejects an invalid namespace before connecting anywhere', async () => {
    await expect(
      openQueueStore({
        url: 'redis://127.0.0.1:1',
        dataDir: '/nonexistent',
        namespace: 'a-b',
        log,
      }),
    ).rejects.toThrow(/namespace "a-b" is invalid/);
  });
});
