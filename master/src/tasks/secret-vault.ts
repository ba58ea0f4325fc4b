/**
 * Per-task provider keys a user typed in the browser. Held in master memory
 * only — never written to the queue store, never logged — and dropped when
 * the task ends. After a master restart such a task runs with the worker's
 * own key (or fails with the provider's message).
 */
export class SecretVault {
  private readonly keys = new Map<string, string>();

  put(taskId: string, apiKey: string | undefined): void {
    if (apiKey) this.keys.set(taskId, apiKey);
  }

  get(taskId: string): string | undefined {
    return this.keys.get(taskId);
  }

  drop(taskId: string): void {
    this.keys.delete(taskId);
  }
}
