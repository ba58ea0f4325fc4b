import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  clearLeftoverPostmaster,
  readPostmasterPid,
} from '../../../master/src/store/leftover-postmaster.ts';

describe('leftover postmaster.pid', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flota-pidfile-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the pid from the first line, and nothing from a missing or garbled file', async () => {
    expect(await readPostmasterPid(dir)).toBeUndefined();
    await writeFile(join(dir, 'postmaster.pid'), '4242\n/data/pg\n1700000000\n5432\n');
    expect(await readPostmasterPid(dir)).toBe(4242);
    await writeFile(join(dir, 'postmaster.pid'), 'garbage\n');
    expect(await readPostmasterPid(dir)).toBeUndefined();
  });

  it('removes a pid file whose process is gone', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    await once(child, 'exit');
    await writeFile(join(dir, 'postmaster.pid'), `${child.pid}\n${dir}\n`);
    await clearLeftoverPostmaster(dir, pino({ level: 'silent' }));
    expect(existsSync(join(dir, 'postmaster.pid'))).toBe(false);
  });

  it('never signals a live process that does not serve this data dir', async () => {
    // Our own pid is alive but is not `postgres -D <dir>`: treated as a stale file.
    await writeFile(join(dir, 'postmaster.pid'), `${process.pid}\n${dir}\n`);
    await clearLeftoverPostmaster(dir, pino({ level: 'silent' }));
    expect(existsSync(join(dir, 'postmaster.pid'))).toBe(false);
  });
});
