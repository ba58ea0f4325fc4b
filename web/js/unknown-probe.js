/**
 * The one case the session hello cannot cover: a task the master no longer
 * knows (expired from its store, or gone with it). For such a `pending` id
 * the master sends nothing (a terminal event carries a TaskView, which it
 * does not have), so the bubble would wait forever. After each hello, every
 * task still awaited is therefore looked up over REST, and only a 404 acts:
 * the bubble fails. Any other answer is ignored, since the outbox events are
 * what say how a task is doing.
 */
import { withToken } from './access-token.js';

/** Shown when the master answers 404: the task expired or the store was reset. */
export const UNKNOWN_TASK_ERROR = 'This task is no longer known to the master.';

/**
 * @param {{
 *   failUnknown: (taskId: string, error: string) => void,
 *   token: () => string,
 *   fetch?: typeof globalThis.fetch,
 * }} deps `token`: the access token for the Bearer header ('' when none)
 */
export function createUnknownTaskProbe({
  failUnknown,
  token,
  fetch = globalThis.fetch.bind(globalThis),
}) {
  /** Task ids with a request under way, so back-to-back hellos ask once. */
  const asking = new Set();

  /** @param {string} taskId */
  async function check(taskId) {
    asking.add(taskId);
    try {
      const res = await fetch(`/api/tasks/${encodeURIComponent(taskId)}`, {
        headers: withToken(token(), { accept: 'application/json' }),
        cache: 'no-store',
      });
      if (res.status === 404) failUnknown(taskId, UNKNOWN_TASK_ERROR);
      // Anything else (known, master busy, restarting): the outbox or the next hello tells.
    } catch {
      // Offline again: the next hello asks again.
    } finally {
      asking.delete(taskId);
    }
  }

  /** @param {string[]} taskIds the tasks the hello named as pending */
  function run(taskIds) {
    for (const taskId of taskIds) {
      if (!asking.has(taskId)) void check(taskId);
    }
  }

  return { run };
}
