/**
 * FLOTA_DATA_DIR: there or creatable, writable, and the secrets kept in it
 * readable by their owner only (the signing secret, the generated admin
 * token, the embedded PostgreSQL's password).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { GENERATED_TOKENS_FILE } from '../../master/src/security/exposure.ts';
import { SECRET_FILE } from '../../master/src/security/worker-credentials.ts';
import { type CheckResult, fail, pass, reasonOf } from './result.ts';

/** Files in the data dir that hold a secret. */
export const SECRET_FILES = [SECRET_FILE, GENERATED_TOKENS_FILE, 'pg-password'];

/** The closest directory that exists: where a missing data dir would be created. */
async function existingAncestor(path: string): Promise<string> {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    try {
      if ((await stat(dir)).isDirectory()) return dir;
    } catch {
      // Not there either: look one level up.
    }
    if (dir === dirname(dir)) return dir;
  }
}

export async function checkDataDirWritable(dataDir: string): Promise<CheckResult> {
  const path = resolve(dataDir);
  const what = `data dir ${path}`;
  const fix = 'Point FLOTA_DATA_DIR at a directory this user can write';
  let info: Awaited<ReturnType<typeof stat>> | undefined;
  try {
    info = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      return fail('data-dir', what, `cannot be read (${reasonOf(err)})`, fix);
    }
  }
  if (info === undefined) {
    // Not created here: doctor only looks. The master creates it on start.
    const parent = await existingAncestor(path);
    try {
      // A real try, not access(): root passes access() where mkdir still fails.
      await rm(await mkdtemp(join(parent, '.flota-doctor-')), { recursive: true, force: true });
      return pass('data-dir', `${what} will be created on first start (${parent} is writable)`);
    } catch (err) {
      return fail(
        'data-dir',
        what,
        `cannot be created: ${parent} is not writable (${reasonOf(err)})`,
        fix,
      );
    }
  }
  if (!info.isDirectory()) return fail('data-dir', what, 'is a file, not a directory', fix);
  const probe = join(path, `.doctor-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(probe, '', { flag: 'wx', mode: 0o600 });
    await rm(probe, { force: true });
    return pass('data-dir', `${what} writable`);
  } catch (err) {
    return fail('data-dir', what, `not writable (${reasonOf(err)})`, fix);
  }
}

export interface FileMode {
  path: string;
  /** `stat().mode` */
  mode: number;
}

/** Owner-only means no permission bit for the group or others. */
export function permissionsVerdict(files: FileMode[]): CheckResult | undefined {
  if (files.length === 0) return undefined;
  const open = files.filter((f) => (f.mode & 0o077) !== 0);
  if (open.length === 0) {
    return pass(
      'data-dir:permissions',
      `secret files owner-only (${files.map((f) => f.path).join(', ')})`,
    );
  }
  const listed = open.map((f) => `${f.path} (mode ${(f.mode & 0o777).toString(8)})`).join(', ');
  return fail(
    'data-dir:permissions',
    `secret files readable by others: ${listed}`,
    'anyone on this machine can read them and act as the master',
    `Run chmod 600 ${open.map((f) => f.path).join(' ')}`,
  );
}

/** The modes of the secret files that exist (no Unix modes on Windows: nothing to report). */
export async function secretFileModes(dataDir: string): Promise<FileMode[]> {
  if (process.platform === 'win32') return [];
  const found: FileMode[] = [];
  for (const name of SECRET_FILES) {
    const path = join(resolve(dataDir), name);
    try {
      found.push({ path, mode: (await stat(path)).mode });
    } catch {
      // Not created yet: nothing to protect.
    }
  }
  return found;
}
