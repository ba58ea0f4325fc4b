/**
 * Sends submissions until the master acknowledges them. The master keeps
 * `task:submit` idempotent per (session, clientId), so when an ack does not
 * come (timeout, dropped connection, reload of the tab) the same payload goes
 * again with the same client id once the link is back, and at most one task
 * exists for it. After GIVE_UP_MS without an answer the bubble shows the error.
 */
import { NOT_CONFIRMED_ERROR } from './connection.js';

/** How long a submission is retried before its bubble fails. */
export const GIVE_UP_MS = 60_000;

/**
 * @typedef {{ payload: Record<string, unknown>, since: number }} Outgoing
 * @param {{
 *   link: { submit: (payload: Record<string, unknown>, budgetMs: number) => Promise<{ ok: true, taskId: string } | { ok: false, lost: boolean, error: string }> },
 *   store: { bindTask: (clientId: string, taskId: string) => void, failLocal: (clientId: string, error: string) => void },
 *   saved: Array<[string, Outgoing]>,
 *   save: (entries: Array<[string, Outgoing]>) => void,
 *   now: () => number,
 *   giveUpMs?: number,
 * }} deps
 */
export function createSubmitter({ link, store, saved, save, now, giveUpMs = GIVE_UP_MS }) {
  /** @type {Map<string, Outgoing>} */
  const outgoing = new Map(saved);
  /** Client ids with a send loop running. */
  const running = new Set();

  const persist = () => save([...outgoing]);

  /** @param {string} clientId */
  async function run(clientId) {
    if (running.has(clientId)) return;
    running.add(clientId);
    try {
      for (;;) {
        const entry = outgoing.get(clientId);
        if (!entry) return;
        const left = entry.since + giveUpMs - now();
        if (left <= 0) {
          settle(clientId);
          store.failLocal(clientId, NOT_CONFIRMED_ERROR);
          return;
        }
        // Waits for the link (bounded by what is left), then for the ack.
        const reply = await link.submit(entry.payload, left);
        if (!outgoing.has(clientId)) return;
        if (!reply.ok && reply.lost) continue;
        settle(clientId);
        if (reply.ok) store.bindTask(clientId, reply.taskId);
        else store.failLocal(clientId, reply.error);
        return;
      }
    } finally {
      running.delete(clientId);
    }
  }

  /** @param {string} clientId */
  function settle(clientId) {
    outgoing.delete(clientId);
    persist();
  }

  return {
    /** @param {string} clientId @param {Record<string, unknown>} payload */
    submit(clientId, payload) {
      outgoing.set(clientId, { payload: { ...payload, clientId }, since: now() });
      persist();
      void run(clientId);
    },
    /**
     * Starts sending everything restored from storage; entries `keep` rejects
     * (their bubble is gone or already answered) are forgotten.
     * @param {(clientId: string) => boolean} keep
     */
    resume(keep) {
      for (const clientId of [...outgoing.keys()]) {
        if (keep(clientId)) void run(clientId);
        else outgoing.delete(clientId);
      }
      persist();
    },
    /** Stops every send, e.g. when the conversation is cleared. */
    clear() {
      outgoing.clear();
      persist();
    },
  };
}
