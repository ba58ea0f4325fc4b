/**
 * Recovery: a result the master did not answer, a broker that went away and
 * came back, a master that restarted. The kit makes each happen for real
 * (its relay mistreats a result, it restarts its own broker and master) and
 * watches the worker carry on as docs/PROTOCOL.md says.
 */
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { type Check, expectThat } from '../check.ts';
import type { ConformanceContext } from '../context.ts';
import type { ResultFault } from '../report-tap.ts';
import { KIT_MODEL } from '../worker-env.ts';
import { echoAnswer, promptLasting, waitHeartbeats, waitListed } from './support.ts';

const finished = (t: TaskView) => t.state !== 'queued' && t.state !== 'running';

/** A result left unanswered is sent again within this (backoff 200 ms doubling to 2 s). */
const RESEND_MS = 5_000;
/** How long a worker may go on sending a result once the master answered it. */
const STOP_SENDING_MS = 1_000;

/** What the master logs once it has answered the resent result. */
const FINAL_ANSWER: Record<ResultFault, string> = {
  'store-unavailable': 'task completed',
  'ack-lost': 'result rejected',
};

const WHAT_HAPPENED: Record<ResultFault, string> = {
  'store-unavailable': 'the master answered its result store_unavailable',
  'ack-lost': "the stream broke before the master's answer to its result arrived",
};

const HOW_TO_RESEND: Record<ResultFault, string> = {
  'store-unavailable': 'send the same result again after a backoff',
  'ack-lost': 'send every unanswered result again on a new stream',
};

/** Runs one task whose first result meets `fault`; the worker must resend it, then stop. */
async function expectResent(ctx: ConformanceContext, fault: ResultFault): Promise<void> {
  const { probe, tap } = ctx;
  const prompt = promptLasting(400);
  const id = await ctx.rest.submit({ prompt, model: KIT_MODEL });
  // The echo takes 400 ms: the relay is set long before the result comes.
  tap.interfere(id, fault);
  try {
    const resent = await probe.until(() => tap.resultsOf(id).length >= 2, 2_000 + RESEND_MS);
    const [first, again] = tap.resultsOf(id).map((r) => r.result);
    expectThat(first, 'the worker sent no result for the task within 7 s');
    expectThat(
      resent && again,
      `${WHAT_HAPPENED[fault]}, and it was not sent again within ${RESEND_MS} ms: ${HOW_TO_RESEND[fault]}`,
    );
    expectThat(
      again.attempt === first.attempt && again.lease === first.lease && again.text === first.text,
      'the result sent again differs from the first (attempt, lease or text): send the same result',
    );
    const task = await ctx.rest.waitTask(id, finished, 10_000);
    expectThat(
      task.state === 'completed' && task.result === echoAnswer(prompt) && task.attempt === 1,
      `the task ended ${task.state} on attempt ${task.attempt} (${task.error ?? task.result ?? ''}), not completed once by the resent attempt`,
    );
    const at = tap.interfered.find((i) => i.taskId === id)?.at ?? 0;
    const answered = await probe.until(
      () =>
        probe.masterLog.find(
          (l) => l.at >= at && l.line.taskId === id && l.line.msg === FINAL_ANSWER[fault],
        ),
      3_000,
    );
    expectThat(
      answered,
      `the master never answered the resent result (no "${FINAL_ANSWER[fault]}")`,
    );
    // A few heartbeats on, nothing more may have come for it.
    await waitHeartbeats(ctx, answered.at + STOP_SENDING_MS, 2, 4 * ctx.options.heartbeatMs);
    const late = tap.resultsOf(id).filter((r) => r.at > answered.at + STOP_SENDING_MS);
    expectThat(
      late.length === 0,
      `${late.length} more result(s) came more than ${STOP_SENDING_MS} ms after the master answered it: an answer is final, stop sending`,
    );
  } finally {
    // A worker that never resent leaves the task running for ever: end it for the checks after.
    const task = await ctx.rest.task(id).catch(() => undefined);
    if (task && !finished(task)) await ctx.rest.cancel(id);
  }
}

export const resultResend: Check = {
  id: 'recovery.result-resend',
  title: 'sends a result again until the master answers it, then stops',
  section: 'gRPC › Deadlines and retries',
  timeoutMs: 40_000,
  async run(ctx) {
    await expectResent(ctx, 'store-unavailable');
    await expectResent(ctx, 'ack-lost');
  },
};

