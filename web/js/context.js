/**
 * Conversation memory: the earlier turns sent along with a new prompt, so the
 * model can answer follow-up questions. Only exchanges whose answer completed
 * count; a failed or unfinished answer is left out together with its prompt.
 */

/** Most recent exchanges (a prompt and its answer) sent as context. */
export const MAX_CONTEXT_EXCHANGES = 10;
/** Characters across all context messages; the oldest exchanges go first. */
export const MAX_CONTEXT_CHARS = 50_000;

/**
 * Completed exchanges of the visible chat, oldest first.
 * @param {Array<Record<string, any>>} messages
 * @returns {Array<{ prompt: string, answer: string }>}
 */
function completedExchanges(messages) {
  const exchanges = [];
  for (let i = 1; i < messages.length; i++) {
    const user = messages[i - 1];
    const answer = messages[i];
    if (user.kind !== 'user' || answer.kind !== 'assistant') continue;
    if (answer.state !== 'completed') continue;
    if (typeof user.text !== 'string' || !user.text) continue;
    if (typeof answer.text !== 'string' || !answer.text) continue;
    exchanges.push({ prompt: user.text, answer: answer.text });
  }
  return exchanges;
}

/**
 * The prior turns for the next prompt: the newest completed exchanges that fit
 * both limits, as chat messages, oldest first. Empty when there are none.
 * @param {Array<Record<string, any>>} messages the visible chat, oldest first
 * @param {{ maxExchanges?: number, maxChars?: number }} [limits]
 * @returns {Array<{ role: 'user' | 'assistant', content: string }>}
 */
export function buildContext(messages, limits = {}) {
  const maxExchanges = limits.maxExchanges ?? MAX_CONTEXT_EXCHANGES;
  const maxChars = limits.maxChars ?? MAX_CONTEXT_CHARS;
  const kept = [];
  let chars = 0;
  const exchanges = completedExchanges(messages);
  for (let i = exchanges.length - 1; i >= 0 && kept.length < maxExchanges; i--) {
    const { prompt, answer } = exchanges[i];
    const size = prompt.length + answer.length;
    // Stop at the first that does not fit: skipping it would leave a gap in the story.
    if (chars + size > maxChars) break;
    chars += size;
    kept.unshift(exchanges[i]);
  }
  return kept.flatMap(({ prompt, answer }) => [
    { role: /** @type {const} */ ('user'), content: prompt },
    { role: /** @type {const} */ ('assistant'), content: answer },
  ]);
}

/**
 * Keeps the composer's context hint in step with what the next prompt carries.
 * @param {HTMLElement} el
 */
export function createContextHint(el) {
  let shown = -1;
  /** @param {Array<Record<string, any>>} messages */
  function update(messages) {
    const count = buildContext(messages).length / 2;
    if (count === shown) return;
    shown = count;
    el.dataset.count = String(count);
    el.textContent =
      count === 0
        ? 'New conversation'
        : `Context: last ${count} ${count === 1 ? 'exchange' : 'exchanges'}`;
    el.title =
      count === 0
        ? 'The next message starts a fresh conversation.'
        : 'The model also sees these earlier questions and answers. Clear starts a new conversation.';
  }
  return { update };
}
