import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../common/errors.ts';
import { loadWorkerConfig } from '../../../worker/src/config.ts';

describe('WEIGHT (worker config)', () => {
  it('defaults to 1 and reads an integer', () => {
    expect(loadWorkerConfig({}).weight).toBe(1);
    expect(loadWorkerConfig({ WEIGHT: ' 3 ' }).weight).toBe(3);
    expect(loadWorkerConfig({ WEIGHT: '' }).weight).toBe(1);
  });

  it('names WEIGHT when it is not an integer in 1..1000', () => {
    for (const value of ['0', '1001', '2.5', 'heavy']) {
      let error: unknown;
      try {
        loadWorkerConfig({ WEIGHT: value });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/^ {2}- WEIGHT: /m);
    }
  });
});
