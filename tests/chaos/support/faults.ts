/**
 * The fault timeline: a worker SIGKILLed (and restarted) every 2 s, one worker
 * SIGSTOPped past its heartbeat limit, the broker restarted, the master
 * SIGKILLed and restarted, Redis stopped for 5 s. Each fault is recorded with
 * when it happened, when the master noticed (its own "worker offline" log
 * line) and when it ended.
 */
import { waitFor } from '../../helpers/wait-for.ts';
import type { ChaosCluster } from './cluster.ts';
import type { LogLine, ProcessBook } from './process-book.ts';
import type { Rng } from './random.ts';

export type FaultKind =
  | 'worker-kill'
  | 'worker-pause'
  | 'broker-restart'
  | 'master-kill'
  | 'redis-outage';

export interface Fault {
  kind: FaultKind;
  target: string;
  /** When the fault started (ms since epoch). */
  at: number;
  /** When it was over: SIGCONT sent, broker/Redis answering, master ready, worker online again. */
  endAt?: number;
  /** The master's "worker offline" line for the target (worker faults only). */
  detectedAt?: number;
  detectedAs?: string;
  /** Pause only: when the master listed the worker online again after SIGCONT. */
  rejoinedAt?: number;
  /** The master was down at some point between the fault and its detection window. */
  masterWasDown?: boolean;
  /** Recovery is measured from here: the fault, or its end for outages. */
  recoveryFrom: number;
  error?: string;
}

export interface TimelineOptions {
  windowMs: number;
  /** Worker kills every this many ms. */
  killEveryMs: number;
  pauseMs: number;
  redisDownMs: number;
}

/** Resolves at the absolute time `when` (ms since epoch). */
const until = (when: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, when - Date.now())));

/** The master's log lines that list a worker as serving. */
const ONLINE_MESSAGES = new Set(['worker online', 'worker back online (heartbeats resumed)']);

/** An undetected worker fault counts as missed only if the master was up this long after it. */
const DETECTION_WINDOW_MS = 8_000;
/** How long the next big fault waits for the system to recover from the previous one. */
const RECOVERY_WAIT_MS = 15_000;

export class FaultTimeline {
  readonly faults: Fault[] = [];
  /** Periods when no master was serving: [killedAt, readyAt]. */
  readonly masterDown: Array<[number, number]> = [];
  /** Per worker: when the master last logged it online. */
  private readonly onlineAt = new Map<string, number>();
  private finished = false;

  constructor(
    private readonly cluster: ChaosCluster,
    book: ProcessBook,
    private readonly rng: Rng,
    /** True once any session saw a task complete after the given time. */
    private readonly completedSince: (since: number) => boolean,
    /** True while some session still waits for a task. */
    private readonly anyPending: () => boolean,
  ) {
    book.onLine((p, line) => {
      if (p.role === 'master') this.onMasterLine(line);
    });
  }

  /**
   * Runs every fault of the mode on its schedule; resolves when the last one is over.
   * A worker kill every 2 s from 1.5 s throughout the window, and one pause at
   * 5 % of it. The big faults run one after the other, so each recovery is its
   * own even when a restart is slow: Mosquitto restarts at 30 % of the window,
   * Redis goes down at 40 %, the master is killed at 70 %; each waits until a
   * task completed after the previous one was over (at most RECOVERY_WAIT_MS).
   * Embedded mode has only the master kill, at 35 %; streaming mode no big
   * fault (its streams through /v1 would end with the master).
   */
  async run(t0: number, opts: TimelineOptions): Promise<void> {
    const { windowMs: w } = opts;
    const big = async () => {
      if (this.cluster.mode === 'streaming') return;
      if (this.cluster.mode === 'embedded') {
        await this.killMaster(t0 + w * 0.35);
        return;
      }
      await this.recovered(await this.restartBroker(t0 + w * 0.3));
      const redisAt = Math.max(t0 + w * 0.4, Date.now() + 500);
      await this.recovered(await this.redisOutage(redisAt, opts.redisDownMs));
      await this.killMaster(Math.max(t0 + w * 0.7, Date.now() + 500));
    };
    await Promise.all([this.killLoop(t0, opts), this.pauseOne(t0 + w * 0.05, opts.pauseMs), big()]);
  }

  /**
   * Ends the measurements (later log lines, such as the final shutdown, are
   * not detections) and marks the worker faults the master could not see
   * because it was down.
   */
  finish(): void {
    this.finished = true;
    for (const f of this.faults) {
      if (f.kind !== 'worker-kill' && f.kind !== 'worker-pause') continue;
      const until = f.detectedAt ?? f.at + DETECTION_WINDOW_MS;
      f.masterWasDown = this.masterDown.some(([from, to]) => from <= until && to >= f.at);
    }
  }

