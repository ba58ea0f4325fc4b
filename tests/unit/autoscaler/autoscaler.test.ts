import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Autoscaler } from '../../../autoscaler/src/autoscaler.ts';
import type { PoolSpec } from '../../../autoscaler/src/config.ts';
import type { ScaleDriver } from '../../../autoscaler/src/drivers/driver.ts';
import { AutoscalerMetrics } from '../../../autoscaler/src/metrics.ts';
import type { FleetView } from '../../../autoscaler/src/observe.ts';
import { queueName } from '../../../proto/src/queues.ts';
import { cpuPool, fleet, worker } from './support.ts';

const echo = queueName({ capability: 'any', model: 'echo' });

/** A driver that only counts, and can be told to fail. */
class CountingDriver implements ScaleDriver {
  readonly name = 'counting';
  calls: number[] = [];
  failNext = false;
  constructor(public count: number) {}
  async replicas(_pool: PoolSpec) {
    return this.count;
  }
  async scale(_pool: PoolSpec, replicas: number) {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('engine said no');
    }
    this.calls.push(replicas);
    this.count = replicas;
  }
  async close() {}
}

/** Time starts at 0; `at` moves Date.now() (faked by each test, see beforeEach). */
function setup(view: () => FleetView | Promise<FleetView>, replicas = 1) {
  vi.setSystemTime(0);
  const driver = new CountingDriver(replicas);
  const metrics = new AutoscalerMetrics();
  const autoscaler = new Autoscaler({
    pools: [cpuPool],
    driver,
    source: { read: async () => view() },
    log: pino({ level: 'silent' }),
    metrics,
    intervalMs: 1_000,
  });
  return { driver, metrics, autoscaler, at: (ms: number) => vi.setSystemTime(ms) };
}

const busy = (n: number, backlog: number) =>
  fleet(
    Array.from({ length: n }, (_, i) => worker(`local-${i + 1}`, { active: 2 })),
    { [echo]: { waiting: backlog } },
  );

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('Autoscaler', () => {
  it('grows a pool under a backlog, a step per cooldown, and shows why', async () => {
    let replicas = 1;
    const { driver, metrics, autoscaler, at } = setup(() => busy(replicas, 20));
    await autoscaler.tick();
    expect(driver.calls).toEqual([3]);
    replicas = 3;
    at(500);
    await autoscaler.tick();
    expect(driver.calls).toEqual([3]);
    expect(autoscaler.status()[0]?.decision).toMatchObject({ action: 'hold', reason: 'cooldown' });
    at(1_000);
    await autoscaler.tick();
    expect(driver.calls).toEqual([3, 5]);
    const text = await metrics.registry.metrics();
    expect(text).toContain('flota_autoscaler_replicas{pool="local"} 5');
    expect(text).toContain('flota_autoscaler_backlog{pool="local"} 20');
    expect(text).toContain(
      'flota_autoscaler_decisions_total{pool="local",action="up",reason="backlog"} 2',
    );
    expect(text).toContain(
      'flota_autoscaler_decisions_total{pool="local",action="hold",reason="cooldown"} 1',
    );
  });

  it("remembers what a pool's workers served: a pool gone to zero wakes only for its own models", async () => {
    const llama = queueName({ capability: 'any', model: 'llama3' });
    let view = fleet([worker('local-1')], {});
    const { driver, autoscaler, at } = setup(() => view, 1);
    await autoscaler.tick();
    // Its worker went away (restarting, say); tasks wait for a model it never served.
    view = fleet([], { [llama]: { waiting: 3 } });
    at(20_000);
    await autoscaler.tick();
    expect(autoscaler.status()[0]?.observation).toMatchObject({ online: 0, backlog: 0 });
    expect(driver.calls).toEqual([]);
    view = fleet([], { [llama]: { waiting: 3 }, [echo]: { waiting: 2 } });
    at(40_000);
    await autoscaler.tick();
    expect(autoscaler.status()[0]?.observation).toMatchObject({ online: 0, backlog: 2 });
    expect(driver.calls).toEqual([2]);
  });

  it('decides nothing while it cannot see the fleet', async () => {
    const { driver, metrics, autoscaler } = setup(() => {
      throw new Error('master down');
    });
    await autoscaler.tick();
    expect(driver.calls).toEqual([]);
    expect(autoscaler.status()[0]?.error).toBe('observe: master down');
    expect(await metrics.registry.metrics()).toContain(
      'flota_autoscaler_errors_total{pool="local",stage="observe"} 1',
    );
  });

  it('tries a failed scaling again next round, cooldown or not', async () => {
    const { driver, autoscaler, at } = setup(() => busy(1, 20));
    driver.failNext = true;
    await autoscaler.tick();
    expect(driver.calls).toEqual([]);
    expect(autoscaler.status()[0]?.error).toBe('scale: engine said no');
    at(10);
    await autoscaler.tick();
    expect(driver.calls).toEqual([3]);
    expect(autoscaler.status()[0]?.error).toBeUndefined();
  });

  it('runs a round every interval once started, and none after close()', async () => {
    vi.useFakeTimers();
    let reads = 0;
    const { autoscaler } = setup(() => {
      reads++;
      return busy(1, 0);
    });
    autoscaler.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(reads).toBe(1);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(reads).toBe(4);
    await autoscaler.close();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(reads).toBe(4);
  });
});
