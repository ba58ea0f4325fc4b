import { EventEmitter, once } from 'node:events';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ModelLoader, ModelPool } from '../../../worker/src/models/model-pool.ts';

const log = pino({ level: 'silent' });

/** A loader whose loads finish when the test says so; each model takes `sizes[name]` MB. */
function fakeLoader(sizes: Record<string, number>) {
  const pending = new Map<string, () => void>();
  const unloaded: string[] = [];
  const events = new EventEmitter();
  const loader: ModelLoader<string> & {
    finish(name: string): void;
    started(name: string): boolean;
    unloaded: string[];
    events: EventEmitter;
  } = {
    unloaded,
    events,
    estimateMb: async (name) => sizes[name] ?? 1,
    load: (name) =>
      new Promise((resolve) => {
        pending.set(name, () => resolve({ model: `model:${name}`, memMb: sizes[name] ?? 1 }));
        events.emit(`started:${name}`);
      }),
    unload: async (model) => {
      unloaded.push(model.replace('model:', ''));
    },
    finish(name) {
      const done = pending.get(name);
      if (!done) throw new Error(`no load of ${name} under way`);
      pending.delete(name);
      done();
    },
    started: (name) => pending.has(name),
  };
  return loader;
}

const signal = () => new AbortController().signal;

/** Waits until the loader was asked for `name`: the load runs in the background. */
async function loadStarted(loader: ReturnType<typeof fakeLoader>, name: string): Promise<void> {
  if (!loader.started(name)) await once(loader.events, `started:${name}`);
}

describe('model pool', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('loads a model once for the tasks that wait on it, and shares it', async () => {
    const loader = fakeLoader({ a: 10 });
    const pool = new ModelPool({ loader, budgetMb: 100, idleMs: 1000, log });
    const first = pool.acquire('a', signal());
    const second = pool.acquire('a', signal());
    await loadStarted(loader, 'a');
    loader.finish('a');
    const [one, two] = await Promise.all([first, second]);
    expect(one.model).toBe('model:a');
    expect(two.model).toBe('model:a');
    expect(pool.loaded()).toEqual([expect.objectContaining({ name: 'a', memMb: 10 })]);
    one.release();
    two.release();
    await pool.close();
  });

  it('serves a loaded model at once while another model loads', async () => {
    const loader = fakeLoader({ a: 10, b: 10 });
    const pool = new ModelPool({ loader, budgetMb: 100, idleMs: 1000, log });
    const a = pool.acquire('a', signal());
    await loadStarted(loader, 'a');
    loader.finish('a');
    (await a).release();
    const b = pool.acquire('b', signal());
    await loadStarted(loader, 'b');
    // b's load is still under way: a task for a does not wait for it.
    const again = await pool.acquire('a', signal());
    expect(again.model).toBe('model:a');
    again.release();
    loader.finish('b');
    (await b).release();
    await pool.close();
  });

  it('unloads the least recently used idle model to make room', async () => {
    const loader = fakeLoader({ a: 40, b: 40, c: 40 });
    const pool = new ModelPool({ loader, budgetMb: 100, idleMs: 60_000, log });
    for (const name of ['a', 'b']) {
      const lease = pool.acquire(name, signal());
      await loadStarted(loader, name);
      loader.finish(name);
      (await lease).release();
    }
    // a is used again, so b is now the least recently used.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 1000);
    (await pool.acquire('a', signal())).release();
    vi.useRealTimers();
    const unloaded = once(pool, 'unloaded');
    const c = pool.acquire('c', signal());
    expect(await unloaded).toEqual([{ name: 'b', reason: 'memory' }]);
    await loadStarted(loader, 'c');
    loader.finish('c');
    (await c).release();
    expect(
      pool
        .loaded()
        .map((m) => m.name)
        .sort(),
    ).toEqual(['a', 'c']);
    await pool.close();
  });

  it('waits for a busy model to be released before unloading it for another', async () => {
    const loader = fakeLoader({ a: 60, b: 60 });
    const pool = new ModelPool({ loader, budgetMb: 100, idleMs: 60_000, log });
    const a = pool.acquire('a', signal());
    await loadStarted(loader, 'a');
    loader.finish('a');
    const held = await a;
    const b = pool.acquire('b', signal());
    // b found no room: a is busy, so b waits for a release instead of loading.
    await vi.waitFor(() => expect(pool.listenerCount('released')).toBe(1));
    expect(loader.started('b')).toBe(false);
    held.release();
    await loadStarted(loader, 'b');
    expect(loader.unloaded).toEqual(['a']);
    loader.finish('b');
    (await b).release();
    await pool.close();
  });

  it('gives up waiting for memory when the task is aborted', async () => {
    const loader = fakeLoader({ a: 60, b: 60 });
    const pool = new ModelPool({ loader, budgetMb: 100, idleMs: 60_000, log });
    const a = pool.acquire('a', signal());
    await loadStarted(loader, 'a');
    loader.finish('a');
    const held = await a;
    const controller = new AbortController();
    const b = pool.acquire('b', controller.signal);
    controller.abort();
    await expect(b).rejects.toMatchObject({ code: 'aborted' });
    held.release();
    await pool.close();
  });

  it('unloads idle models when a load takes more than its estimate', async () => {
    const loader = fakeLoader({ a: 50, b: 60 });
    loader.estimateMb = async () => 10;
    const pool = new ModelPool({ loader, budgetMb: 100, idleMs: 60_000, log });
    for (const name of ['a', 'b']) {
      const lease = pool.acquire(name, signal());
      await loadStarted(loader, name);
      loader.finish(name);
      (await lease).release();
    }
    expect(loader.unloaded).toEqual(['a']);
    expect(pool.usedMb()).toBe(60);
  });

  it('fails the task, not the pool, when a model cannot be read', async () => {
    const loader = fakeLoader({ a: 10 });
    loader.estimateMb = async () => {
      throw new Error('not a GGUF file');
    };
    const pool = new ModelPool({ loader, budgetMb: 100, idleMs: 1, log });
    await expect(pool.acquire('a', signal())).rejects.toMatchObject({
      code: 'provider_error',
      message: 'model a could not be loaded: not a GGUF file',
    });
    expect(pool.loaded()).toEqual([]);
  });

  it('refuses a model larger than the whole budget', async () => {
    const pool = new ModelPool({ loader: fakeLoader({ big: 500 }), budgetMb: 100, idleMs: 1, log });
    await expect(pool.acquire('big', signal())).rejects.toThrow(
      /needs about 500 MB.*MODEL_MEMORY_MB/,
    );
  });

  it('unloads a model idle for idleMs, not one in use', async () => {
    vi.useFakeTimers();
    const loader = fakeLoader({ a: 10 });
    const pool = new ModelPool({ loader, budgetMb: 100, idleMs: 5000, log });
    const pending = pool.acquire('a', signal());
    await loadStarted(loader, 'a');
    loader.finish('a');
    const lease = await pending;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(pool.loaded()).toHaveLength(1);
    lease.release();
    await vi.advanceTimersByTimeAsync(4999);
    expect(pool.loaded()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(pool.loaded()).toEqual([]);
    expect(loader.unloaded).toEqual(['a']);
    await pool.close();
  });
});
