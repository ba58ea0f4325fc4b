/**
 * FLOTA_DATA_DIR: created on first start, and checked to be writable before
 * anything is kept in it, so a person reads which directory is wrong and why
 * rather than an errno from deep inside a store.
 */
import { constants, type Stats } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StartupError } from '../../common/errors.ts';

const HINT =
  'Point FLOTA_DATA_DIR at a directory this user can write (it is created if missing), e.g. FLOTA_DATA_DIR=$HOME/.flota.';

/** Creates the data dir (owner only by default) if it is missing; a StartupError saying why if it cannot be used. */
export async function ensureDataDir(dataDir: string, mode = 0o700): Promise<void> {
  try {
    await mkdir(dataDir, { recursive: true, mode });
    await access(dataDir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new StartupError(
      'data_dir_unusable',
      `FLOTA_DATA_DIR ${dataDir} cannot be used: ${await why(dataDir, err as NodeJS.ErrnoException)}`,
      { hint: HINT, cause: err },
    );
  }
}

/** The reason in words, naming the directory (or file) that is in the way. */
async function why(dataDir: string, err: NodeJS.ErrnoException): Promise<string> {
  const { path, stats } = await nearestExisting(dataDir);
  switch (err.code) {
    case 'ENOTDIR':
    case 'EEXIST':
      return stats && !stats.isDirectory()
        ? `${path} is a file, not a directory`
        : `a part of the path is not a directory (${err.code})`;
    case 'EACCES':
    case 'EPERM':
      return `this user (uid ${process.getuid?.() ?? '?'}) may not write in ${path}`;
    case 'EROFS':
      return `${path} is on a read-only file system`;
    case 'ENOSPC':
      return `the disk holding ${path} is full`;
    default:
      return `${err.code ?? 'error'}: ${err.message}`;
  }
}

/** The path itself or its nearest ancestor that exists, with what it is. */
async function nearestExisting(path: string): Promise<{ path: string; stats?: Stats }> {
  for (let at = path; ; at = dirname(at)) {
    const stats = await stat(at).catch(() => undefined);
    if (stats || at === dirname(at)) return { path: at, stats };
  }
}
