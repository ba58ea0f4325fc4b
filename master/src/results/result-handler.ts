/**
 * Takes chunks and final results from workers, checks the fencing lease, and
 * commits each task's outcome to the queue exactly once.
 */
import { UnrecoverableError } from 'bullmq';
import type { Logger } from '../../../common/logger.ts';
import type { TaskResult__Output } from '../../../proto/src/grpc.ts';
import { isRetryableErrorCode, type ResultRejectReason } from '../../../proto/src/schemas/codes.ts';
import type { ResultCache } from '../cache/result-cache.ts';
import type { Adopter } from '../dispatch/adoption.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { Lease, LeaseTable } from '../dispatch/leases.ts';
import type { DispatchPolicy } from '../dispatch/policies/types.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { SecretVault } from '../tasks/secret-vault.ts';
import { DEFAULT_TENANT, type TaskJobResult, toTaskView } from '../tasks/task-data.ts';
import type { TaskEvents } from '../tasks/task-events.ts';

export type Verdict = { accepted: true } | { accepted: false; reason: ResultRejectReason };

export interface ResultHandlerDeps {
  policy: DispatchPolicy;
  leases: LeaseTable;
  registry: WorkerRegistry;
  dispatcher: Dispatcher;
  adopter: Adopter;
  events: TaskEvents;
  vault: SecretVault;
  log: Logger;
  /** Keeps each committed answer for identical later requests (when enabled). */
  cache?: ResultCache;
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
    lease.nextSeq = chunk.seq + 1;
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
    if (result.error) return this.fail(lease, result);
    const { leases, registry, events, vault } = this.deps;
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
        ? { inputTokens: result.usage.inputTokens, outputTokens: result.usage.outputTokens }
        : undefined,
    };
    // Take the lease first: a duplicate final arriving meanwhile is then stale.
    if (!leases.settle(lease)) return this.reject('stale_lease', lease.taskId, workerId);
    try {
      await lease.job.moveToCompleted(value, lease.token, false);
      leases.unsettle(lease, false);
    } catch (err) {
      leases.unsettle(lease, true);
      this.log.error({ err, taskId: lease.taskId }, 'result could not be committed');
      return { accepted: false, reason: 'store_unavailable' };
    }
    registry.release(workerId, lease.taskId);
    this.deps.policy.observe?.({
      workerId,
      model: lease.job.data.model,
      processingMs: value.processingMs,
    });
    vault.drop(lease.taskId);
    lease.job.returnvalue = value;
    const data = lease.job.data;
    if (!data.noCache) {
      const { text, usage } = value;
      this.deps.cache?.remember(
        { ...data, tenant: data.tenant ?? DEFAULT_TENANT },
        { text, usage, workerId },
      );
    }
    this.log.info(
      { taskId: lease.taskId, workerId, attempt: lease.attempt, processingMs: value.processingMs },
      'task completed',
    );
    events.emit('completed', lease.sessionId, toTaskView(lease.job, 'completed'));
    return { accepted: true };
  }

  private async fail(lease: Lease, result: TaskResult__Output): Promise<Verdict> {
    const { leases, registry, events, vault, dispatcher } = this.deps;
    if (isRetryableErrorCode(result.errorCode)) {
      await dispatcher.requeue(lease, `${lease.workerId}: ${result.error}`);
      return { accepted: true };
    }
    if (!leases.settle(lease)) return this.reject('stale_lease', lease.taskId, lease.workerId);
    try {
      // A provider error (bad key, bad prompt) fails the same way everywhere: do not retry it.
      await lease.job.moveToFailed(new UnrecoverableError(result.error), lease.token, false);
      leases.unsettle(lease, false);
    } catch (err) {
      leases.unsettle(lease, true);
      this.log.error({ err, taskId: lease.taskId }, 'failure could not be committed');
      return { accepted: false, reason: 'store_unavailable' };
    }
    registry.release(lease.workerId, lease.taskId);
    vault.drop(lease.taskId);
    lease.job.failedReason = result.error;
    lease.job.finishedOn = Date.now();
    this.log.warn(
      { taskId: lease.taskId, code: result.errorCode, error: result.error },
      'task failed',
    );
    events.emit('failed', lease.sessionId, toTaskView(lease.job, 'failed'));
    return { accepted: true };
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
