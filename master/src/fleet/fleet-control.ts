/**
 * The one owner of the operator's word on the fleet: whether dispatch is
 * stopped, which workers are drained (alone or by a cordon), which are
 * stopping. Dispatch asks it before every assignment (DispatchGate), so a
 * stop or a drain holds at once; each worker command is then sent on the
 * worker's control topic and answered once the worker acknowledges it in
 * its status (or not in time). Kept in master memory: a restarted master
 * starts with dispatch running and no drains or cordons (docs/OPERATIONS.md).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { NotFoundError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import {
  CONTROL_ACK_TIMEOUT_MS,
  type FleetState,
  type WorkerSelector,
} from '../../../proto/src/schemas/fleet.ts';
import type { Control, LiveConfig } from '../../../proto/src/schemas/task.ts';
import type { ControlAck, WorkerView } from '../../../proto/src/schemas/worker.ts';
import type { DispatchGate } from '../dispatch/gate.ts';
import type { LeaseTable } from '../dispatch/leases.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import { hasLabels, toWorkerView, type WorkerRecord } from '../registry/worker-record.ts';
import type { TaskLifecycle } from '../tasks/lifecycle.ts';
import { NotAcknowledgedError, WorkerOfflineError, WorkerRefusedError } from './fleet-errors.ts';

export interface FleetControlDeps {
  registry: WorkerRegistry;
  /** Sends controls (tellWorker) and ends running tasks on an emergency stop. */
  lifecycle: Pick<TaskLifecycle, 'tellWorker' | 'end'>;
  leases: LeaseTable;
  log: Logger;
  /** How long a worker command waits for the acknowledgement. Default CONTROL_ACK_TIMEOUT_MS. */
  ackTimeoutMs?: number;
}

/** Who asked (an API token's tenant), for the state and the logs. */
export type Operator = string | undefined;

type Command = Exclude<Control, { type: 'cancel' }>;
type Unsent<C> = C extends unknown ? Omit<C, 'id'> : never;

interface Mark {
  at: number;
  by: Operator;
}

/** One worker's outcome within a cordon. */
export interface CordonOutcome {
  workerId: string;
  ok: boolean;
  error?: string;
}

export function matchesSelector(record: WorkerRecord, selector: WorkerSelector): boolean {
  if (selector.kind !== undefined && record.status.kind !== selector.kind) return false;
  return hasLabels(record, selector.labels);
}

const sameSelector = (a: WorkerSelector, b: WorkerSelector) =>
  a.kind === b.kind &&
  JSON.stringify(Object.entries(a.labels ?? {}).sort()) ===
    JSON.stringify(Object.entries(b.labels ?? {}).sort());

/** `open`: dispatch may take again; `change`: what state() answers changed. */
export class FleetControl extends EventEmitter<{ open: []; change: [] }> implements DispatchGate {
  private halted: (Mark & { running: 'cancel' | 'keep'; cancelled: number }) | undefined;
  private readonly drained = new Map<string, Mark>();
  private readonly cordons: Array<Mark & { selector: WorkerSelector }> = [];
  /** Workers told to stop or restart: no new work until they have left. */
  private readonly stopping = new Set<string>();
  /** Control id → the command waiting for its acknowledgement. */
  private readonly waiting = new Map<string, (ack: ControlAck) => void>();
  private readonly log: Logger;
  private readonly ackTimeoutMs: number;
  private readonly onAck = (_workerId: string, ack: ControlAck) => this.waiting.get(ack.id)?.(ack);
  /** A worker (re)joining that an operator drained or a cordon covers is drained again. */
  private readonly onOnline = (workerId: string) => {
    const record = this.deps.registry.get(workerId);
    if (!record) return;
    const cordon = this.cordons.find((c) => matchesSelector(record, c.selector));
    if (cordon && !this.drained.has(workerId)) {
      this.drained.set(workerId, { at: Date.now(), by: cordon.by });
      this.emit('change');
    }
    if (!this.drained.has(workerId)) return;
    this.log.info({ workerId }, 'drained worker joined: drained again');
    this.deps.lifecycle.tellWorker(workerId, { type: 'drain' });
  };
  private readonly onOffline = (workerId: string) => this.stopping.delete(workerId);