/** After its broker comes back a worker logs in again within this (reconnect every 500 ms). */
const RECONNECT_MS = 10_000;

export const brokerRestart: Check = {
  id: 'recovery.broker-restart',
  title: 'after a broker restart logs in again, republishes its online record, runs work',
  section: 'MQTT › Connection',
  timeoutMs: 40_000,
  async run(ctx) {
    const { probe, workerId } = ctx;
    const since = Date.now();
    // The new broker keeps nothing: no retained record, no session, no subscription.
    await ctx.restartBroker();
    const online = await ctx.waitOnline(workerId, since, RECONNECT_MS);
    expectThat(
      online,
      `no online record within ${RECONNECT_MS} ms of the broker coming back: on every connect, publish the online record again`,
    );
    const asked = Date.now();
    await probe.refreshRetained(workerId);
    const retained = await probe.until(
      () => probe.statusesOf(workerId).find((s) => s.at >= asked && s.retained),
      3_000,
    );
    expectThat(
      retained?.value?.state === 'online',
      'the restarted broker holds no retained online record: on every connect, publish it with retain: true',
    );
    const listed = await ctx.rest.waitWorker(workerId, (w) => w?.state === 'online', 5_000);
    expectThat(
      listed?.state === 'online',
      `the master lists the worker as ${listed?.state ?? 'unknown'} after the broker restart`,
    );
    const resumed = await ctx.rest.command(workerId, 'resume');
    expectThat(
      resumed === 200,
      `a control after the broker restart was answered ${resumed}${resumed === 504 ? ' (no ack)' : ''}: on every connect, subscribe to workers/{id}/control again`,
    );
    const prompt = 'after the broker restart';
    const id = await ctx.rest.submit({ prompt, model: KIT_MODEL });
    const task = await ctx.rest.waitTask(id, finished, 10_000);
    expectThat(
      task.state === 'completed' && task.result === echoAnswer(prompt),
      `after the broker restart a task ended ${task.state} (${task.error ?? task.result ?? ''}): on every connect, subscribe to workers/{id}/tasks again`,
    );
  },
};

/** A restarted master adopts a listed attempt at the worker's next heartbeat, chunk or result. */
const ADOPT_MS = 5_000;

export const masterRestart: Check = {
  id: 'recovery.master-restart',
  title: 'runs on through a master restart: its attempt is adopted, new work runs',
  section: 'MQTT › Adoption after a master restart',
  timeoutMs: 45_000,
  async run(ctx) {
    const { probe } = ctx;
    const since = Date.now();
    const prompt = promptLasting(4_000);
    const id = await ctx.rest.submit({ prompt, model: KIT_MODEL });
    const listed = await waitListed(ctx, id, since, 5_000);
    expectThat(listed, 'no heartbeat listed the running task within 5 s');
    // The new master starts with an empty lease table: it learns the attempt from the worker.
    await ctx.restartMaster();
    const adopted = await probe.until(
      () =>
        probe.masterLog.find(
          (l) => l.at >= listed && l.line.taskId === id && l.line.msg === 'running task adopted',
        ),
      ADOPT_MS,
    );
    expectThat(
      ctx.worker().running,
      `the worker exited when the master restarted:\n${ctx.worker().output()}`,
    );
    expectThat(
      adopted,
      `the restarted master did not adopt the running attempt within ${ADOPT_MS} ms: list it with its lease in every heartbeat, and send its chunks and result on a new stream`,
    );
    const task = await ctx.rest.waitTask(id, finished, 15_000);
    expectThat(
      task.state === 'completed' && task.result === echoAnswer(prompt),
      `the adopted task ended ${task.state} (${task.error ?? `${task.result?.length ?? 0} characters`}), not with its whole answer`,
    );
    expectThat(
      task.attempt === 1,
      `the task finished on attempt ${task.attempt}: the attempt running through the restart was given up`,
    );
    const after = 'after the master restart';
    const next = await ctx.rest.submit({ prompt: after, model: KIT_MODEL });
    const done = await ctx.rest.waitTask(next, finished, 10_000);
    expectThat(
      done.state === 'completed' && done.result === echoAnswer(after),
      `a task submitted after the master restart ended ${done.state} (${done.error ?? ''})`,
    );
  },
};
