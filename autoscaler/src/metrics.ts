/**
 * The autoscaler's Prometheus metrics: per pool, what it runs, what the load
 * asks for, the backlog and utilisation it saw, and every decision by action
 * and reason (holds included, so a cooldown that keeps a pool small shows).
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { scaleActions, scaleReasons } from '../../proto/src/schemas/autoscaler.ts';
import type { ScaleDecision } from './decide.ts';

const ERROR_STAGES = ['observe', 'replicas', 'scale'] as const;
type ErrorStage = (typeof ERROR_STAGES)[number];

export class AutoscalerMetrics {
  readonly registry = new Registry();
  private readonly replicas: Gauge;
  private readonly wanted: Gauge;
  private readonly backlog: Gauge;
  private readonly utilisation: Gauge;
  private readonly decisions: Counter;
  private readonly errors: Counter;

  /** `pools`: their counters exist at 0 from the first scrape, so `increase()` is right over a restart. */
  constructor(pools: readonly string[] = []) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'flota_autoscaler_process_' });
    this.replicas = new Gauge({
      name: 'flota_autoscaler_replicas',
      help: 'Replicas of the pool after the last decision',
      labelNames: ['pool'],
      registers,
    });
    this.wanted = new Gauge({
      name: 'flota_autoscaler_wanted_replicas',
      help: 'Replicas the load asked for (within min and max), before cooldowns and steps',
      labelNames: ['pool'],
      registers,
    });
    this.backlog = new Gauge({
      name: 'flota_autoscaler_backlog',
      help: "Tasks waiting in the queues the pool's workers serve",
      labelNames: ['pool'],
      registers,
    });
    this.utilisation = new Gauge({
      name: 'flota_autoscaler_utilisation',
      help: "Busy share of the pool's online slots",
      labelNames: ['pool'],
      registers,
    });
    this.decisions = new Counter({
      name: 'flota_autoscaler_decisions_total',
      help: 'Decisions by pool, action (up, down, hold) and reason',
      labelNames: ['pool', 'action', 'reason'],
      registers,
    });
    this.errors = new Counter({
      name: 'flota_autoscaler_errors_total',
      help: 'Rounds that could not observe the fleet or apply a decision, by stage',
      labelNames: ['pool', 'stage'],
      registers,
    });
    for (const pool of pools) {
      for (const stage of ERROR_STAGES) this.errors.inc({ pool, stage }, 0);
      for (const action of scaleActions) {
        for (const reason of scaleReasons) this.decisions.inc({ pool, action, reason }, 0);
      }
    }
  }

  decided(pool: string, decision: ScaleDecision, backlog: number): void {
    this.replicas.set({ pool }, decision.replicas);
    this.wanted.set({ pool }, decision.wanted);
    this.backlog.set({ pool }, backlog);
    this.utilisation.set({ pool }, decision.utilisation);
    this.decisions.inc({ pool, action: decision.action, reason: decision.reason });
  }

  failed(pool: string, stage: ErrorStage): void {
    this.errors.inc({ pool, stage });
  }
}
