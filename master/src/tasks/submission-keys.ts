/**
 * Retried submissions. A submission with an Idempotency-Key (REST) or a
 * clientId (Socket.IO) always gets the same task id suffix. The id also names
 * its queue, which depends on the model; a submission that names no model gets
 * the first model an online worker serves, which may differ between two tries.
 * For those, the task id of the first try is kept in the store's kv facet, so
 * the retry finds it whatever the workers serve by then.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from '../../../common/logger.ts';
import type { StoreKv } from '../store/types.ts';
import { DEFAULT_TENANT } from './task-data.ts';

/** How long a retry of a model-less keyed submission still finds its first task. */
export const SUBMISSION_KEY_TTL_MS = 24 * 3_600_000;

export interface SubmissionKey {
  sessionId?: string;
  clientId?: string;
  idempotencyKey?: string;
  tenant?: string;
}

/** The request's key as text, or undefined for a submission that carries none. */
function keyText(ctx: SubmissionKey): string | undefined {
  const tenant = ctx.tenant ?? DEFAULT_TENANT;
  // JSON arrays: no separator inside an id can make two different requests read alike.
  if (ctx.idempotencyKey) {
    return tenant === DEFAULT_TENANT
      ? `key:${ctx.idempotencyKey}`
      : JSON.stringify(['key', tenant, ctx.idempotencyKey]); // tenants never share keys
  }
  if (ctx.clientId && ctx.sessionId) {
    return JSON.stringify(['client', tenant, ctx.sessionId, ctx.clientId]);
  }
  return undefined;
}

/** A stable task id suffix for a retried submission, or a fresh one. */
export function uniquePart(ctx: SubmissionKey): string {
  const key = keyText(ctx);
  if (!key) return randomUUID().replaceAll('-', '');
  return createHash('sha256').update(key).digest('base64url').slice(0, 32);
}

export class SubmissionKeys {
  constructor(
    private readonly kv: StoreKv | undefined,
    private readonly log: Logger,
  ) {}

  /** The task id an earlier try of this model-less keyed submission got, if any. */
  async earlier(ctx: SubmissionKey): Promise<string | undefined> {
    if (!this.kv || !keyText(ctx)) return undefined;
    try {
      const found = await this.kv.get(`submission:${uniquePart(ctx)}`);
      return typeof found === 'string' ? found : undefined;
    } catch (err) {
      this.log.debug({ err }, 'submission key not readable; treating as new');
      return undefined;
    }
  }

  /** Remembers the task id of a model-less keyed submission for its retries. */
  remember(ctx: SubmissionKey, taskId: string): void {
    if (!this.kv || !keyText(ctx)) return;
    this.kv
      .set(`submission:${uniquePart(ctx)}`, taskId, SUBMISSION_KEY_TTL_MS)
      .catch((err) => this.log.warn({ err, taskId }, 'submission key not stored'));
  }
}
