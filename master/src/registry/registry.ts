/**
 * The worker registry: fed by the retained status topic (online record or
 * Last Will) and heartbeats; tracks the master's own slot accounting.
 */
import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import type { Logger } from '../../../common/logger.ts';
import { parseMqttJson } from '../../../common/mqtt.ts';
import type { WorkerOfflineReason } from '../../../proto/src/schemas/codes.ts';
import type { ModelEntry } from '../../../proto/src/schemas/models.ts';
import {
  type ActiveLease,
  type ControlAck,
  heartbeatSchema,
  workerStatusSchema,
} from '../../../proto/src/schemas/worker.ts';
import type { FleetSummary, WorkersUpdateEvent } from '../../../proto/src/socket-events.ts';
import type { Topics } from '../../../proto/src/topics.ts';
import { HeartbeatMeter } from './heartbeat-meter.ts';
import { FORGET_OFFLINE_MS, isWorkerDead } from './liveness.ts';
import { modelEntries } from './model-view.ts';
import { WillGrace } from './will-grace.ts';
import {
  freeSlots,
  holdsLoaded,
  keepHeartbeat,
  localModelsOf,
  type SlotHold,
  samePanelLoad,
  toWorkerView,
  type WorkerNeed,
  type WorkerRecord,
} from './worker-record.ts';
import { WorkerTable } from './worker-table.ts';

/**
 * A worker heard from but not known online gets its retained status asked for
 * again at most this often. A broker that fell behind may drop a status on
 * its way to a busy master (Mosquitto keeps at most `max_queued_messages` per
 * client), and the worker publishes it only when it connects: without this,
 * it would heartbeat unseen until its next reconnect.
 */
export const STATUS_REFETCH_MS = 10_000;
/** Most workers whose status is being asked for again at once. */
const MAX_REFETCHES = 1_000;

export interface LostTask {
  taskId: string;
  attempt: number;
}

export interface RegistryEvents {
  /** Anything a UI would redraw for: online/offline, load, slots. */
  change: [];
  online: [workerId: string];
  /** The worker is gone (Last Will, clean shutdown, missed heartbeats, or restarted); its tasks are listed. */
  offline: [workerId: string, reason: WorkerOfflineReason, lost: LostTask[]];
  /** A slot became free somewhere: dispatch may proceed. */
  capacity: [];
  /** A heartbeat from an online worker, with the attempts it says it runs. */
  active: [workerId: string, active: ActiveLease[]];
  /** An online worker published a new status without restarting (e.g. a live config change). */
  updated: [workerId: string];
  /** A worker's status answers a control that carried an id. */
  ack: [workerId: string, ack: ControlAck];
}

export interface RegistryOptions {
  mqtt: MqttClient;
  topics: Topics;
  log: Logger;
  /** How often to look for workers that stopped heartbeating (each states its own interval). */
  sweepIntervalMs?: number;
}

export class WorkerRegistry extends EventEmitter<RegistryEvents> {
  private readonly workers = new WorkerTable();
  /** Heartbeats received and applied, and how late (read by the metrics at scrape time). */
  readonly heartbeats = new HeartbeatMeter();
  private readonly log: Logger;
  private readonly sweepIntervalMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly onMessage = (topic: string, payload: Buffer, packet?: { retain?: boolean }) =>
    this.handle(topic, payload, packet?.retain === true);
  /**
   * Workers known only from a retained status (this master just started): they
   * may be running attempts of a previous master, so they get no work until
   * their first heartbeat says what they run.
   */
  private readonly unsettled = new Set<string>();
  /** The master's own broker link is down: it hears nobody, so it judges nobody. */
  private deaf = false;
  private readonly wills: WillGrace;
  /** Worker id → when its retained status was last asked for again. */
  private readonly refetched = new Map<string, number>();
  private readonly onLinkDown = () => {
    if (!this.deaf) this.log.warn('broker link lost: worker liveness paused until it is back');
    this.deaf = true;
    // A broker that shuts down publishes every client's Last Will first: those say nothing.
    for (const workerId of this.wills.workers()) this.withdrawWill(workerId);
  };
  /** Back on the broker: every worker gets a fresh grace period before it can be judged. */
  private readonly onLinkUp = () => {
    if (!this.deaf) return;
    this.deaf = false;
    const now = Date.now();
    for (const record of this.workers.values()) record.lastSeen = now;
    this.log.info('broker link back: worker liveness resumed');
  };

