/**
 * Multi-host rehearsal: the processes the stack runs, each on a machine of
 * its own (a network namespace with its own address), talking only over
 * those addresses. One worker host is cut off mid-run and plugged back in:
 * its tasks must finish on the other host, none lost or failed, and it must
 * rejoin and take work again. Needs root and iproute2.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskView } from '../../proto/src/schemas/task.ts';
import { SHOW_LOGS } from '../e2e/support/config.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { netnsUnavailable } from './support/netns.ts';
import { Rehearsal, workersOn } from './support/rehearsal.ts';

/** Long enough that the cut finds tasks running on the host, short enough to keep the run brief. */
const ECHO_DELAY_MS = 500;
const FIRST_BATCH = 30;
const SECOND_BATCH = 12;
/** A host whose link is back must be serving again within this (the bound). */
const REJOIN_LIMIT_MS = 30_000;

const HOST_A = workersOn('hosta');
const HOST_B = workersOn('hostb');

const unavailable = netnsUnavailable();
if (unavailable) {
  console.warn(
    `tests/multihost: SKIPPED — the multi-host rehearsal ${unavailable}. ` +
      'It needs root and iproute2 (ip netns); CI runs it as root.',
  );
}

const isTerminal = (t: TaskView) => t.state !== 'queued' && t.state !== 'running';

