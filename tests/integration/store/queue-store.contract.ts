/**
 * The cases every QueueStore must pass, whatever keeps the state. Each backend's
 * test file calls describeQueueStoreContract with a way to open a store on it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { QueueStore } from '../../../master/src/store/index.ts';
import { randomName } from '../../helpers/random-name.ts';
import { waitFor } from '../../helpers/wait-for.ts';

export interface OpenedStore {
  store: QueueStore;
  /** Closes the store (and, for the embedded store, stops its PostgreSQL). Idempotent. */
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /**
   * Takes the server down (not through the store) for the ping() case. It runs
   * last in the suite; the server need not come back.
   */
  stopServer(store: QueueStore): Promise<void>;
}

interface Task {
  n: number;
}

const TOKEN = 'contract-token';

export function describeQueueStoreContract(
  label: string,
  open: () => Promise<OpenedStore>,
  options: ContractOptions,
): void {
  describe(`QueueStore contract: ${label}`, () => {
    const opened: OpenedStore[] = [];
    const openStore = async () => {
      const result = await open();
      opened.push(result);
      return result;
    };
    afterEach(async () => {
      for (const o of opened.splice(0)) await o.cleanup();
    });

    it('completes a job taken by hand and keeps its return value', async () => {
      const { store } = await openStore();
      const name = randomName('q');
      const queue = store.createQueue<Task, string>(name);
      const worker = store.createWorker<Task, string>(name);
      const added = await queue.add('task', { n: 1 });

      const job = await worker.getNextJob(TOKEN, { block: false });
      expect(job?.id).toBe(added.id);
      expect(job?.data).toEqual({ n: 1 });
      await job?.moveToCompleted('done: 1', TOKEN, false);

      const stored = await queue.getJob(added.id as string);
      expect(await stored?.getState()).toBe('completed');
      expect(stored?.returnvalue).toBe('done: 1');
    });

    it('lists the queues that hold jobs, by name prefix', async () => {
      const { store } = await openStore();
      const prefix = `${randomName('lq')}.`;
      await store.createQueue<Task>(`${prefix}a`).add('task', { n: 1 });
      await store.createQueue<Task>(`${prefix}b@zone=eu`).add('task', { n: 2 });
      await store.createQueue<Task>(randomName('other')).add('task', { n: 3 });
      expect((await store.listQueues(prefix)).sort()).toEqual([`${prefix}a`, `${prefix}b@zone=eu`]);
    });

    it('fails a job with its reason', async () => {
      const { store } = await openStore();
      const name = randomName('q');
      const queue = store.createQueue<Task>(name);
      const worker = store.createWorker<Task>(name);
      const added = await queue.add('task', { n: 2 });

      const job = await worker.getNextJob(TOKEN, { block: false });
      await job?.moveToFailed(new Error('provider timed out'), TOKEN, false);

      const stored = await queue.getJob(added.id as string);
      expect(await stored?.getState()).toBe('failed');
      expect(stored?.failedReason).toBe('provider timed out');
    });

    // BullMQ: a LOWER priority number is served FIRST (1 is the highest priority).
    it('serves the higher priority (lower number) first', async () => {
      const { store } = await openStore();
      const name = randomName('q');
      const queue = store.createQueue<Task>(name);
      const worker = store.createWorker<Task>(name);
      await queue.add('task', { n: 10 }, { priority: 10 });
      await queue.add('task', { n: 5 }, { priority: 5 });
      await queue.add('task', { n: 1 }, { priority: 1 });

      const order: number[] = [];
      for (let i = 0; i < 3; i++) {
        const job = await worker.getNextJob(TOKEN, { block: false });
        if (!job) break;
        order.push(job.data.n);
        await job.moveToCompleted('ok', TOKEN, false);
      }
      expect(order).toEqual([1, 5, 10]);
    });

    it('returns undefined at once for an empty queue', async () => {
      const { store } = await openStore();
      const worker = store.createWorker<Task>(randomName('q'));
      const started = Date.now();
      const job = await worker.getNextJob(TOKEN, { block: false });
      expect(job).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(2_000);
    });

    it('extends the lock for the token that holds the job', async () => {
      const { store } = await openStore();
      const name = randomName('q');
      const queue = store.createQueue<Task>(name);
      const worker = store.createWorker<Task>(name, { lockDuration: 5_000 });
      await queue.add('task', { n: 3 });
      const job = await worker.getNextJob(TOKEN, { block: false });
      expect(job).toBeDefined();

      await expect(job?.extendLock(TOKEN, 60_000)).resolves.toBeTruthy();
      const other = await job?.extendLock('someone-else', 60_000).catch(() => 0);
      expect(other).toBeFalsy();
      await job?.moveToCompleted('ok', TOKEN, false);
      expect(await job?.getState()).toBe('completed');
    });

    it('keeps 100 jobs across close and reopen, and they can all be processed', async () => {
      const first = await openStore();
      const name = randomName('q');
      const jobs = Array.from({ length: 100 }, (_, n) => ({ name: 'task', data: { n } }));
      await first.store.createQueue<Task>(name).addBulk(jobs);
      await first.cleanup();

      const { store } = await openStore();
      const queue = store.createQueue<Task>(name);
      expect(await queue.getWaitingCount()).toBe(100);
      const worker = store.createWorker<Task>(name);
      const seen = new Set<number>();
      for (let job = await worker.getNextJob(TOKEN, { block: false }); job; ) {
        seen.add(job.data.n);
        await job.moveToCompleted('ok', TOKEN, false);
        job = await worker.getNextJob(TOKEN, { block: false });
      }
      expect(seen.size).toBe(100);
      expect(await queue.getCompletedCount()).toBe(100);
    });

    it('closes twice without error and refuses new queues after close', async () => {
      const { store } = await openStore();
      store.createQueue(randomName('q'));
      store.createWorker(randomName('q'));
      await store.close();
      await expect(store.close()).resolves.toBeUndefined();
      expect(() => store.createQueue(randomName('q'))).toThrow(/closed/);
    });

    it('describes itself without the password', async () => {
      const { store } = await openStore();
      expect(store.describe()).toMatch(/^(redis|rediss|postgres|postgresql):\/\//);
      const password = new URL(store.describe()).password;
      expect(password === '' || password === '***').toBe(true);
    });

    it('keeps kv values until replaced, and answers undefined for a missing key', async () => {
      const { store } = await openStore();
      const key = randomName('kv');
      expect(await store.kv.get(key)).toBeUndefined();
      await store.kv.set(key, { text: 'first', n: 1, nested: { ok: true } }, 60_000);
      expect(await store.kv.get(key)).toEqual({ text: 'first', n: 1, nested: { ok: true } });
      await store.kv.set(key, 'second', 60_000);
      expect(await store.kv.get(key)).toBe('second');
      await expect(store.kv.set(key, 'x', 0)).rejects.toThrow(/ttlMs/);
      await expect(store.kv.get('')).rejects.toThrow(/key/);
    });

    it('keeps an audit trail: newest first, filtered, a page at a time, across a reopen', async () => {
      const first = await openStore();
      const since = Date.now();
      const target = randomName('w');
      const actions = ['worker.drain', 'worker.resume', 'worker.drain', 'fleet.stop'] as const;
      for (const [i, action] of actions.entries()) {
        await first.store.audit.append({
          at: since + i,
          actor: 'ops',
          role: 'admin',
          action,
          target,
          result: 'ok',
          from: '127.0.0.1',
        });
      }
      await first.cleanup();

      const { store } = await openStore();
      const all = await store.audit.page({ since, limit: 10 });
      expect(all.records.map((r) => r.action)).toEqual([...actions].reverse());
      expect(all.records[0]).toMatchObject({
        actor: 'ops',
        target,
        from: '127.0.0.1',
        at: since + 3,
      });
      expect(all.nextCursor).toBeUndefined();

      const one = await store.audit.page({ since, limit: 1, action: 'worker.drain' });
      expect(one.records).toHaveLength(1);
      expect(one.records[0]?.at).toBe(since + 2);
      const next = await store.audit.page({
        since,
        limit: 1,
        action: 'worker.drain',
        cursor: one.nextCursor,
      });
      expect(next.records.map((r) => r.at)).toEqual([since]);

      const window = await store.audit.page({ since: since + 1, until: since + 2, limit: 10 });
      expect(window.records.map((r) => r.action)).toEqual(['worker.drain', 'worker.resume']);
    });

    it('forgets a kv value once its TTL has passed', async () => {
      const { store } = await openStore();
      const key = randomName('kv');
      await store.kv.set(key, { text: 'short-lived' }, 300);
      await store.kv.set(`${key}_long`, { text: 'long-lived' }, 60_000);
      expect(await store.kv.get(key)).toEqual({ text: 'short-lived' });
      await waitFor(async () => (await store.kv.get(key)) === undefined, {
        what: 'the kv entry to expire',
      });
      expect(await store.kv.get(`${key}_long`)).toEqual({ text: 'long-lived' });
    });

    it('keeps kv values across close and reopen (a master restart)', async () => {
      const first = await openStore();
      const key = randomName('kv');
      await first.store.kv.set(key, { text: 'kept', cachedAt: 1 }, 60_000);
      await first.cleanup();

      const { store } = await openStore();
      expect(await store.kv.get(key)).toEqual({ text: 'kept', cachedAt: 1 });
    });

    // Keep last: it takes the server down.
    it('answers ping() true while up and false once the server is down', async () => {
      const { store } = await openStore();
      expect(await store.ping()).toBe(true);
      await options.stopServer(store);
      const started = Date.now();
      expect(await store.ping()).toBe(false);
      expect(Date.now() - started).toBeLessThan(3_000);
    });
  });
}
