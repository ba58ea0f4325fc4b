import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/free-port.ts';
import { randomName } from '../../helpers/random-name.ts';
import { waitFor } from '../../helpers/wait-for.ts';

describe('test helpers', () => {
  it('freePort returns a port that can be bound on 127.0.0.1', async () => {
    const port = await freePort();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    await new Promise((resolve) => server.close(resolve));
    expect(port).toBeGreaterThan(0);
  });

  it('randomName is unique and safe as a schema name', () => {
    const a = randomName('q');
    expect(a).toMatch(/^q_[0-9a-f]{12}$/);
    expect(randomName('q')).not.toBe(a);
  });

  it('waitFor resolves with the first truthy value', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? { calls } : undefined), { intervalMs: 1 });
    expect(value).toEqual({ calls: 3 });
  });

  it('waitFor names what it waited for when it gives up', async () => {
    await expect(
      waitFor(() => false, { timeoutMs: 30, intervalMs: 5, what: 'the moon' }),
    ).rejects.toThrow(/timed out after 30 ms waiting for the moon/);
  });
});
