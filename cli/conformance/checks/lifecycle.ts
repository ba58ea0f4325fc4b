/** Continuation of a lost attempt, and a clean stop on SIGTERM. */
import { finishesWithin } from '../../../common/timeout.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerOnline } from '../../../proto/src/schemas/worker.ts';
import { type Check, expectThat } from '../check.ts';
import { CheckSkipped } from '../check-errors.ts';
import { KIT_MODEL } from '../worker-env.ts';
import { echoAnswer, promptLasting, waitListed } from './support.ts';

const finished = (t: TaskView) => t.state !== 'queued' && t.state !== 'running';

export const continuation: Check = {
  id: 'continuation.continue-from',
  title: 'given continueFrom, generates only what follows',
  section: 'MQTT › Continuing a lost attempt',
  timeoutMs: 45_000,
  needs: ['signals', 'restart'],
  async run(ctx) {
    const online = ctx.probe.statusesOf(ctx.workerId).filter((s) => s.value?.state === 'online');
    const record = online.at(-1)?.value as WorkerOnline | undefined;
    if (record?.continuation !== true) {
      throw new CheckSkipped('its online record does not say continuation: true');
    }
    const prompt = promptLasting(3_000);
    // Lost mid-stream (after a few chunks): the retry carries the streamed text as continueFrom.
    const { taskId } = await ctx.rest.stream(prompt, KIT_MODEL, async (_piece, count) => {
      if (count !== 3) return;
      ctx.worker().signal('SIGKILL');
      await ctx.worker().exited;
      await ctx.restartWorker();
    });
    const id = taskId;
    const task = await ctx.rest.waitTask(id, finished, 25_000);
    expectThat(
      task.state === 'completed',
      `the continued task ended ${task.state} (${task.error ?? ''})`,
    );
    expectThat(
      task.result === echoAnswer(prompt),
      `the continued answer (${task.result?.length ?? 0} characters, attempt ${task.attempt}) is not the ${echoAnswer(prompt).length}-character answer: continueFrom followed by only what comes after it${task.result?.startsWith(echoAnswer(prompt).slice(0, 40)) ? '' : ' (it does not even start like it)'}; got ${JSON.stringify(task.result?.slice(0, 120))}`,
    );
  },
};

export const sigterm: Check = {
  id: 'shutdown.sigterm',
  title: 'on SIGTERM finishes or hands back its task, says offline (shutdown), exits',
  section: 'MQTT › workers/{id}/status: offline record',
  timeoutMs: 40_000,
  needs: ['signals'],
  async run(ctx) {
    const { probe, workerId, options } = ctx;
    const since = Date.now();
    const id = await ctx.rest.submit({ prompt: promptLasting(1_500), model: KIT_MODEL });
    const listed = await waitListed(ctx, id, since, 5_000);
    expectThat(listed, 'no heartbeat listed the running task within 5 s');
    const worker = ctx.worker();
    const stoppedAt = Date.now();
    worker.signal('SIGTERM');
    const bound = options.shutdownGraceMs + 5_000;
    const offline = await probe.until(
      () =>
        probe.statusesOf(workerId).find((s) => s.at >= stoppedAt && s.value?.state === 'offline'),
      bound,
    );
    expectThat(offline, `no offline record within ${bound} ms of SIGTERM`);
    expectThat(
      offline.value?.state === 'offline' && offline.value.reason === 'shutdown',
      'the offline record after SIGTERM does not say reason "shutdown" (a Last Will says "lost")',
    );
    const exited = await finishesWithin(worker.exited, bound);
    expectThat(exited, `the worker had not exited ${bound} ms after SIGTERM`);
    const task = await ctx.rest.waitTask(id, (t) => t.state !== 'running', 5_000);
    expectThat(
      task.state === 'completed' || task.state === 'queued',
      `its task ended ${task.state} (${task.error ?? ''}): finish it, or hand it back (errorCode shutdown)`,
    );
    const [reported] = ctx.tap.resultsOf(id).map((r) => r.result);
    expectThat(
      task.state === 'completed' || reported?.errorCode === 'shutdown',
      `its task was handed back without a result with errorCode shutdown (${JSON.stringify(reported?.errorCode)})`,
    );
    const settled = Date.now();
    await probe.refreshRetained(workerId);
    const retained = await probe.until(
      () => probe.statusesOf(workerId).find((s) => s.at >= settled && s.retained),
      3_000,
    );
    expectThat(
      retained?.value?.state === 'offline',
      'the retained status is still online after the worker stopped: publish the offline record with retain',
    );
  },
};