  constructor(private readonly options: RegistryOptions) {
    super();
    this.log = options.log.child({ component: 'registry' });
    this.sweepIntervalMs = options.sweepIntervalMs ?? 250;
    this.wills = new WillGrace();
  }

  async start(): Promise<void> {
    const { mqtt, topics } = this.options;
    mqtt.on('message', this.onMessage);
    mqtt.on('close', this.onLinkDown);
    mqtt.on('offline', this.onLinkDown);
    mqtt.on('connect', this.onLinkUp);
    await mqtt.subscribeAsync([topics.allStatus(), topics.allHeartbeats()], { qos: 1 });
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepIntervalMs);
  }

  stop(): void {
    this.options.mqtt.off('message', this.onMessage);
    this.wills.clear();
    this.options.mqtt.off('close', this.onLinkDown);
    this.options.mqtt.off('offline', this.onLinkDown);
    this.options.mqtt.off('connect', this.onLinkUp);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** True while the master cannot hear the broker (liveness judgements are paused). */
  partitioned(): boolean {
    return this.deaf;
  }

  get(workerId: string): WorkerRecord | undefined {
    return this.workers.get(workerId);
  }

  /** True while a worker with this id is online (enrollment must not hand its identity to another). */
  isOnline(workerId: string): boolean {
    return this.workers.get(workerId)?.state === 'online';
  }

  list(): WorkerRecord[] {
    return this.workers.sorted();
  }

  views() {
    return this.list().map(toWorkerView);
  }

  /**
   * What the chat UI's worker panel shows: at most `max` worker views (online
   * first, by id), the models online workers serve, and the whole fleet in
   * numbers. One pass over the records; only the listed ones become views.
   */
  panel(max: number): WorkersUpdateEvent {
    const fleet: FleetSummary = { online: 0, offline: 0, slots: 0, active: 0, models: {} };
    const online: WorkerRecord[] = [];
    const offline: WorkerRecord[] = [];
    for (const record of this.workers.sorted()) {
      if (record.state !== 'online') {
        fleet.offline += 1;
        if (offline.length < max) offline.push(record);
        continue;
      }
      fleet.online += 1;
      fleet.slots += record.status.slots;
      fleet.active += record.active.size;
      for (const model of record.status.models) {
        const served = fleet.models[model] ?? { cpu: 0, gpu: 0, local: false, loaded: 0 };
        fleet.models[model] = served;
        served[record.status.kind] += 1;
        if (record.local?.has(model) !== true) continue;
        served.local = true;
        if (holdsLoaded(record, model)) served.loaded += 1;
      }
      if (online.length < max) online.push(record);
    }
    const listed = [...online, ...offline].slice(0, max);
    return { workers: listed.map(toWorkerView), models: Object.keys(fleet.models).sort(), fleet };
  }

  /** How many workers the registry knows (online or offline), without listing them. */
  size(): number {
    return this.workers.size;
  }

  /** Models served by at least one online worker. */
  models(): string[] {
    const models: string[] = [];
    for (const [model, ids] of this.workers.models()) {
      if (ids.some((id) => this.workers.get(id)?.state === 'online')) models.push(model);
    }
    return models.sort();
  }

  /**
   * Every model online workers serve, with who holds it loaded and what the
   * catalogs say of it. Built on demand in one pass over the records.
   */
  modelEntries(): ModelEntry[] {
    return modelEntries(this.workers.sorted());
  }

  /** True when some worker the registry knows (online or offline) names the model in its status. */
  advertises(model: string): boolean {
    return this.workers.hasModel(model);
  }

  /** Online workers that could run the task at all (free slot or not), by id. */
  capable(need: WorkerNeed): WorkerRecord[] {
    return this.workers.capable(need);
  }

  /** Capable workers with a free slot right now. */
  available(need: WorkerNeed): WorkerRecord[] {
    return this.capable(need).filter((w) => freeSlots(w) > 0 && !this.unsettled.has(w.status.id));
  }

  /** A task's attempt takes one of the worker's slots. */
  reserve(workerId: string, taskId: string, attempt: number): void {
    this.workers.get(workerId)?.active.set(taskId, attempt);
    this.emit('change');
  }

  /** The task's slot is free again. */
  release(workerId: string, taskId: string): void {
    this.wills.forget(workerId, taskId);
    const record = this.workers.get(workerId);
    if (record?.active.delete(taskId)) {
      this.emit('capacity');
      this.emit('change');
    }
  }

  /** Holds one free slot of the worker for a moment (a take or an adoption in flight). */
  hold(workerId: string, hold: SlotHold): void {
    this.workers.get(workerId)?.holds.add(hold);
  }

  /**
   * Lets a held slot go. `freed`: the hold did not turn into a task, and the
   * slot is worth offering again (a take that found nothing needs no wake-up).
   */
  unhold(workerId: string, hold: SlotHold, freed = false): void {
    const record = this.workers.get(workerId);
    if (record?.holds.delete(hold) && freed) this.emit('capacity');
  }

  private handle(topic: string, payload: Buffer, retained: boolean): void {
    const parsedTopic = this.options.topics.parseWorkerTopic(topic);
    if (!parsedTopic) return;
    if (parsedTopic.kind === 'status')
      this.handleStatus(parsedTopic.workerId, topic, payload, retained);
    else if (parsedTopic.kind === 'heartbeat') {
      this.heartbeats.receive();
      this.handleHeartbeat(parsedTopic.workerId, topic, payload);
    }
  }

  private handleStatus(workerId: string, topic: string, payload: Buffer, retained: boolean): void {
    if (payload.length === 0) {
      this.log.debug({ topic }, 'status ignored: empty payload (a cleared retained record)');
      return;
    }
    const status = parseMqttJson(workerStatusSchema, payload, topic, this.log);
    if (!status) return;
    if (status.id !== workerId) {
      this.log.warn({ topic, claimed: status.id }, 'status dropped: id does not match its topic');
      return;
    }
    const existing = this.workers.get(workerId);
    if (status.state === 'offline') {
      if (existing) this.markOffline(existing, status.reason);
      return;
    }
    this.refetched.delete(workerId);
    if (this.wills.startedAt(workerId) === status.startedAt) this.withdrawWill(workerId);
    const now = Date.now();
    if (existing && existing.state === 'online' && existing.status.startedAt !== status.startedAt) {
      // Same id, new process: whatever the old one held is gone.
      this.markOffline(existing, 'restarted');
    }
    const record: WorkerRecord = {
      status,
      state: 'online',
      lastSeen: now,
      heartbeat: existing?.state === 'online' ? existing.heartbeat : undefined,
      active: existing?.state === 'online' ? existing.active : new Map(),
      holds: existing?.state === 'online' ? existing.holds : new Set(),
      local: localModelsOf(status),
    };
    this.workers.set(record);
    if (retained && existing?.state !== 'online') this.unsettled.add(workerId);
    if (existing?.state !== 'online') {
      this.log.info(
        { workerId, kind: status.kind, models: status.models, slots: status.slots },
        'worker online',
      );
      this.emit('online', workerId);
    } else this.emit('updated', workerId);
    if (status.ack && !retained) this.emit('ack', workerId, status.ack);
    this.emit('capacity');
    this.emit('change');
  }

  private handleHeartbeat(workerId: string, topic: string, payload: Buffer): void {
    const heartbeat = parseMqttJson(heartbeatSchema, payload, topic, this.log);
    if (!heartbeat) return;
    if (heartbeat.id !== workerId) {
      this.log.warn(
        { topic, claimed: heartbeat.id },
        'heartbeat dropped: id does not match its topic',
      );
      return;
    }
    const record = this.workers.get(workerId);
    // Slots lowered live leave the attempts already running: those may outnumber them for a while.
    if (record && heartbeat.active.length > Math.max(record.status.slots, record.active.size)) {
      // No worker runs more attempts than it has slots: such a list is forged or broken,
      // and each entry would cost the adopter a store look-up (or a cancel).
      this.log.warn(
        { workerId, listed: heartbeat.active.length, slots: record.status.slots },
        'heartbeat dropped: lists more attempts than the worker has slots',
      );
      return;
    }
    let changed = false;
    if (record?.state === 'offline' && record.offlineReason === 'missed_heartbeats') {
      // It was only silent (paused, cut off): same process, so it comes back. The attempts it
      // held were revoked; the heartbeat's list below gets them stopped.
      this.revive(record);
      changed = true;
    } else if (record?.state !== 'online') {
      // Status first: a heartbeat alone proves nothing. But the status may have been lost.
      this.log.debug({ topic, workerId }, 'heartbeat dropped: worker unknown or offline');
      this.refetchStatus(workerId);
      return;
    }
    const now = Date.now();
    this.heartbeats.apply(heartbeat.ts, now);
    // Most heartbeats of a steady fleet change nothing a person sees: no redraw for those,
    // or ten thousand workers would ask for one every 0.1 ms.
    changed ||= !samePanelLoad(record.heartbeat, heartbeat);
    record.lastSeen = now;
    record.heartbeat = keepHeartbeat(record.heartbeat, heartbeat);
    this.emit('active', workerId, heartbeat.active);
    // Adoption of what it runs (the 'active' listeners) comes before its first new work.
    if (this.unsettled.delete(workerId)) this.emit('capacity');
    if (changed) this.emit('change');
  }

  /**
   * Subscribing to a topic again makes the broker send its retained message
   * again: the worker's status, if it was lost on its way here. The
   * subscription is dropped at once (the wildcard one delivers the rest).
   */
  private refetchStatus(workerId: string): void {
    const now = Date.now();
    const last = this.refetched.get(workerId);
    if (last !== undefined && now - last < STATUS_REFETCH_MS) return;
    if (this.refetched.size >= MAX_REFETCHES) {
      for (const [id, at] of this.refetched)
        if (now - at >= STATUS_REFETCH_MS) this.refetched.delete(id);
      if (this.refetched.size >= MAX_REFETCHES) return;
    }
    this.refetched.set(workerId, now);
    const { mqtt, topics } = this.options;
    const topic = topics.status(workerId);
    mqtt
      .subscribeAsync(topic, { qos: 1 })
      .then(() => mqtt.unsubscribeAsync(topic))
      .catch((err: unknown) =>
        this.log.debug({ workerId, err: String(err) }, 'could not ask for a worker status again'),
      );
  }

  private sweep(): void {
    if (this.deaf) return;
    const now = Date.now();
    for (const record of this.workers.values()) {
      if (record.state === 'offline' && now - record.lastSeen > FORGET_OFFLINE_MS) {
        this.workers.delete(record.status.id); // e.g. an old process id: it will not come back
        this.emit('change');
        continue;
      }
      if (
        record.state === 'online' &&
        isWorkerDead(record.lastSeen, now, record.status.heartbeatMs)
      ) {
        this.markOffline(record, 'missed_heartbeats');
      }
    }
  }

  private revive(record: WorkerRecord): void {
    record.state = 'online';
    record.offlineReason = undefined;
    record.lastSeen = Date.now();
    this.log.info({ workerId: record.status.id }, 'worker back online (heartbeats resumed)');
    this.emit('online', record.status.id);
    this.emit('capacity');
  }

  private markOffline(record: WorkerRecord, reason: WorkerOfflineReason): void {
    if (record.state === 'offline') return;
    const workerId = record.status.id;
    record.state = 'offline';
    record.offlineReason = reason;
    const active = record.active;
    record.active = new Map();
    // A worker that said goodbye with nothing in hand is an orderly stop, not a problem.
    const orderly = reason === 'shutdown' && active.size === 0;
    this.log[orderly ? 'info' : 'warn']({ workerId, reason, lost: active.size }, 'worker offline');
    this.emit('change');
    if (reason !== 'lost') {
      this.revoke(workerId, reason, active);
      return;
    }
    // A Last Will: no new work from now on; its tasks are taken back after a short grace.
    this.wills.hold(workerId, record.status.startedAt, active, () =>
      this.revoke(workerId, reason, active),
    );
  }

  private revoke(workerId: string, reason: WorkerOfflineReason, active: Map<string, number>): void {
    const lost = [...active].map(([taskId, attempt]) => ({ taskId, attempt }));
    this.emit('offline', workerId, reason, lost);
  }

  /** Takes a Last Will back: the worker is as it was (its broker went away, or it reconnected). */
  private withdrawWill(workerId: string): void {
    const held = this.wills.withdraw(workerId);
    if (!held) return;
    const record = this.workers.get(workerId);
    if (!record) return;
    for (const [taskId, attempt] of held) record.active.set(taskId, attempt);
    if (record.state === 'offline') {
      record.state = 'online';
      record.offlineReason = undefined;
      record.lastSeen = Date.now();
    }
    this.log.info({ workerId, kept: held.size }, 'Last Will withdrawn: its tasks stay');
    this.emit('change');
  }
}
