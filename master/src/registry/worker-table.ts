/** The registry's records, with an index by model so dispatch looks at few workers, not all. */
import { canServe, type WorkerNeed, type WorkerRecord } from './worker-record.ts';

const byId = (a: WorkerRecord, b: WorkerRecord) =>
  a.status.id < b.status.id ? -1 : a.status.id > b.status.id ? 1 : 0;

export class WorkerTable {
  private readonly records = new Map<string, WorkerRecord>();
  /** model → ids of the workers (any state) whose status names it. */
  private readonly byModel = new Map<string, Set<string>>();

  get(workerId: string): WorkerRecord | undefined {
    return this.records.get(workerId);
  }

  set(record: WorkerRecord): void {
    const id = record.status.id;
    for (const model of this.records.get(id)?.status.models ?? []) {
      this.byModel.get(model)?.delete(id);
    }
    for (const model of record.status.models) {
      let ids = this.byModel.get(model);
      if (!ids) {
        ids = new Set();
        this.byModel.set(model, ids);
      }
      ids.add(id);
    }
    this.records.set(id, record);
  }

  delete(workerId: string): void {
    for (const model of this.records.get(workerId)?.status.models ?? []) {
      const ids = this.byModel.get(model);
      ids?.delete(workerId);
      if (ids?.size === 0) this.byModel.delete(model);
    }
    this.records.delete(workerId);
  }

  values(): IterableIterator<WorkerRecord> {
    return this.records.values();
  }

  /** Every record, by id. */
  sorted(): WorkerRecord[] {
    return [...this.records.values()].sort(byId);
  }

  /**
   * Online workers that could run the task at all, by id. With a thousand
   * workers, scanning and sorting all of them on every dispatch step was most
   * of the master's CPU; the model index keeps it to the few that matter.
   */
  capable(need: WorkerNeed): WorkerRecord[] {
    const found: WorkerRecord[] = [];
    for (const id of this.byModel.get(need.model) ?? []) {
      const record = this.records.get(id);
      if (record && canServe(record, need)) found.push(record);
    }
    return found.length > 1 ? found.sort(byId) : found;
  }
}
