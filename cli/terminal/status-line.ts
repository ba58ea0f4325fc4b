/**
 * `flota up`'s live status line, e.g.
 *
 *   ● 2 workers online · 14 tasks done · 1 failed · 3 queued · 2 running
 *
 * It must fit on one terminal row: a line that wraps can no longer be redrawn
 * in place, so parts are dropped from the end until it fits.
 */
import { createColors } from 'colorette';
import type { MasterStatus } from '../../proto/src/ipc.ts';

export interface StatusLineOptions {
  /** Columns of the terminal; the line stays shorter than this. */
  width: number;
  colors: boolean;
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export function renderStatusLine(status: MasterStatus, options: StatusLineOptions): string {
  const c = createColors({ useColor: options.colors });
  const parts: Array<{ text: string; styled: string }> = [];
  const add = (text: string, style: (s: string) => string = (s) => s) =>
    parts.push({ text, styled: style(text) });

  add('●', status.workersOnline > 0 ? c.green : c.yellow);
  add(plural(status.workersOnline, 'worker online', 'workers online'), c.bold);
  add(plural(status.tasksCompleted, 'task done', 'tasks done'));
  add(`${status.tasksFailed} failed`, status.tasksFailed > 0 ? c.red : undefined);
  add(`${status.queued} queued`);
  add(`${status.running} running`);

  // The last column stays empty: a terminal may wrap a line that fills its row.
  const room = options.width - 1;
  let shown = parts.length;
  while (shown > 1 && join(parts.slice(0, shown), (p) => p.text, ' · ').length > room) shown -= 1;
  return join(parts.slice(0, shown), (p) => p.styled, c.dim(' · '));
}

/** The dot, a space, then the facts with a separator between them. */
function join<T>(parts: T[], show: (part: T) => string, separator: string): string {
  const [dot, ...facts] = parts;
  if (dot === undefined) return '';
  return facts.length === 0 ? show(dot) : `${show(dot)} ${facts.map(show).join(separator)}`;
}