  private async killLoop(t0: number, opts: TimelineOptions): Promise<void> {
    for (let t = 1_500; t < opts.windowMs - 500; t += opts.killEveryMs) {
      await until(t0 + t);
      // Keep at least one worker serving; only kill workers the master knows are online.
      const candidates = this.knownOnline();
      if (this.cluster.liveWorkers().length < 2 || candidates.length === 0) continue;
      const id = this.rng.pick(candidates);
      this.record('worker-kill', id);
      this.cluster.killWorker(id);
      await this.cluster.workers.get(id)?.process.exited;
      this.cluster.startWorker(id);
    }
  }

  private async pauseOne(when: number, pauseMs: number): Promise<void> {
    await until(when);
    const candidates = this.knownOnline();
    if (this.cluster.liveWorkers().length < 2 || candidates.length === 0) {
      this.record('worker-pause', '-').error = 'no worker online to pause';
      return;
    }
    const id = this.rng.pick(candidates);
    const fault = this.record('worker-pause', id);
    this.cluster.pauseWorker(id);
    await until(fault.at + pauseMs);
    this.cluster.resumeWorker(id);
    fault.endAt = Date.now();
  }

  /**
   * Waits (bounded) until a client saw a task complete after the fault was
   * over; a system that does not, while tasks wait, did not recover on its own.
   */
  private async recovered(fault: Fault): Promise<void> {
    const since = fault.recoveryFrom;
    const ok = await waitFor(() => this.completedSince(since), {
      timeoutMs: RECOVERY_WAIT_MS,
      intervalMs: 50,
      what: 'a completion',
    }).catch(() => false);
    if (!ok && this.anyPending()) {
      fault.error ??= `no task completed within ${RECOVERY_WAIT_MS} ms after it was over`;
    }
  }

  private async restartBroker(when: number): Promise<Fault> {
    await until(when);
    const fault = this.record('broker-restart', 'mosquitto');
    try {
      await this.cluster.mosquitto?.restart();
    } catch (err) {
      fault.error = String(err);
    }
    fault.endAt = Date.now();
    fault.recoveryFrom = fault.endAt;
    return fault;
  }

  private async killMaster(when: number): Promise<void> {
    await until(when);
    const fault = this.record('master-kill', 'master');
    const old = this.cluster.master;
    this.cluster.killMaster();
    await old?.process.exited;
    try {
      await this.cluster.startMaster();
    } catch (err) {
      fault.error = String(err);
    }
    fault.endAt = Date.now();
    this.masterDown.push([fault.at, fault.endAt]);
  }

  private async redisOutage(when: number, downMs: number): Promise<Fault> {
    await until(when);
    const fault = this.record('redis-outage', 'redis');
    try {
      const times = await this.cluster.redis?.outage(downMs);
      if (times) {
        fault.at = times.stoppedAt;
        fault.endAt = times.backAt;
        fault.recoveryFrom = times.backAt;
      }
    } catch (err) {
      fault.error = String(err);
    }
    fault.endAt ??= Date.now();
    return fault;
  }

  /** Live, unpaused workers whose current process the master lists online now. */
  private knownOnline(): string[] {
    return this.cluster
      .liveWorkers()
      .filter(
        (id) => (this.onlineAt.get(id) ?? 0) >= (this.cluster.workers.get(id)?.startedAt ?? 0),
      );
  }

  /** The latest worker fault on `workerId` at or before `ts`. */
  private latestWorkerFault(workerId: string, ts: number, kinds: FaultKind[]): Fault | undefined {
    const matching = this.faults.filter(
      (f) => kinds.includes(f.kind) && f.target === workerId && f.at <= ts,
    );
    return matching.at(-1);
  }

  private record(kind: FaultKind, target: string): Fault {
    const now = Date.now();
    const fault: Fault = { kind, target, at: now, recoveryFrom: now };
    this.faults.push(fault);
    return fault;
  }

  private onMasterLine(line: LogLine): void {
    const workerId = typeof line.workerId === 'string' ? line.workerId : undefined;
    if (!workerId || this.finished) return;
    if (ONLINE_MESSAGES.has(line.msg)) {
      this.onlineAt.set(workerId, line.ts);
      const fault = this.latestWorkerFault(workerId, line.ts, ['worker-kill', 'worker-pause']);
      // A killed worker is back once the master lists its new process; a paused one
      // once the master takes it back after SIGCONT.
      if (fault?.kind === 'worker-kill' && fault.endAt === undefined) fault.endAt = line.ts;
      if (fault?.kind === 'worker-pause' && fault.endAt !== undefined) fault.rejoinedAt ??= line.ts;
    } else if (line.msg === 'worker offline') {
      this.onlineAt.delete(workerId);
      // Only the latest fault can be the cause: an older undetected one happened while
      // no master was there to see it.
      const fault = this.latestWorkerFault(workerId, line.ts, ['worker-kill', 'worker-pause']);
      if (fault && fault.detectedAt === undefined) {
        fault.detectedAt = line.ts;
        fault.detectedAs = String(line.reason ?? '');
      }
    }
  }
}
