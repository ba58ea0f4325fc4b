/**
 * The README's configuration tables against the config schemas: every
 * variable a process reads is documented, and every documented variable is
 * read. A new setting without a row, or a row for a setting that is gone,
 * fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { autoscalerConfigSchema } from '../../../autoscaler/src/config.ts';
import { masterConfigSchema } from '../../../master/src/config.ts';
import { WORKER_ENV_NAMES } from '../../../worker/src/config.ts';

const README = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

/** Variables named in the first column of the table under `### <heading>`. */
function documented(heading: string): Set<string> {
  const start = README.indexOf(`\n### ${heading}\n`);
  expect(start, `README has a "### ${heading}" section`).toBeGreaterThan(0);
  const rest = README.slice(start + heading.length + 6);
  const end = rest.search(/\n#{2,3} /);
  const names = new Set<string>();
  for (const line of (end < 0 ? rest : rest.slice(0, end)).split('\n')) {
    const first = /^\| ([^|]+)\|/.exec(line)?.[1] ?? '';
    for (const [, name] of first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(name as string);
  }
  return names;
}

const sorted = (names: Iterable<string>) => [...names].sort();

describe('README configuration tables', () => {
  it('document every master variable, and only those', () => {
    expect(sorted(documented('Master'))).toEqual(sorted(Object.keys(masterConfigSchema.shape)));
  });

  it('document every worker variable, and only those', () => {
    expect(sorted(documented('Worker'))).toEqual(sorted(Object.values(WORKER_ENV_NAMES)));
  });

  it('document every autoscaler variable, and only those', () => {
    expect(sorted(documented('Autoscaler'))).toEqual(
      sorted(Object.keys(autoscalerConfigSchema.shape)),
    );
  });
});
