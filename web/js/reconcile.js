/**
 * Catches up on tasks whose outcome was missed. Task events go to the
 * session's sockets only while one is connected, so a task that finished
 * during a reload or a dropped connection would look queued forever. After
 * every session hello, each bubble still waiting asks the REST API for its
 * task and the store applies the answer as the matching event would.
 */

/** Shown when the master answers 404: the task expired or the store was reset. */
export const UNKNOWN_TASK_ERROR = 'This task is no longer known to the master.';

/**
 * @param {{
 *   store: { openTaskIds: () => string[], reconcile: (taskId: string, view: unknown) => void },
 *   fetch?: typeof globalThis.fetch,
 * }} deps
 */
export function createReconciler({ store, fetch = globalThis.fetch.bind(globalThis) }) {
  /** Task ids with a request under way, so back-to-back hellos ask once. */
  const asking = new Set();

  /** @param {string} taskId */
  async function check(taskId) {
    asking.add(taskId);
    try {
      const res = await fetch(`/api/tasks/${encodeURIComponent(taskId)}`, {
        headers: { accept: 'application/json' },
        cache: 'no-store',
      });
      if (res.status === 404) {
        store.reconcile(taskId, { id: taskId, state: 'failed', error: UNKNOWN_TASK_ERROR });
      } else if (res.ok) {
        store.reconcile(taskId, await res.json());
      }
      // Any other answer (master busy, restarting): keep waiting; the next hello asks again.
    } catch {
      // Offline again: the next hello asks again.
    } finally {
      asking.delete(taskId);
    }
  }

  /** Asks about every task that has no outcome yet. */
  function run() {
    for (const taskId of store.openTaskIds()) {
      if (!asking.has(taskId)) void check(taskId);
    }
  }

  return { run };
}
