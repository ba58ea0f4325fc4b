/**
 * The master's side of the story, read from its own log lines (every
 * incarnation) and its REST API: each task committed at most once, and only
 * by its latest attempt; the stored outcome equals what the client saw.
 */
import { getTask } from '../../e2e/support/api.ts';
import type { LogLine, ProcessBook } from './process-book.ts';
import type { TaskLedger } from './task-ledger.ts';

interface TaskLog {
  assigned: Array<{ ts: number; attempt: number; workerId: string }>;
  completed: Array<{ ts: number; attempt: number; workerId: string }>;
}

export interface ServerVerdict {
  /** Tasks the master logged "task completed" for more than once. */
  doubleCommits: string[];
  /** Commits of an attempt older than one the master had assigned before. */
  revokedCommits: string[];
  /** "result rejected" lines by reason (fencing at work). */
  rejectedResults: Record<string, number>;
  /** Tasks whose REST view disagrees with the client's terminal event. */
  restMismatches: string[];
  /** REST state of every task the client lost. */
  lostStates: Record<string, string>;
  /** Tasks not cross-checked because the REST API did not answer in time. */
  restUnchecked: number;
  /** Tasks the master logged "task completed" for (at least the completed count). */
  committedTasks: number;
}

/** The whole REST cross-check must finish within this. */
const REST_CHECK_BUDGET_MS = 30_000;

export class ServerView {
  private readonly tasks = new Map<string, TaskLog>();
  readonly rejected: Record<string, number> = {};

  constructor(book: ProcessBook) {
    book.onLine((p, line) => {
      if (p.role === 'master') this.onLine(line);
    });
  }

  /** Cross-checks the logs, and every acked task over REST (a few at a time). */
  async verdict(baseUrl: string, ledgers: TaskLedger[]): Promise<ServerVerdict> {
    const v: ServerVerdict = {
      doubleCommits: [],
      revokedCommits: [],
      rejectedResults: { ...this.rejected },
      restMismatches: [],
      lostStates: {},
      restUnchecked: 0,
      committedTasks: 0,
    };
    for (const [taskId, log] of this.tasks) {
      if (log.completed.length > 0) v.committedTasks++;
      if (log.completed.length > 1) {
        v.doubleCommits.push(`${taskId}: ${JSON.stringify(log.completed)}`);
      }
      for (const commit of log.completed) {
        const newer = log.assigned.find((a) => a.ts <= commit.ts && a.attempt > commit.attempt);
        if (newer) {
          v.revokedCommits.push(
            `${taskId}: committed attempt ${commit.attempt} (${commit.workerId}) after attempt ${newer.attempt} went to ${newer.workerId}`,
          );
        }
      }
    }
    const work = ledgers.flatMap((ledger) =>
      [...ledger.submissions.values()].map((sub) => ({ sub, ledger })),
    );
    const stopAt = Date.now() + REST_CHECK_BUDGET_MS;
    const next = async (): Promise<void> => {
      for (let item = work.pop(); item; item = work.pop()) {
        if (Date.now() > stopAt) {
          v.restUnchecked++;
          continue;
        }
        const { sub, ledger } = item;
        if (!sub.taskId) continue;
        const seen = ledger.tasks.get(sub.taskId)?.terminal?.view;
        const view = await getTask(baseUrl, sub.taskId).catch((err: Error) => err);
        if (view instanceof Error) {
          if (seen) v.restMismatches.push(`${sub.taskId}: ${view.message}`);
          else v.lostStates[sub.taskId] = view.message;
          continue;
        }
        if (!seen) {
          v.lostStates[sub.taskId] =
            `${view.state} (attempt ${view.attempt}, worker ${view.workerId ?? '-'})`;
          continue;
        }
        const same =
          view.state === seen.state &&
          view.result === seen.result &&
          (view.state !== 'completed' || view.attempt === seen.attempt);
        if (!same) {
          v.restMismatches.push(
            `${sub.taskId}: client saw ${seen.state}#${seen.attempt}, REST says ${view.state}#${view.attempt}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, next));
    return v;
  }

  private onLine(line: LogLine): void {
    if (line.msg === 'result rejected') {
      const reason = String(line.reason ?? '?');
      this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
      return;
    }
    if (line.msg !== 'task assigned' && line.msg !== 'task completed') return;
    const taskId = typeof line.taskId === 'string' ? line.taskId : undefined;
    if (!taskId) return;
    let log = this.tasks.get(taskId);
    if (!log) {
      log = { assigned: [], completed: [] };
      this.tasks.set(taskId, log);
    }
    const entry = { ts: line.ts, attempt: Number(line.attempt), workerId: String(line.workerId) };
    (line.msg === 'task assigned' ? log.assigned : log.completed).push(entry);
  }
}
