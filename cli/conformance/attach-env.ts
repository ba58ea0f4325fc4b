/**
 * The environment a worker the kit attaches to must run with, as `KEY=value`
 * lines: printed for its author, and with `--env-file` written where a
 * script waits for it. The file appears whole (written beside it, then
 * renamed), readable by its owner only: it holds the run's credential.
 */
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';

/** Values a shell's `.`, `docker run --env-file` and dotenv all read back unchanged. */
const PLAIN_VALUE = /^[A-Za-z0-9._:/@,+=-]*$/;

/** One `KEY=value` line per variable, in the kit's order; a value needing quotes is quoted for sh. */
export function envLines(settings: Record<string, string>): string[] {
  return Object.entries(settings).map(([key, value]) =>
    PLAIN_VALUE.test(value) ? `${key}=${value}` : `${key}='${value.replaceAll("'", "'\\''")}'`,
  );
}

/** Writes `lines` to `path` atomically, mode 0600, replacing what was there. */
export async function writeEnvFile(path: string, lines: string[]): Promise<void> {
  const partial = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(partial, `${lines.join('\n')}\n`, { mode: 0o600, flag: 'wx' });
    await rename(partial, path);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
}
