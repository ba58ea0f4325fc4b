/**
 * Worker records and a discrete-event load driver for the dispatch policy
 * tests. Pure: a simulated clock, no timers, no I/O.
 */
import type { DispatchPolicy, TaskNeeds } from '../../../master/src/dispatch/policies/types.ts';
import {
  canServe,
  freeSlots,
  type WorkerRecord,
} from '../../../master/src/registry/worker-record.ts';
import type { GpuMetrics, WorkerKind } from '../../../proto/src/schemas/worker.ts';

export const need: TaskNeeds = { model: 'echo', gpu: false };

export interface WorkerSpec {
  slots?: number;
  /** Tasks already running (ids `pre-0`, `pre-1`, …). */
  active?: number;
  weight?: number;
  kind?: WorkerKind;
  models?: string[];
  labels?: Record<string, string>;
  /** Latest heartbeat metrics; none → the worker has not heartbeated yet. */
  load?: { cpuPct: number; memPct: number; gpuUtil?: number[] };
}

export function worker(id: string, spec: WorkerSpec = {}): WorkerRecord {
  const slots = spec.slots ?? 2;
  const gpus: GpuMetrics[] = (spec.load?.gpuUtil ?? []).map((utilPct, index) => ({
    index,
    name: 'test gpu',
    utilPct,
    memUsedMb: 0,
    memTotalMb: 1,
  }));
  return {
    status: {
      state: 'online',
      id,
      kind: spec.kind ?? 'cpu',
      models: spec.models ?? ['echo'],
      providers: ['echo'],
      slots,
      labels: spec.labels ?? {},
      weight: spec.weight ?? 1,
      version: 'test',
      host: 'h',
      heartbeatMs: 1000,
      startedAt: 1,
    },
    state: 'online',
    lastSeen: 0,
    heartbeat: spec.load
      ? {
          id,
          ts: 0,
          cpuPct: spec.load.cpuPct,
          mem: { usedPct: spec.load.memPct, totalMb: 1, rssMb: 1 },
          gpus,
          freeSlots: slots,
          active: [],
          draining: false,
        }
      : undefined,
    active: new Map(Array.from({ length: spec.active ?? 0 }, (_, i) => [`pre-${i}`, 1])),
    holds: new Set(),
  };
}

/** What the registry hands a lane: capable workers with a free slot. */
export function available(workers: readonly WorkerRecord[], task: TaskNeeds = need) {
  return workers.filter((w) => canServe(w, task) && freeSlots(w) > 0);
}

/** A small deterministic PRNG (mulberry32), so "random" scripts repeat exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function countBy(ids: readonly (string | undefined)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const id of ids) if (id !== undefined) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}

export interface SimWorker {
  record: WorkerRecord;
  /** Processing time of every task on this worker, in simulated ms. */
  latencyMs: number;
}

export interface SimOptions {
  policy: DispatchPolicy;
  workers: SimWorker[];
  tasks: number;
  /** A task arrives every this many simulated ms. */
  arrivalEveryMs: number;
  /**
   * Like a lane woken by a freed slot with nothing queued: pick, find no job,
   * `unpick`. On by default, because that is what the master does.
   */
  idlePolls?: boolean;
  /** Called after every assignment with all workers, e.g. to watch the balance. */
  onAssign?: (workers: readonly WorkerRecord[]) => void;
}

export interface SimResult {
  /** Tasks run per worker id. */
  counts: Record<string, number>;
  /** Largest in-flight count seen per worker id. */
  peak: Record<string, number>;
  /** Simulated ms from the first arrival to the last completion. */
  makespanMs: number;
}

/**
 * Drives a policy the way the dispatcher does: tasks arrive at a fixed pace
 * and wait in a FIFO while no worker has a free slot; a completion frees the
 * slot, reports the processing time to `observe`, and dispatches the next
 * waiting task.
 */
export function simulate(options: SimOptions): SimResult {
  const { policy, workers } = options;
  const records = workers.map((w) => w.record);
  const latency = new Map(workers.map((w) => [w.record.status.id, w.latencyMs]));
  const running: Array<{ taskId: string; workerId: string; doneAt: number }> = [];
  const waiting: string[] = [];
  const counts: Record<string, number> = {};
  const peak: Record<string, number> = {};
  let now = 0;

  const dispatch = (): boolean => {
    const target = policy.pick(available(records), need);
    if (!target) return false;
    const workerId = target.status.id;
    const taskId = waiting.shift();
    if (taskId === undefined) {
      policy.unpick?.(workerId, need);
      return false;
    }
    target.active.set(taskId, 1);
    counts[workerId] = (counts[workerId] ?? 0) + 1;
    peak[workerId] = Math.max(peak[workerId] ?? 0, target.active.size);
    running.push({ taskId, workerId, doneAt: now + latency.get(workerId)! });
    options.onAssign?.(records);
    return true;
  };

  /** A lane steps until a step makes no progress (then one pick found no job, or no worker). */
  const wake = () => {
    if (options.idlePolls ?? true) while (dispatch());
    else while (waiting.length > 0 && dispatch());
  };

  const completeUntil = (time: number) => {
    for (;;) {
      running.sort((a, b) => a.doneAt - b.doneAt);
      const next = running[0];
      if (!next || next.doneAt > time) return;
      running.shift();
      now = next.doneAt;
      records.find((r) => r.status.id === next.workerId)!.active.delete(next.taskId);
      policy.observe?.({
        workerId: next.workerId,
        model: need.model,
        processingMs: latency.get(next.workerId)!,
      });
      wake();
    }
  };

  for (let i = 0; i < options.tasks; i++) {
    completeUntil(i * options.arrivalEveryMs);
    now = i * options.arrivalEveryMs;
    waiting.push(`t${i}`);
    wake();
  }
  completeUntil(Number.POSITIVE_INFINITY);
  return { counts, peak, makespanMs: now };
}
