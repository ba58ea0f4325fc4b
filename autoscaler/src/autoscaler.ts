/**
 * The autoscaler's loop: every interval, read the fleet from the master,
 * then for each pool ask the driver what it runs, decide (decide.ts) and
 * apply. Rounds never overlap. A round that cannot see the fleet decides
 * nothing — scaling blind is worse than waiting. A scaling the driver could
 * not apply is not remembered, so the next round tries again.
 */
import type { Logger } from '../../common/logger.ts';
import type { PoolStatus } from '../../proto/src/schemas/autoscaler.ts';
import type { PoolSpec } from './config.ts';
import { decide, type PoolMemory } from './decide.ts';
import type { ScaleDriver } from './drivers/driver.ts';
import type { AutoscalerMetrics } from './metrics.ts';
import {
  type FleetSource,
  type FleetView,
  observePool,
  onlinePoolWorkers,
  poolWorkers,
  type Serves,
} from './observe.ts';

export interface AutoscalerDeps {
  pools: readonly PoolSpec[];
  driver: ScaleDriver;
  source: FleetSource;
  log: Logger;
  metrics: AutoscalerMetrics;
  intervalMs: number;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class Autoscaler {
  private readonly memory = new Map<string, PoolMemory>();
  private readonly statuses = new Map<string, PoolStatus>();
  /** What each pool's workers served when some were last online. */
  private readonly servers = new Map<string, Serves[]>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly deps: AutoscalerDeps) {
    for (const pool of deps.pools) {
      const { min, max } = pool.policy;
      this.statuses.set(pool.name, { pool: pool.name, capability: pool.capability, min, max });
    }
  }

  /** Runs a round now, then one every interval until close(). */
  start(): void {
    const loop = async () => {
      this.round = this.tick();
      await this.round;
      if (!this.closed) this.timer = setTimeout(loop, this.deps.intervalMs);
    };
    void loop();
  }

  /** One round over every pool. Never throws: failures are logged, counted and shown in status(). */
  async tick(): Promise<void> {
    let fleet: FleetView;
    try {
      fleet = await this.deps.source.read();
    } catch (err) {
      this.deps.log.warn({ err: messageOf(err) }, 'cannot see the fleet; no decision this round');
      for (const pool of this.deps.pools) this.fail(pool, 'observe', err);
      return;
    }
    for (const pool of this.deps.pools) {
      if (this.closed) return;
      await this.tickPool(pool, fleet);
    }
  }

  status(): PoolStatus[] {
    return [...this.statuses.values()];
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.round;
  }

  private async tickPool(pool: PoolSpec, fleet: FleetView): Promise<void> {
    const { driver, log, metrics } = this.deps;
    let replicas: number;
    try {
      replicas = await driver.replicas(pool);
    } catch (err) {
      log.error({ pool: pool.name, err: messageOf(err) }, 'cannot read the pool size');
      this.fail(pool, 'replicas', err);
      return;
    }
    const online = onlinePoolWorkers(pool, fleet.workers);
    if (online.length > 0) {
      this.servers.set(
        pool.name,
        online.map(({ models, labels }) => ({ models, labels })),
      );
    }
    const seen = observePool(pool, fleet, replicas, this.servers.get(pool.name));
    const now = Date.now();
    const decision = decide(pool.policy, seen, this.memory.get(pool.name) ?? {}, now);
    const { memory: _, ...shown } = decision;
    const facts = { pool: pool.name, ...seen, ...shown };
    if (decision.action !== 'hold') {
      try {
        await driver.scale(pool, decision.replicas, poolWorkers(pool, fleet.workers));
      } catch (err) {
        log.error({ ...facts, err: messageOf(err) }, 'scaling failed; trying again next round');
        this.fail(pool, 'scale', err);
        return;
      }
      log.info(facts, `scaled ${pool.name} ${decision.action} to ${decision.replicas}`);
    } else {
      // A hold is news only when its reason changes (e.g. "cooldown" after "backlog").
      const before = this.statuses.get(pool.name)?.decision;
      const news = before?.action !== 'hold' || before.reason !== decision.reason;
      log[news ? 'info' : 'debug'](
        facts,
        `holding ${pool.name} at ${replicas}: ${decision.reason}`,
      );
    }
    this.memory.set(pool.name, decision.memory);
    metrics.decided(pool.name, decision, seen.backlog);
    this.setStatus(pool, { at: now, observation: seen, decision: shown, error: undefined });
  }

  private fail(pool: PoolSpec, stage: 'observe' | 'replicas' | 'scale', err: unknown): void {
    this.deps.metrics.failed(pool.name, stage);
    this.setStatus(pool, { at: Date.now(), error: `${stage}: ${messageOf(err)}` });
  }

  private setStatus(pool: PoolSpec, change: Partial<PoolStatus>): void {
    const current = this.statuses.get(pool.name);
    if (current) this.statuses.set(pool.name, { ...current, ...change });
  }
}
