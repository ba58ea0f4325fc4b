/**
 * The `local` driver: a pool is a set of worker processes on this machine,
 * named `<pool>-1`, `<pool>-2`, … (the lowest free number first, so ids stay
 * short and a restarted worker takes its old name). Scaling down stops idle
 * workers first, newest first; a stopped worker drains — it finishes its
 * tasks and reports them — before it exits. A worker that dies on its own
 * leaves the pool, and the next round replaces it if the pool needs it; one
 * the master told to restart (it exits with RESTART_EXIT_CODE) is started
 * again at once, under the same id.
 */
import type { Logger } from '../../../common/logger.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import type { PoolSpec } from '../config.ts';
import type { ScaleDriver } from './driver.ts';

/** A running worker process, as the driver needs it. */
export interface WorkerProcess {
  /**
   * Resolves once the process has exited, for whatever reason. Should not
   * reject; if it does, the worker leaves the pool with a warning.
   */
  readonly exited: Promise<void>;
  /** Asks the worker to drain and exit; resolves once it has. */
  stop(): Promise<void>;
  /** After `exited`: true when it exited to be restarted (the master asked). */
  restartRequested?(): boolean;
}

export interface LocalDriverOptions {
  /** Starts one worker process with this id in this pool. */
  start(id: string, pool: PoolSpec): WorkerProcess;
  log: Logger;
}

interface Member {
  id: string;
  index: number;
  process: WorkerProcess;
  stopping: boolean;
}

export class LocalDriver implements ScaleDriver {
  readonly name = 'local';
  private readonly pools = new Map<string, Map<string, Member>>();
  private readonly stops = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: LocalDriverOptions) {}

  async replicas(pool: PoolSpec): Promise<number> {
    return this.live(pool).length;
  }

  /** Ids of the pool's workers that are running and not being stopped. */
  ids(pool: PoolSpec): string[] {
    return this.live(pool).map((m) => m.id);
  }

  async scale(pool: PoolSpec, replicas: number, workers: readonly WorkerView[]): Promise<void> {
    if (this.closed) return;
    const live = this.live(pool);
    for (let n = live.length; n < replicas; n++) this.startOne(pool);
    if (replicas >= live.length) return;
    const busy = new Map(workers.map((w) => [w.id, w.state === 'online' ? w.active : 0]));
    const victims = [...live]
      .sort((a, b) => (busy.get(a.id) ?? 0) - (busy.get(b.id) ?? 0) || b.index - a.index)
      .slice(0, live.length - replicas);
    for (const member of victims) this.stopOne(member);
  }

  /** Stops every worker and waits for all of them to exit. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const members of this.pools.values()) {
      for (const member of members.values()) if (!member.stopping) this.stopOne(member);
    }
    await Promise.all(this.stops);
  }

  private members(pool: PoolSpec): Map<string, Member> {
    let members = this.pools.get(pool.name);
    if (!members) {
      members = new Map();
      this.pools.set(pool.name, members);
    }
    return members;
  }

  private live(pool: PoolSpec): Member[] {
    return [...this.members(pool).values()].filter((m) => !m.stopping);
  }

  private startOne(pool: PoolSpec): void {
    const members = this.members(pool);
    const taken = new Set([...members.values()].map((m) => m.index));
    let index = 1;
    while (taken.has(index)) index++;
    const id = `${pool.workerPrefix}${index}`;
    const process = this.options.start(id, pool);
    const member: Member = { id, index, process, stopping: false };
    members.set(id, member);
    this.options.log.info({ pool: pool.name, workerId: id }, 'worker started');
    const leave = (failure?: { err: unknown }) => {
      if (members.get(id) !== member) return;
      members.delete(id);
      const facts = { pool: pool.name, workerId: id };
      if (failure) {
        const err = String(failure.err);
        this.options.log.warn({ ...facts, err }, 'lost track of a worker; it leaves the pool');
      } else if (!member.stopping && !this.closed && process.restartRequested?.() === true) {
        this.options.log.info(facts, 'worker restarts, as the master asked');
        this.startOne(pool);
      } else if (!member.stopping) {
        this.options.log.warn(facts, 'worker exited on its own');
      }
    };
    void process.exited.then(
      () => leave(),
      (err: unknown) => leave({ err }),
    );
  }

  private stopOne(member: Member): void {
    member.stopping = true;
    this.options.log.info({ workerId: member.id }, 'stopping worker (it drains first)');
    const stop = member.process.stop().catch((err: unknown) => {
      this.options.log.error({ workerId: member.id, err: String(err) }, 'worker did not stop');
    });
    this.stops.add(stop);
    void stop.finally(() => this.stops.delete(stop));
  }
}
