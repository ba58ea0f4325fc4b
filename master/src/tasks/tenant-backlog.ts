/**
 * How many tasks each tenant has queued or running, counted from what this
 * master submitted and saw end: no store scan per submission. A task whose
 * end this master never hears (another master finished it, or it ran before
 * a restart) stops counting once its timeout has surely passed, since by
 * then the deadline sweeper has ended it.
 */

export class TenantBacklog {
  /** Tenant → task id → when the task stops counting at the latest (ms). */
  private readonly tasks = new Map<string, Map<string, number>>();
  private readonly tenantOf = new Map<string, string>();

  /** Unfinished tasks of the tenant, as of `now`. */
  count(tenant: string, now: number): number {
    const tasks = this.tasks.get(tenant);
    if (!tasks) return 0;
    for (const [taskId, until] of tasks) if (until <= now) this.remove(taskId);
    return this.tasks.get(tenant)?.size ?? 0;
  }

  /**
   * Counts the task for the tenant unless the tenant already has `cap`
   * unfinished ones. 'added': now counted; 'known': it was counted already
   * (a retried submission); 'full': refused.
   */
  admit(
    tenant: string,
    taskId: string,
    until: number,
    cap: number,
    now: number,
  ): 'added' | 'known' | 'full' {
    const tasks = this.tasks.get(tenant);
    if (tasks?.has(taskId)) return 'known';
    // Expired entries are dropped only when they could decide the answer.
    if ((tasks?.size ?? 0) >= cap && this.count(tenant, now) >= cap) return 'full';
    let entry = this.tasks.get(tenant);
    if (!entry) {
      entry = new Map();
      this.tasks.set(tenant, entry);
    }
    entry.set(taskId, until);
    this.tenantOf.set(taskId, tenant);
    return 'added';
  }

  /** The task ended (or its submission failed): it no longer counts. */
  remove(taskId: string): void {
    const tenant = this.tenantOf.get(taskId);
    if (tenant === undefined) return;
    this.tenantOf.delete(taskId);
    const tasks = this.tasks.get(tenant);
    tasks?.delete(taskId);
    if (tasks?.size === 0) this.tasks.delete(tenant);
  }
}
