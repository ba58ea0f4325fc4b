/**
 * The console's browser code cannot import proto/: these tests hold its
 * copies of the console's wire names and bounds equal to the contract.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONSOLE_EVENTS, CONSOLE_NAMESPACE } from '../../../proto/src/console-events.ts';
import { SERIES_SECONDS } from '../../../proto/src/schemas/console.ts';

const WEB_CONSOLE = join(import.meta.dirname, '../../../web/console');
const source = (name: string) => readFileSync(join(WEB_CONSOLE, name), 'utf8');

describe("the console's copies of the wire contract", () => {
  it('listens on the namespace and to the events the contract names', async () => {
    const link = (await import(pathToFileURL(join(WEB_CONSOLE, 'link.js')).href)) as Record<
      string,
      unknown
    >;
    expect(link.CONSOLE_EVENTS).toEqual(CONSOLE_EVENTS);
    expect(source('link.js')).toContain(`const NAMESPACE = '${CONSOLE_NAMESPACE}';`);
  });

  it('keeps as many series points as the master does', () => {
    expect(source('overview.js')).toContain(`const MAX_POINTS = ${SERIES_SECONDS};`);
  });
});