  constructor(private readonly deps: FleetControlDeps) {
    super();
    this.log = deps.log.child({ component: 'fleet' });
    this.ackTimeoutMs = deps.ackTimeoutMs ?? CONTROL_ACK_TIMEOUT_MS;
  }

  start(): void {
    this.deps.registry.on('ack', this.onAck);
    this.deps.registry.on('online', this.onOnline);
    this.deps.registry.on('offline', this.onOffline);
  }

  stop(): void {
    this.deps.registry.off('ack', this.onAck);
    this.deps.registry.off('online', this.onOnline);
    this.deps.registry.off('offline', this.onOffline);
  }

  // ── DispatchGate ────────────────────────────────────────────────────────

  stopped(): boolean {
    return this.halted !== undefined;
  }

  admits(workerId: string): boolean {
    return !this.drained.has(workerId) && !this.stopping.has(workerId);
  }

  // ── one worker ──────────────────────────────────────────────────────────

  /** No new work for the worker from now on; answers once it says it drains. */
  async drain(workerId: string, by: Operator): Promise<WorkerView> {
    this.online(workerId);
    if (!this.drained.has(workerId)) {
      this.drained.set(workerId, { at: Date.now(), by });
      this.emit('change');
    }
    await this.command(
      workerId,
      { type: 'drain' },
      'the master gives it no new work already; it may still take one it was sent',
    );
    return this.view(workerId);
  }

  /** The worker takes work again (an operator's drain of it is lifted, whatever cordon made it). */
  async resume(workerId: string): Promise<WorkerView> {
    this.online(workerId);
    if (this.drained.delete(workerId)) this.emit('change');
    this.emit('open');
    await this.command(workerId, { type: 'resume' }, 'the master may assign to it again');
    return this.view(workerId);
  }

  /** Graceful stop (running tasks finish); `restart`: it exits for its supervisor to restart it. */
  async stopWorker(workerId: string, restart: boolean): Promise<WorkerView> {
    this.online(workerId);
    this.stopping.add(workerId);
    await this.command(
      workerId,
      { type: 'shutdown', restart },
      'the master gives it no new work; it may not have heard the stop',
    );
    return this.view(workerId);
  }

  /** Live settings; the worker applies them whole or refuses them (422 with its reason). */
  async configure(workerId: string, config: LiveConfig): Promise<WorkerView> {
    this.online(workerId);
    await this.command(workerId, { type: 'config', config }, 'its settings may not have changed');
    return this.view(workerId);
  }

  // ── many workers ────────────────────────────────────────────────────────

  /** Drains every worker the selector covers, now and whenever one joins, until uncordoned. */
  async cordon(selector: WorkerSelector, by: Operator): Promise<CordonOutcome[]> {
    if (!this.cordons.some((c) => sameSelector(c.selector, selector))) {
      this.cordons.push({ selector, at: Date.now(), by });
      this.emit('change');
    }
    return this.each(selector, (id) => this.drain(id, by));
  }

  /** Lifts the cordon with this selector, and resumes the workers it covers. */
  async uncordon(selector: WorkerSelector): Promise<CordonOutcome[]> {
    const at = this.cordons.findIndex((c) => sameSelector(c.selector, selector));
    if (at >= 0) this.cordons.splice(at, 1);
    for (const [workerId] of this.drained) {
      const record = this.deps.registry.get(workerId);
      if (record?.state !== 'online' && (!record || matchesSelector(record, selector))) {
        this.drained.delete(workerId);
      }
    }
    this.emit('change');
    return this.each(selector, (id) => this.resume(id));
  }