describe.runIf(!unavailable)('multi-host rehearsal in network namespaces', () => {
  const rehearsal = new Rehearsal({ echoDelayMs: ECHO_DELAY_MS });
  const api = () => {
    if (!rehearsal.api) throw new Error('the rehearsal did not start');
    return rehearsal.api;
  };
  /** Timings for the summary line; unset when the run did not get that far. */
  const figures: Partial<Record<'setup' | 'detect' | 'drain' | 'rejoin', number>> & {
    stranded?: number;
    lateRejected?: number;
    via?: string;
  } = {};
  const ms = (value: number | undefined) => (value === undefined ? 'n/a' : `${value} ms`);
  async function completeAll(ids: string[], prompts: string[]): Promise<TaskView[]> {
    const views = await waitFor(
      async () => {
        const all = await api().tasks(ids);
        return all.every(isTerminal) ? all : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: `${ids.length} tasks to finish` },
    );
    expect(views.filter((v) => v.state !== 'completed')).toEqual([]);
    expect(views.map((v) => v.result)).toEqual(prompts.map((p) => `echo: ${p}`));
    return views;
  }

  const statesOf = async (ids: string[]) => {
    const states = await api().workerStates();
    return ids.map((id) => states[id]);
  };

  beforeAll(async () => {
    const startedAt = Date.now();
    try {
      await rehearsal.start();
    } catch (err) {
      rehearsal.dumpOutput();
      throw err;
    }
    figures.setup = Date.now() - startedAt;
  }, 120_000);

  beforeEach((ctx) => {
    ctx.onTestFailed(() => rehearsal.dumpOutput());
  });

  afterAll(async () => {
    await rehearsal.stop();
    if (SHOW_LOGS) rehearsal.dumpOutput();
    const leftovers = rehearsal.leftoversRemoved;
    console.log(
      `multihost summary: run ${rehearsal.lab?.id ?? 'n/a'}, setup ${ms(figures.setup)}, ` +
        `${figures.stranded ?? 'n/a'} tasks stranded on hosta at the cut, ` +
        `hosta offline ${ms(figures.detect)} after the cut, ` +
        `first batch done ${ms(figures.drain)} after the cut, ` +
        `hosta online ${ms(figures.rejoin)} after the link came back (${figures.via ?? 'n/a'}), ` +
        `${figures.lateRejected ?? 'n/a'} late hosta results rejected` +
        (leftovers.length > 0 ? `; removed leftovers of runs ${leftovers.join(', ')}` : ''),
    );
  });

  it('runs every worker on its own host, joined to the master over the network', async () => {
    const workers = await api().workers();
    const byId = new Map(workers.map((w) => [w.id, w]));
    for (const [host, ids] of [
      ['hosta', HOST_A],
      ['hostb', HOST_B],
    ] as const) {
      for (const id of ids) {
        expect(byId.get(id)).toMatchObject({ state: 'online', labels: { node: host } });
      }
    }
  });

  /** What the cut left behind, for the rejoin test. */
  const cut = { at: 0, stranded: [] as TaskView[] };
  const logged = (source: string, msg: string, taskId: string) =>
    rehearsal.log(source).find((l) => l.msg === msg && l.taskId === taskId);

  it("finishes a cut-off host's tasks on the other host, none lost or failed", async () => {
    const prompts = Array.from({ length: FIRST_BATCH }, (_, i) => `first ${i}`);
    const ids = await Promise.all(prompts.map((p) => api().submit(p)));
    // The workers' own word that they run something, not just the master's count of assignments.
    await waitFor(
      () => HOST_A.every((id) => rehearsal.log(id).some((l) => l.msg === 'task started')),
      { timeoutMs: 15_000, intervalMs: 10, what: 'both hosta workers running tasks' },
    );
    cut.at = Date.now();
    rehearsal.cut('hosta');

    // Nothing from hosta reaches the master any more: what it lists as running there is stranded.
    const atCut = await api().tasks(ids);
    cut.stranded = atCut.filter((t) => t.state === 'running' && HOST_A.includes(t.workerId ?? ''));
    figures.stranded = cut.stranded.length;
    expect(cut.stranded.length).toBeGreaterThan(0);

    await waitFor(async () => (await statesOf(HOST_A)).every((s) => s === 'offline'), {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: 'hosta workers offline',
    });
    figures.detect = Date.now() - cut.at;
    expect(await statesOf(HOST_B)).toEqual(HOST_B.map(() => 'online'));

    const views = await completeAll(ids, prompts);
    figures.drain = Date.now() - cut.at;
    const byId = new Map(views.map((v) => [v.id, v]));
    for (const before of cut.stranded) {
      const after = byId.get(before.id);
      expect(after?.workerId, `task ${before.id}`).toBe(HOST_B[0]);
      expect(after?.attempt, `task ${before.id}`).toBeGreaterThan(before.attempt);
    }
  });

  it('takes the host back once its link is up again, and gives it work', async () => {
    const restoredAt = Date.now();
    rehearsal.restore('hosta');
    await waitFor(async () => (await statesOf(HOST_A)).every((s) => s === 'online'), {
      timeoutMs: REJOIN_LIMIT_MS,
      intervalMs: 50,
      what: 'hosta workers back online',
    });
    figures.rejoin = Date.now() - restoredAt;
    const rejoins = rehearsal
      .log('master')
      .filter((l) => l.ts >= restoredAt && HOST_A.includes(String(l.workerId)));
    figures.via = [...new Set(rejoins.filter((l) => /online/.test(l.msg)).map((l) => l.msg))].join(
      ' / ',
    );

    const prompts = Array.from({ length: SECOND_BATCH }, (_, i) => `second ${i}`);
    const ids = await Promise.all(prompts.map((p) => api().submit(p)));
    const views = await completeAll(ids, prompts);
    const onHostA = views.filter((v) => HOST_A.includes(v.workerId ?? ''));
    expect(onHostA.length).toBeGreaterThan(0);
  });

  it("turns away the host's late answers to the tasks it lost", async () => {
    // Those hosta had started before the cut finished there and went unheard until now.
    const late = cut.stranded.filter((t) => {
      const started = logged(t.workerId ?? '', 'task started', t.id);
      return started !== undefined && started.ts < cut.at;
    });
    expect(late.length).toBeGreaterThan(0);
    await waitFor(() => late.every((t) => logged('master', 'result rejected', t.id)), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: `the master to reject hosta's results for ${late.map((t) => t.id).join(', ')}`,
    });
    figures.lateRejected = late.length;
    const again = await api().tasks(late.map((t) => t.id));
    expect(again.map((v) => [v.state, v.workerId])).toEqual(
      late.map(() => ['completed', HOST_B[0]]),
    );
  });
});
