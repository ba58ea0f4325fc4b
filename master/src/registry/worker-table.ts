/** The registry's records, with an index by model so dispatch looks at few workers, not all. */
import { fitsNeed, isTakingWork, type WorkerNeed, type WorkerRecord } from './worker-record.ts';

/** Where `id` is, or goes, in the sorted `ids`. */
function indexOf(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ids[mid] as string) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Where the record with this id is, or goes, in records sorted by id. */
function indexOfRecord(records: readonly WorkerRecord[], id: string): number {
  let lo = 0;
  let hi = records.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((records[mid] as WorkerRecord).status.id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(ids: string[], id: string): void {
  const at = indexOf(ids, id);
  if (ids[at] !== id) ids.splice(at, 0, id);
}

function removeSorted(ids: string[], id: string): void {
  const at = indexOf(ids, id);
  if (ids[at] === id) ids.splice(at, 1);
}

/** One key per distinct need (labels in key order). */
function needKey(need: WorkerNeed): string {
  const labels = need.labels
    ? Object.entries(need.labels).sort(([a], [b]) => (a < b ? -1 : 1))
    : [];
  return JSON.stringify([need.model, need.gpu, labels]);
}

/**
 * Ids are kept sorted as they come and go, so neither a dispatch step nor a
 * listing sorts: with ten thousand workers, a sort per lane step and per
 * listing was most of what an idle fleet cost the master.
 */
export class WorkerTable {
  private readonly records = new Map<string, WorkerRecord>();
  /** Every id, sorted. */
  private readonly ids: string[] = [];
  /** model → ids of the workers (any state) whose status names it, sorted. */
  private readonly byModel = new Map<string, string[]>();
  /**
   * need → the records whose status fits it, by id (one entry per lane), kept
   * up to date as statuses come and records go: a thousand workers coming
   * online each cost every lane one insertion, not a rebuild. Only whether
   * each is online and not draining is checked again on every look.
   */
  private readonly fitting = new Map<string, { need: WorkerNeed; records: WorkerRecord[] }>();

  get size(): number {
    return this.records.size;
  }

  get(workerId: string): WorkerRecord | undefined {
    return this.records.get(workerId);
  }

  set(record: WorkerRecord): void {
    const id = record.status.id;
    const previous = this.records.get(id);
    if (!previous) insertSorted(this.ids, id);
    const models = record.status.models;
    if (previous && previous.status.models !== models) {
      for (const model of previous.status.models) {
        if (!models.includes(model)) this.unindex(model, id);
      }
    }
    for (const model of models) {
      let ids = this.byModel.get(model);
      if (!ids) {
        ids = [];
        this.byModel.set(model, ids);
      }
      insertSorted(ids, id);
    }
    this.records.set(id, record);
    for (const { need, records } of this.fitting.values()) {
      const at = indexOfRecord(records, id);
      const there = records[at]?.status.id === id;
      const fits = fitsNeed(record, need);
      if (there && fits) records[at] = record;
      else if (there) records.splice(at, 1);
      else if (fits) records.splice(at, 0, record);
    }
  }

  delete(workerId: string): void {
    const record = this.records.get(workerId);
    if (!record) return;
    for (const model of record.status.models) this.unindex(model, workerId);
    removeSorted(this.ids, workerId);
    this.records.delete(workerId);
    for (const { records } of this.fitting.values()) {
      const at = indexOfRecord(records, workerId);
      if (records[at]?.status.id === workerId) records.splice(at, 1);
    }
  }

  values(): IterableIterator<WorkerRecord> {
    return this.records.values();
  }

  /** Every record, by id. */
  sorted(): WorkerRecord[] {
    return this.ids.map((id) => this.records.get(id) as WorkerRecord);
  }

  /** True when some worker (any state) names the model. */
  hasModel(model: string): boolean {
    return this.byModel.has(model);
  }

  /** Models some worker (any state) names, each with its worker ids, sorted. */
  models(): IterableIterator<[string, readonly string[]]> {
    return this.byModel.entries();
  }

  /**
   * Online workers that could run the task at all, by id. With a thousand
   * workers, scanning and sorting all of them on every dispatch step was most
   * of the master's CPU; the model index keeps it to the few that matter.
   */
  capable(need: WorkerNeed): WorkerRecord[] {
    const key = needKey(need);
    let fit = this.fitting.get(key);
    if (!fit) {
      fit = { need, records: [] };
      for (const id of this.byModel.get(need.model) ?? []) {
        const record = this.records.get(id);
        if (record && fitsNeed(record, need)) fit.records.push(record);
      }
      this.fitting.set(key, fit);
    }
    return fit.records.filter(isTakingWork);
  }

  private unindex(model: string, id: string): void {
    const ids = this.byModel.get(model);
    if (!ids) return;
    removeSorted(ids, id);
    if (ids.length === 0) this.byModel.delete(model);
  }
}
