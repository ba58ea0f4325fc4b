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

export function canServe(record: WorkerRecord, need: WorkerNeed): boolean {
  if (record.state !== 'online' || record.heartbeat?.draining) return false;
  if (need.gpu && record.status.kind !== 'gpu') return false;
  if (!hasLabels(record, need.labels)) return false;
  return record.status.models.includes(need.model);
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
