import type { WorkerOfflineReason } from '../../../proto/src/schemas/codes.ts';
import { LOCAL_PROVIDERS } from '../../../proto/src/schemas/models.ts';
import type {
  Heartbeat,
  LoadedModel,
  WorkerOnline,
  WorkerView,
} from '../../../proto/src/schemas/worker.ts';

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
  /**
   * The models this worker runs locally (they answer at once only while
   * loaded), from its status: see `localModelsOf`. Absent: none.
   */
  local?: ReadonlySet<string>;
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

/**
 * The models of a status that run on the worker itself: its catalog names a
 * local provider for them, or, without a catalog entry, the worker's only
 * provider is local. Undefined when there are none (every remote worker), so
 * a dispatch step asks nothing more of it.
 */
export function localModelsOf(status: WorkerOnline): ReadonlySet<string> | undefined {
  const providerOf = new Map(status.catalog?.map((info) => [info.name, info.provider]));
  const only = status.providers.length === 1 ? status.providers[0] : undefined;
  const local = status.models.filter((model) => {
    const provider = providerOf.get(model) ?? only;
    return provider !== undefined && LOCAL_PROVIDERS.includes(provider);
  });
  return local.length > 0 ? new Set(local) : undefined;
}

/** True when the worker's last heartbeat lists the model as held in memory. */
export function holdsLoaded(record: WorkerRecord, model: string): boolean {
  const loaded = record.heartbeat?.loaded;
  if (!loaded) return false;
  for (const entry of loaded) if (entry.name === model) return true;
  return false;
}

/**
 * True when the worker can start the model without loading it first: a
 * remote model always, a local one while its heartbeat lists it loaded.
 */
export function isReadyFor(record: WorkerRecord, model: string): boolean {
  return record.local?.has(model) !== true || holdsLoaded(record, model);
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
  if (!sameLoadedNames(before.loaded, after.loaded)) return false;
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

const NONE_LOADED: readonly LoadedModel[] = [];

/** The same models held in memory, in the same order (the panel shows which are loaded). */
function sameLoadedNames(
  before: readonly LoadedModel[] | undefined,
  after: readonly LoadedModel[] | undefined,
): boolean {
  const a = before ?? NONE_LOADED;
  const b = after ?? NONE_LOADED;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]?.name !== b[i]?.name) return false;
  return true;
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
  const { mem, gpus, active, loaded } = kept;
  Object.assign(kept, next);
  kept.mem = Object.assign(mem, next.mem);
  // An empty list stays the one already kept.
  if (gpus.length === 0 && next.gpus.length === 0) kept.gpus = gpus;
  if (active.length === 0 && next.active.length === 0) kept.active = active;
  // A heartbeat without the list says nothing is loaded: the kept one must not linger.
  // Workers without local models never send one, and their heartbeats keep their shape.
  if (loaded !== undefined || next.loaded !== undefined)
    kept.loaded = loaded?.length === 0 && next.loaded?.length === 0 ? loaded : next.loaded;
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
    weight: status.weight,
    draining: status.draining === true || heartbeat?.draining === true,
    active: record.active.size,
    host: status.host,
    version: status.version,
    lastSeen: record.lastSeen,
    cpuPct: heartbeat?.cpuPct,
    memPct: heartbeat?.mem.usedPct,
    gpus: heartbeat?.gpus ?? [],
    ...(heartbeat?.loaded && { loaded: heartbeat.loaded.map((m) => m.name) }),
  };
}
