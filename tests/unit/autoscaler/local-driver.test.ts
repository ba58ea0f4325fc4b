import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { LocalDriver, type WorkerProcess } from '../../../autoscaler/src/drivers/local.ts';
import { cpuPool, worker } from './support.ts';

interface Fake extends WorkerProcess {
  id: string;
  stopped: boolean;
  die(): void;
  /** Exits as a worker the master told to restart. */
  restart(): void;
  /** As if the process handle failed: `exited` rejects. */
  fail(err: Error): void;
}

function fakeDriver() {
  const started: Fake[] = [];
  const driver = new LocalDriver({
    log: pino({ level: 'silent' }),
    start: (id) => {
      let exit = () => {};
      let fail = (_: Error) => {};
      let restarting = false;
      const exited = new Promise<void>((resolve, reject) => {
        exit = resolve;
        fail = reject;
      });
      const fake: Fake = {
        id,
        stopped: false,
        exited,
        die: () => exit(),
        restart: () => {
          restarting = true;
          exit();
        },
        restartRequested: () => restarting,
        fail: (err) => fail(err),
        stop: async () => {
          fake.stopped = true;
          exit();
        },
      };
      started.push(fake);
      return fake;
    },
  });
  return { driver, started };
}

describe('LocalDriver', () => {
  it('starts workers named after the pool, lowest free number first', async () => {
    const { driver, started } = fakeDriver();
    await driver.scale(cpuPool, 3, []);
    expect(started.map((w) => w.id)).toEqual(['local-1', 'local-2', 'local-3']);
    expect(await driver.replicas(cpuPool)).toBe(3);
    started[1]?.die();
    await vi.waitFor(() => expect(driver.ids(cpuPool)).toEqual(['local-1', 'local-3']));
    await driver.scale(cpuPool, 3, []);
    expect(started.map((w) => w.id)).toEqual(['local-1', 'local-2', 'local-3', 'local-2']);
  });

  it('starts a worker the master told to restart again at once, under its id', async () => {
    const { driver, started } = fakeDriver();
    await driver.scale(cpuPool, 2, []);
    started[0]?.restart();
    await vi.waitFor(() =>
      expect(started.map((w) => w.id)).toEqual(['local-1', 'local-2', 'local-1']),
    );
    expect(driver.ids(cpuPool).sort()).toEqual(['local-1', 'local-2']);
  });

  it('stops idle workers first, then the newest', async () => {
    const { driver, started } = fakeDriver();
    await driver.scale(cpuPool, 4, []);
    const views = [
      worker('local-1', { active: 0 }),
      worker('local-2', { active: 2 }),
      worker('local-3', { active: 1 }),
      worker('local-4', { active: 2 }),
    ];
    await driver.scale(cpuPool, 2, views);
    expect(started.filter((w) => w.stopped).map((w) => w.id)).toEqual(['local-1', 'local-3']);
    expect(driver.ids(cpuPool)).toEqual(['local-2', 'local-4']);
    await driver.scale(cpuPool, 1, []);
    expect(driver.ids(cpuPool)).toEqual(['local-2']);
  });

  it('close() stops every worker, waits for them, and starts none after', async () => {
    const { driver, started } = fakeDriver();
    await driver.scale(cpuPool, 2, []);
    await driver.close();
    expect(started.every((w) => w.stopped)).toBe(true);
    await driver.scale(cpuPool, 5, []);
    expect(started).toHaveLength(2);
    await driver.close();
  });

  it('a worker whose exited promise rejects leaves the pool, without an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { driver, started } = fakeDriver();
      await driver.scale(cpuPool, 2, []);
      started[0]?.fail(new Error('spawn EAGAIN'));
      await vi.waitFor(() => expect(driver.ids(cpuPool)).toEqual(['local-2']));
      expect(await driver.replicas(cpuPool)).toBe(1);
      await driver.scale(cpuPool, 2, []);
      expect(started.map((w) => w.id)).toEqual(['local-1', 'local-2', 'local-1']);
      await driver.close();
      // Rejections are reported once the microtask queue drains: let it.
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
