/**
 * The master's side of the audit trail: appends records to the queue's
 * store (StoreAudit) and reads pages back. An append that fails (the store
 * is away) is logged with the whole record, never thrown at the caller: the
 * action it records has happened either way.
 */
import type { Logger } from '../../../common/logger.ts';
import type { AuditEntry, AuditPage, AuditQuery } from '../../../proto/src/schemas/audit.ts';
import type { StoreAudit } from '../store/types.ts';

/** An entry as callers give it; `at` defaults to now. */
export type AuditInput = Omit<AuditEntry, 'at'> & { at?: number };

export class AuditLog {
  private readonly log: Logger;
  /** Appends on their way, so a closing master waits for them before its store closes. */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly store: StoreAudit,
    log: Logger,
  ) {
    this.log = log.child({ component: 'audit' });
  }

  /** Appends one record; resolves once it is stored, or its failure logged. */
  record(input: AuditInput): Promise<void> {
    const entry: AuditEntry = { ...input, at: input.at ?? Date.now() };
    const write = this.store.append(entry).then(
      () => this.log.info({ audit: entry }, 'audited'),
      (err: unknown) => this.log.error({ err, audit: entry }, 'audit record not stored'),
    );
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
    return write;
  }

  /** Waits for the appends on their way (the store closes after this). */
  async close(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  page(query: AuditQuery): Promise<AuditPage> {
    return this.store.page(query);
  }
}
