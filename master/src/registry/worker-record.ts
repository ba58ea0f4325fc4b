import type { WorkerOfflineReason } from '../../../proto/src/schemas/codes.ts';
import type { Heartbeat, WorkerOnline, WorkerView } from '../../../proto/src/schemas/worker.ts';

/** What the master knows about one worker. `active` is the master's own count, not the worker's claim. */
export interface WorkerRecord {
  status: WorkerOnline;
  state: 'online' | 'offline';
  /** Why it went offline (e.g. `missed_heartbeats`, which heartbeats can undo). */
  offlineReason?: WorkerOfflineReason;
  lastSeen: number;
  heartbeat?: Heartbeat;
  /** taskId → attempt, for the assignments this master made and has not seen finish. */
  active: Map<string, number>;
  /**
   * Slots held for a moment without a task yet: a lane's take in flight, an
   * adoption being looked up. No new task lands on a held slot.
   */
  holds: Set<SlotHold>;
}

/** A slot held by a lane or an adoption; `by` says whose (for logs and other lanes). */
export interface SlotHold {
  readonly by: string;
}

export function freeSlots(record: WorkerRecord): number {
  return Math.max(0, record.status.slots - record.active.size - record.holds.size);
}

/** What a task asks of a worker: the model, a GPU, and labels with exact values. */
export interface WorkerNeed {
  model: string;
  gpu: boolean;
  labels?: Readonly<Record<string, string>>;
}

/** True when the worker carries every required label with the same value. */
export function hasLabels(
  record: WorkerRecord,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (!labels) return true;
  const own = record.status.labels;
  return Object.entries(labels).every(
    ([key, value]) => Object.hasOwn(own, key) && own[key] === value,
  );
}

/** What its status says: the model, a GPU if asked, the labels. Changes only with a new status. */
export function fitsNeed(record: WorkerRecord, need: WorkerNeed): boolean {
  if (need.gpu && record.status.kind !== 'gpu') return false;
  if (!hasLabels(record, need.labels)) return false;
  return record.status.models.includes(need.model);
}

/** Online and not draining: changes with every status, heartbeat and liveness verdict. */
export function isTakingWork(record: WorkerRecord): boolean {
  return record.state === 'online' && record.heartbeat?.draining !== true;
}

export function canServe(record: WorkerRecord, need: WorkerNeed): boolean {
  return isTakingWork(record) && fitsNeed(record, need);
}

const rounded = (pct: number | undefined) => (pct === undefined ? undefined : Math.round(pct));

/**
 * True when a new heartbeat shows the same load as the last one, as a person
 * sees it: whole percents of CPU, memory and each GPU, and draining. The
 * worker panel is redrawn only for heartbeats that change what it shows.
 */
export function samePanelLoad(before: Heartbeat | undefined, after: Heartbeat): boolean {
  if (!before) return false;
  if (before.draining !== after.draining) return false;
  if (rounded(before.cpuPct) !== rounded(after.cpuPct)) return false;
  if (rounded(before.mem.usedPct) !== rounded(after.mem.usedPct)) return false;
  if (before.gpus.length !== after.gpus.length) return false;
  return before.gpus.every((gpu, i) => {
    const next = after.gpus[i];
    return (
      next !== undefined &&
      gpu.index === next.index &&
      gpu.name === next.name &&
      rounded(gpu.utilPct) === rounded(next.utilPct) &&
      Math.round(gpu.memUsedMb) === Math.round(next.memUsedMb) &&
      gpu.memTotalMb === next.memTotalMb
    );
  });
}

/**
 * Takes a new heartbeat into the record's own heartbeat object, field by
 * field, and returns the one to keep. A record lives long, so its heartbeat
 * sits in V8's old space; replacing it every second with the freshly parsed
 * one promoted a few objects per heartbeat there (megabytes a second with ten
 * thousand workers, collected only by full collections). Updated in place,
 * the parsed heartbeat dies young.
 */
export function keepHeartbeat(kept: Heartbeat | undefined, next: Heartbeat): Heartbeat {
  if (!kept) return next;
  const { mem, gpus, active } = kept;
  Object.assign(kept, next);
  kept.mem = Object.assign(mem, next.mem);
  // An empty list stays the one already kept.
  if (gpus.length === 0 && next.gpus.length === 0) kept.gpus = gpus;
  if (active.length === 0 && next.active.length === 0) kept.active = active;
  return kept;
}

export function toWorkerView(record: WorkerRecord): WorkerView {
  const { status, heartbeat } = record;
  return {
    id: status.id,
    kind: status.kind,
    state: record.state,
    models: status.models,
    providers: status.providers,
    labels: status.labels,
    slots: status.slots,
    active: record.active.size,
    host: status.host,
    version: status.version,
    lastSeen: record.lastSeen,
    cpuPct: heartbeat?.cpuPct,
    memPct: heartbeat?.mem.usedPct,
    gpus: heartbeat?.gpus ?? [],
  };
}
