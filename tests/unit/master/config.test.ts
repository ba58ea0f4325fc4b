import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../common/errors.ts';
import { loadMasterConfig } from '../../../master/src/config.ts';
import { NAMESPACE_RULE, validateNamespace } from '../../../master/src/store/url.ts';

describe('master config', () => {
  it('has the documented defaults', () => {
    const config = loadMasterConfig({});
    expect(config).toMatchObject({
      PORT: 8080,
      GRPC_PORT: 50051,
      MQTT_PORT: 1883,
      FLOTA_DATA_DIR: './.flota',
      WORKERS: 2,
      MQTT_PREFIX: 'flota/v1',
    });
    expect(config.MQTT_URL).toBeUndefined();
    expect(config.QUEUE_URL).toBeUndefined();
  });

  it('accepts redis and postgres queue URLs and treats empty as unset', () => {
    expect(loadMasterConfig({ QUEUE_URL: 'redis://r:6379' }).QUEUE_URL).toBe('redis://r:6379');
    expect(loadMasterConfig({ QUEUE_URL: 'postgres://u@h/db' }).QUEUE_URL).toBe(
      'postgres://u@h/db',
    );
    expect(loadMasterConfig({ QUEUE_URL: '' }).QUEUE_URL).toBeUndefined();
  });

  it('lists every problem at once, naming the variables', () => {
    let error: unknown;
    try {
      loadMasterConfig({
        PORT: 'eighty',
        QUEUE_URL: 'mysql://x',
        WORKERS: '-1',
        DISPATCH_POLICY: 'random',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of ['PORT', 'QUEUE_URL', 'WORKERS', 'DISPATCH_POLICY'])
      expect(message).toContain(name);
  });
});

describe('QUEUE_NAMESPACE', () => {
  it('follows the queue store rule, the one the store itself checks', () => {
    expect(loadMasterConfig({ QUEUE_NAMESPACE: 'tenant_42' }).QUEUE_NAMESPACE).toBe('tenant_42');
    for (const bad of ['Flota', '_flota', 'a'.repeat(42)]) {
      expect(() => loadMasterConfig({ QUEUE_NAMESPACE: bad })).toThrow(
        `QUEUE_NAMESPACE: ${NAMESPACE_RULE}`,
      );
      expect(() => validateNamespace(bad)).toThrow(NAMESPACE_RULE);
    }
  });

  it('counts a blank value as unset, like every other variable', () => {
    expect(loadMasterConfig({ QUEUE_NAMESPACE: ' ', PORT: '' })).toMatchObject({
      QUEUE_NAMESPACE: 'flota',
      PORT: 8080,
    });
  });
});
