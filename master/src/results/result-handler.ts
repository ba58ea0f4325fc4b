/**
 * Takes chunks and final results from workers: checks the fencing lease,
 * relays chunks to the task's session, and hands each final report to the
 * task lifecycle, which commits the outcome exactly once.
 */
import type { Logger } from '../../../common/logger.ts';
import type { TaskResult__Output } from '../../../proto/src/grpc.ts';
import { isRetryableErrorCode, type ResultRejectReason } from '../../../proto/src/schemas/codes.ts';
import type { Adopter } from '../dispatch/adoption.ts';
import type { Lease, LeaseTable } from '../dispatch/leases.ts';
import type { Outcome, TaskLifecycle } from '../tasks/lifecycle.ts';
import type { TaskJobResult } from '../tasks/task-data.ts';
import type { TaskEvents } from '../tasks/task-events.ts';

export type Verdict = { accepted: true } | { accepted: false; reason: ResultRejectReason };

export interface ResultHandlerDeps {
  leases: LeaseTable;
  lifecycle: Pick<TaskLifecycle, 'complete' | 'fail'>;
  adopter: Pick<Adopter, 'adopt'>;
  events: TaskEvents;
  log: Logger;
}

export interface ChunkInput {
  taskId: string;
  attempt: number;
  lease: string;
  seq: number;
  text: string;
}

export class ResultHandler {
  private readonly log: Logger;
  /** Rejected chunks/results by reason, for metrics and tests. */
  readonly rejected = new Map<ResultRejectReason, number>();

  constructor(private readonly deps: ResultHandlerDeps) {
    this.log = deps.log.child({ component: 'results' });
  }

  /** Synchronous for a known attempt; a promise while an unknown one is being adopted. */
  chunk(workerId: string, chunk: ChunkInput): Verdict | Promise<Verdict> {
    const fenced = this.fence(workerId, chunk.taskId, chunk.attempt, chunk.lease);
    if ('reason' in fenced) {
      if (fenced.reason !== 'unknown_task')
        return this.reject(fenced.reason, chunk.taskId, workerId);
      return this.adopt(workerId, chunk).then((adopted) =>
        'reason' in adopted
          ? this.reject(adopted.reason, chunk.taskId, workerId)
          : this.chunk(workerId, chunk),
      );
    }
    const lease = fenced.lease;
    lease.confirmed = true;
    if (chunk.seq < lease.nextSeq) return { accepted: true }; // a resend we already have
    // A gap (an adopted attempt's earlier chunks, say) leaves nothing to continue from.
    lease.streamed =
      lease.streamed !== undefined && chunk.seq === lease.nextSeq
        ? lease.streamed + chunk.text
        : undefined;
    lease.nextSeq = chunk.seq + 1;
    lease.firstChunkAt ??= Date.now();
    this.deps.events.emit('chunk', lease.sessionId, {
      taskId: lease.taskId,
      attempt: lease.attempt,
      seq: chunk.seq,
      text: chunk.text,
    });
    return { accepted: true };
  }

  async final(workerId: string, result: TaskResult__Output): Promise<Verdict> {
    let fenced = this.fence(workerId, result.taskId, result.attempt, result.lease);
    if ('reason' in fenced && fenced.reason === 'unknown_task') {
      fenced = await this.adopt(workerId, result); // e.g. this master restarted meanwhile
    }
    if ('reason' in fenced) return this.reject(fenced.reason, result.taskId, workerId);
    const lease = fenced.lease;
    lease.confirmed = true;
    if (result.error) {
      const code = result.errorCode;
      const retryable = isRetryableErrorCode(code);
      return this.verdict(
        await this.deps.lifecycle.fail(lease, result.error, code, retryable),
        lease,
      );
    }
    const committedAt = Date.now();
    const value: TaskJobResult = {
      text: result.text,
      workerId,
      workerKind: lease.workerKind,
      attempt: lease.attempt,
      assignedAt: lease.assignedAt,
      startedAt: Number(result.startedAt) || lease.assignedAt,
      finishedAt: Number(result.finishedAt) || committedAt,
      processingMs: Number(result.processingMs),
      committedAt,
      usage: result.usage
        ? {
            inputTokens: result.usage.inputTokens,
            outputTokens: result.usage.outputTokens,
            ...(result.usage.estimated && { estimated: true }),
          }
        : undefined,
      ...(lease.firstChunkAt !== undefined && { firstChunkAt: lease.firstChunkAt }),
    };
    return this.verdict(await this.deps.lifecycle.complete(lease, value), lease);
  }

  private verdict(outcome: Outcome, lease: Lease): Verdict {
    if (outcome === 'stored') return { accepted: true };
    if (outcome === 'stale_lease') return this.reject(outcome, lease.taskId, lease.workerId);
    return { accepted: false, reason: outcome };
  }

  /** An attempt this master does not know: take it over if the store still holds it under its lease. */
  private adopt(
    workerId: string,
    ref: { taskId: string; attempt: number; lease: string },
  ): Promise<{ lease: Lease } | { reason: ResultRejectReason }> {
    if (!ref.lease) return Promise.resolve({ reason: 'unknown_task' });
    return this.deps.adopter.adopt(workerId, {
      taskId: ref.taskId,
      attempt: ref.attempt,
      lease: ref.lease,
    });
  }

  private fence(
    workerId: string,
    taskId: string,
    attempt: number,
    token: string,
  ): { lease: Lease } | { reason: ResultRejectReason } {
    const lease = this.deps.leases.get(taskId);
    if (!lease)
      return { reason: this.deps.leases.isSettling(taskId) ? 'stale_lease' : 'unknown_task' };
    if (lease.attempt !== attempt || lease.token !== token) return { reason: 'stale_lease' };
    if (lease.workerId !== workerId) return { reason: 'not_lease_owner' };
    return { lease };
  }

  private reject(reason: ResultRejectReason, taskId: string, workerId: string): Verdict {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
    this.log.warn({ taskId, workerId, reason }, 'result rejected');
    return { accepted: false, reason };
  }
}
