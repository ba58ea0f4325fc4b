/**
 * Task priority: an integer 0–1000, higher runs first; a task sent without
 * one gets 0. The composer and a queued answer offer a few named levels and
 * always show the number the master receives.
 */
import { h } from './dom.js';

/** The top of `priority` in proto/src/schemas/task.ts (a unit test holds them equal). */
export const MAX_PRIORITY = 1000;
/** What the master gives a task that names no priority. */
export const DEFAULT_PRIORITY = 0;

export const PRIORITY_LEVELS = [
  { value: DEFAULT_PRIORITY, name: 'Normal' },
  { value: 100, name: 'High' },
  { value: 500, name: 'Urgent' },
  { value: MAX_PRIORITY, name: 'Top' },
];

/** @param {unknown} v @returns {v is number} */
export const isPriority = (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_PRIORITY;

/** "High · 100", or just the number for a value set elsewhere (REST, CLI). @param {number} value */
export function priorityText(value) {
  const level = PRIORITY_LEVELS.find((l) => l.value === value);
  return level ? `${level.name} · ${value}` : String(value);
}

/** @param {number} value */
export const priorityTitle = (value) => `Priority ${value} (0–${MAX_PRIORITY}, higher runs first)`;

/**
 * Offers the levels in `select` (and `value` itself when it is none of them)
 * with `value` chosen. The options are rebuilt only when they must be, so an
 * open list is not closed by a redraw.
 * @param {HTMLSelectElement} select @param {number} value
 */
export function showPriority(select, value) {
  const values = PRIORITY_LEVELS.map((l) => l.value);
  if (!values.includes(value)) values.push(value);
  values.sort((a, b) => a - b);
  const current = [...select.options].map((o) => Number(o.value));
  if (current.join() !== values.join()) {
    select.replaceChildren(
      ...values.map((v) =>
        h('option', { value: String(v), text: priorityText(v), title: priorityTitle(v) }),
      ),
    );
  }
  select.value = String(value);
  select.title = priorityTitle(value);
}

/** The select's number; DEFAULT_PRIORITY if it holds none. @param {HTMLSelectElement} select */
export function chosenPriority(select) {
  const value = Number(select.value);
  return isPriority(value) ? value : DEFAULT_PRIORITY;
}
