/** The few facts of a metrics snapshot that `flota up`'s status line shows. */
import type { MasterStatus } from '../../../proto/src/ipc.ts';
import type { MetricsSnapshot } from '../../../proto/src/schemas/metrics.ts';

/** BullMQ states of a job no worker holds yet. */
const QUEUED_STATES = ['waiting', 'prioritized', 'delayed'];

export function masterStatusOf(snapshot: MetricsSnapshot): MasterStatus {
  let queued = 0;
  let running = 0;
  for (const counts of Object.values(snapshot.queues)) {
    for (const state of QUEUED_STATES) queued += counts[state] ?? 0;
    running += counts.active ?? 0;
  }
  return {
    type: 'flota:master-status',
    workersOnline: snapshot.workers.online,
    tasksCompleted: snapshot.tasks.completed,
    tasksFailed: snapshot.tasks.failed,
    queued,
    running,
  };
}
