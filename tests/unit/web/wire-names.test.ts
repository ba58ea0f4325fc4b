/**
 * The browser's code is plain JavaScript served as it is, so it cannot import
 * proto/. These tests hold its copies of wire names and limits equal to the
 * contract instead.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MAX_PROMPT_CHARS, submitTaskSchema } from '../../../proto/src/schemas/task.ts';
import {
  CLIENT_EVENT_NAMES,
  MAX_PENDING_IN_HELLO,
  SERVER_EVENT_NAMES,
  TASK_EVENT_NAMES,
  TASK_EVENTS_BATCH,
} from '../../../proto/src/socket-events.ts';

const WEB_JS = join(import.meta.dirname, '../../../web/js');

/** A browser module, untyped (web/ is checked by its JSDoc, not by this project's tsc). */
const webModule = (name: string): Promise<Record<string, unknown>> =>
  import(pathToFileURL(join(WEB_JS, name)).href);

const source = (name: string) => readFileSync(join(WEB_JS, name), 'utf8');

/** The number a `const NAME = 1_000;` line of a browser module holds. */
function constant(file: string, name: string): number {
  const match = new RegExp(`const ${name} = ([\\d_]+);`).exec(source(file));
  if (!match?.[1]) throw new Error(`no const ${name} in web/js/${file}`);
  return Number(match[1].replaceAll('_', ''));
}

describe("the browser's copies of the wire contract", () => {
  it('listens to every task event, and to no other', async () => {
    const { TASK_EVENTS } = await webModule('connection.js');
    expect(TASK_EVENTS).toEqual(TASK_EVENT_NAMES);
    expect(source('connection.js')).toContain(`const TASK_EVENTS_BATCH = '${TASK_EVENTS_BATCH}';`);
  });

  it('names only events the contract defines', () => {
    const known = new Set<string>([
      ...CLIENT_EVENT_NAMES,
      ...SERVER_EVENT_NAMES,
      ...TASK_EVENT_NAMES,
    ]);
    const files = readdirSync(WEB_JS).filter((f) => f.endsWith('.js'));
    const named = files.flatMap((file) =>
      [...source(file).matchAll(/'((?:task|session|workers):[a-z]+)'/g)].map((m) => ({
        file,
        name: m[1] as string,
      })),
    );
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter(({ name }) => !known.has(name))).toEqual([]);
  });

  it('holds the same limits', async () => {
    expect(constant('connection.js', 'MAX_PENDING_IN_HELLO')).toBe(MAX_PENDING_IN_HELLO);
    expect(constant('composer.js', 'MAX_PROMPT_CHARS')).toBe(MAX_PROMPT_CHARS);
    const { MAX_PRIORITY } = await webModule('priority.js');
    const submit = (priority: unknown) =>
      submitTaskSchema.safeParse({ prompt: 'hi', priority }).success;
    expect(submit(MAX_PRIORITY)).toBe(true);
    expect(submit((MAX_PRIORITY as number) + 1)).toBe(false);
  });
});
