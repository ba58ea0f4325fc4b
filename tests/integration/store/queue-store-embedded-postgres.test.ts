import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueueStore } from '../../../master/src/store/index.ts';
import {
  isProcessAlive,
  readPostmasterPid,
} from '../../../master/src/store/leftover-postmaster.ts';
import { randomName } from '../../helpers/random-name.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { describeQueueStoreContract } from './queue-store.contract.ts';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flota-store-embedded-'));
  dirs.push(dir);
  return dir;
};

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Stops the postmaster behind the store's back, as a crash of PostgreSQL would. */
async function stopPostmaster(dataDir: string): Promise<void> {
  const pid = await readPostmasterPid(join(dataDir, 'pg'));
  if (pid === undefined) throw new Error('no postmaster.pid');
  process.kill(pid, 'SIGINT');
  await waitFor(async () => !(await isProcessAlive(pid)), { what: 'postmaster to exit' });
}

let dataDir: string;
beforeAll(async () => {
  dataDir = await tempDir();
});

describeQueueStoreContract(
  'embedded-postgres',
  async () => {
    const store = await openQueueStore({ dataDir, log });
    expect(store.kind).toBe('embedded-postgres');
    return { store, cleanup: () => store.close() };
  },
  { stopServer: () => stopPostmaster(dataDir) },
);

describe('embedded PostgreSQL lifecycle', () => {
  it('keeps its generated password private and stops PostgreSQL on close()', async () => {
    const dir = await tempDir();
    const store = await openQueueStore({ dataDir: dir, log, namespace: randomName('ns') });
    const { stat, readFile } = await import('node:fs/promises');
    const info = await stat(join(dir, 'pg-password'));
    expect(info.mode & 0o777).toBe(0o600);
    const password = (await readFile(join(dir, 'pg-password'), 'utf8')).trim();
    expect(password).toMatch(/^[0-9a-f]{48}$/);
    expect(store.describe()).not.toContain(password);
    const pid = await readPostmasterPid(join(dir, 'pg'));
    expect(pid).toBeDefined();
    await store.close();
    expect(await isProcessAlive(pid as number)).toBe(false);
  });

  it('recovers from a postmaster left running by a SIGKILLed master', async () => {
    const dir = await tempDir();
    const script = fileURLToPath(new URL('./fixtures/start-embedded-postgres.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    try {
      await waitFor(() => out.includes('ready'), { timeoutMs: 30_000, what: 'child PostgreSQL' });
    } finally {
      child.kill('SIGKILL');
    }
    await once(child, 'exit');
    const leftover = await readPostmasterPid(join(dir, 'pg'));
    expect(leftover).toBeDefined();
    expect(await isProcessAlive(leftover as number)).toBe(true);

    const store = await openQueueStore({ dataDir: dir, log });
    try {
      expect(await isProcessAlive(leftover as number)).toBe(false);
      const name = randomName('q');
      await store.createQueue<{ n: number }>(name).add('task', { n: 1 });
      const job = await store.createWorker<{ n: number }>(name).getNextJob('t', { block: false });
      expect(job?.data).toEqual({ n: 1 });
    } finally {
      await store.close();
    }
  });
});
