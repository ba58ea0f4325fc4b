/** Node version against the package's `engines.node`. */
import { readFileSync } from 'node:fs';
import semver from 'semver';
import { z } from 'zod';
import { type CheckResult, fail, pass } from './result.ts';

const packageSchema = z.object({ engines: z.object({ node: z.string().min(1) }).optional() });

/** The `engines.node` range of flota's package.json; undefined when it names none. */
export function requiredNodeRange(): string | undefined {
  const path = new URL('../../package.json', import.meta.url);
  return packageSchema.parse(JSON.parse(readFileSync(path, 'utf8'))).engines?.node;
}

export function checkNodeVersion(version: string, range: string | undefined): CheckResult {
  const bare = version.replace(/^v/, '');
  if (range === undefined) return pass('node', `Node ${bare}`);
  if (semver.satisfies(bare, range)) return pass('node', `Node ${bare} (flota needs ${range})`);
  const min = semver.minVersion(range);
  const fix = min
    ? `Install Node ${min.version} or later (e.g. nvm install ${min.major})`
    : `Install a Node version that satisfies ${range}`;
  return fail('node', `Node ${bare}`, `flota needs Node ${range}`, fix);
}