  private async each(
    selector: WorkerSelector,
    act: (workerId: string) => Promise<unknown>,
  ): Promise<CordonOutcome[]> {
    const ids = this.deps.registry
      .list()
      .filter((r) => r.state === 'online' && matchesSelector(r, selector))
      .map((r) => r.status.id);
    return Promise.all(
      ids.map((workerId) =>
        act(workerId).then(
          () => ({ workerId, ok: true }),
          (err: unknown) => ({ workerId, ok: false, error: (err as Error).message }),
        ),
      ),
    );
  }

  // ── all dispatch ────────────────────────────────────────────────────────

  /**
   * Emergency stop: no lane takes a task from now on (queued tasks stay
   * queued); `cancel` also ends every running task, through the lifecycle.
   */
  async stopAll(running: 'cancel' | 'keep', by: Operator): Promise<FleetState> {
    this.halted ??= { at: Date.now(), by, running, cancelled: 0 };
    this.halted.running = running === 'cancel' ? 'cancel' : this.halted.running;
    this.log.warn({ running, by }, 'dispatch stopped');
    this.emit('change');
    if (running === 'cancel') {
      const at = Date.now();
      const ends = await Promise.allSettled(
        this.deps.leases.all().map((lease) =>
          this.deps.lifecycle.end(lease.taskId, {
            state: 'cancelled',
            reason: 'cancelled by an emergency stop',
            at,
          }),
        ),
      );
      const cancelled = ends.filter((end) => end.status === 'fulfilled').length;
      if (this.halted) this.halted.cancelled += cancelled;
      this.log.warn({ cancelled }, 'running tasks cancelled by the emergency stop');
      this.emit('change');
    }
    return this.state();
  }

  /** Dispatch takes again; queued tasks run. */
  resumeAll(by: Operator): FleetState {
    if (this.halted) {
      this.halted = undefined;
      this.log.info({ by }, 'dispatch resumed');
      this.emit('change');
      this.emit('open');
    }
    return this.state();
  }

  state(): FleetState {
    const { halted } = this;
    return {
      dispatch: halted ? 'stopped' : 'running',
      ...(halted && {
        stopped: {
          at: halted.at,
          by: halted.by,
          running: halted.running,
          cancelled: halted.cancelled,
        },
      }),
      drained: [...this.drained].map(([workerId, mark]) => ({ workerId, ...mark })),
      cordons: this.cordons.map((c) => ({ selector: c.selector, at: c.at, by: c.by })),
    };
  }

  /** How many workers an operator holds from new work (drained or stopping), for /metrics. */
  heldWorkers(): number {
    return new Set([...this.drained.keys(), ...this.stopping]).size;
  }

  // ── the common steps ────────────────────────────────────────────────────

  private online(workerId: string): WorkerRecord {
    const record = this.deps.registry.get(workerId);
    if (!record) throw new NotFoundError(`no worker ${workerId}`);
    if (record.state !== 'online') throw new WorkerOfflineError(workerId);
    return record;
  }

  private view(workerId: string): WorkerView {
    const record = this.deps.registry.get(workerId);
    if (!record) throw new NotFoundError(`no worker ${workerId}`);
    return toWorkerView(record);
  }

  /** Sends the control with a fresh id; resolves on an `ok` ack, throws on a refusal or none in time. */
  private async command(workerId: string, control: Unsent<Command>, ifLate: string): Promise<void> {
    const id = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const acked = new Promise<ControlAck | undefined>((resolve) => {
      this.waiting.set(id, resolve);
      timer = setTimeout(() => resolve(undefined), this.ackTimeoutMs);
    });
    this.deps.lifecycle.tellWorker(workerId, { ...control, id } as Command);
    const ack = await acked.finally(() => {
      clearTimeout(timer);
      this.waiting.delete(id);
    });
    if (!ack) throw new NotAcknowledgedError(workerId, this.ackTimeoutMs, ifLate);
    if (!ack.ok) throw new WorkerRefusedError(workerId, ack.error ?? 'no reason given');
    this.log.info({ workerId, control: control.type }, 'worker acknowledged');
  }
}
