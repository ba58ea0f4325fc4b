/**
 * Failures: bad messages, attempts the master does not hold, cancel, drain
 * and resume, deadlines, and an attempt whose lease the master revoked. Each is observed where the master sees it: in
 * the worker's heartbeats and status record, and in the task's outcome.
 */
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { Heartbeat, WorkerOnline } from '../../../proto/src/schemas/worker.ts';
import { type Check, expectThat } from '../check.ts';
import type { ConformanceContext } from '../context.ts';
import { KIT_MODEL } from '../worker-env.ts';
import {
  echoAnswer,
  heartbeatsSince,
  lists,
  promptLasting,
  strayAssignment,
  waitHeartbeats,
  waitListed,
  waitUnlisted,
} from './support.ts';

const finished = (t: TaskView) => t.state !== 'queued' && t.state !== 'running';

/** Payloads no conforming worker acts on. */
const BAD_TASKS: Array<string | object> = [
  'not json',
  '[]',
  '{}',
  { taskId: 'any.echo.0', attempt: 'one', lease: 'x', model: KIT_MODEL, prompt: 'hi' },
  { taskId: '', attempt: 0, lease: '', model: KIT_MODEL, prompt: 'hi', deadline: 'soon' },
];
const BAD_CONTROLS: Array<string | object> = [
  'not json',
  { type: 'explode' },
  { type: 'cancel' },
  { type: 'cancel', taskId: 'any.echo.not-running', attempt: 1 },
];

export const badMessage: Check = {
  id: 'failures.bad-message',
  title: 'drops malformed tasks and control messages and lives on',
  section: 'Conventions (at the top)',
  timeoutMs: 20_000,
  async run(ctx) {
    for (const payload of BAD_TASKS) await ctx.probe.publish(ctx.workerId, 'tasks', payload);
    for (const payload of BAD_CONTROLS) await ctx.probe.publish(ctx.workerId, 'control', payload);
    const since = Date.now();
    const alive = await waitHeartbeats(ctx, since, 3, 6 * ctx.options.heartbeatMs);
    expectThat(
      ctx.worker().running,
      `the worker exited after malformed messages:\n${ctx.worker().output()}`,
    );
    expectThat(alive, 'the worker stopped heartbeating after malformed messages');
    const prompt = 'still here';
    const id = await ctx.rest.submit({ prompt, model: KIT_MODEL });
    const task = await ctx.rest.waitTask(id, finished, 10_000);
    expectThat(
      task.state === 'completed' && task.result === echoAnswer(prompt),
      `after malformed messages a task ended ${task.state} (${task.error ?? task.result ?? ''})`,
    );
  },
};

/** How long a worker may go on sending chunks of an attempt once the master refused one. */
const STOP_SENDING_MS = 1_000;

export const staleAttempt: Check = {
  id: 'failures.stale-attempt',
  title: 'runs a repeated assignment once; stops an attempt the master refuses',
  section: 'Fencing',
  timeoutMs: 20_000,
  async run(ctx) {
    const since = Date.now();
    const stray = strayAssignment(8_000);
    // QoS 1 may deliver an assignment twice: it must run once.
    await ctx.probe.publish(ctx.workerId, 'tasks', stray);
    await ctx.probe.publish(ctx.workerId, 'tasks', stray);
    // The master holds no lease for it: it refuses the attempt's first report and sends a cancel.
    const refused = await ctx.probe.until(
      () =>
        ctx.probe.masterLog.find(
          (l) =>
            l.at >= since && l.line.taskId === stray.taskId && l.line.msg === 'result rejected',
        ),
      5_000,
    );
    expectThat(
      refused,
      'the worker sent no chunk or result for the assignment within 5 s (the master logged none for it)',
    );
    const every = ctx.options.heartbeatMs;
    const gone = await waitUnlisted(ctx, stray.taskId, refused.at + every, 3_000 + 2 * every);
    expectThat(
      gone,
      `the worker kept running an attempt the master refused (${refused.line.reason}, then a cancel): treat a rejection as final`,
    );
    const late = ctx.tap.chunksOf(stray.taskId).filter((c) => c.at > refused.at + STOP_SENDING_MS);
    expectThat(
      late.length === 0,
      `${late.length} chunks came more than ${STOP_SENDING_MS} ms after the master refused the attempt: a refusal is final, stop sending`,
    );
    const twice = heartbeatsSince(ctx, since).find(
      (h) => h.active.filter((a) => a.taskId === stray.taskId).length > 1,
    );
    expectThat(
      !twice,
      'a heartbeat listed the same (taskId, attempt) twice: run each at most once',
    );
  },
};

export const cancel: Check = {
  id: 'failures.cancel',
  title: 'a cancel on the control topic stops the running attempt',
  section: 'MQTT › workers/{id}/control',
  timeoutMs: 20_000,
  async run(ctx) {
    const since = Date.now();
    const id = await ctx.rest.submit({ prompt: promptLasting(8_000), model: KIT_MODEL });
    const listed = await waitListed(ctx, id, since, 5_000);
    expectThat(listed, 'no heartbeat listed the running task within 5 s');
    const cancelledAt = Date.now();
    await ctx.rest.cancel(id);
    const every = ctx.options.heartbeatMs;
    const gone = await waitUnlisted(ctx, id, cancelledAt + every, 2_000 + 2 * every);
    expectThat(
      gone,
      `the worker still runs the task ${2_000 + 2 * every} ms after the master sent cancel`,
    );
    expectThat(ctx.worker().running, 'the worker exited after a cancel');
    const attempt = (await ctx.rest.task(id)).attempt;
    // A chunk that reached the master after it ended the task was refused: then the
    // worker need not report the attempt at all (PROTOCOL.md § gRPC › Connect).
    const reported = await ctx.probe.until(
      () => ctx.tap.resultsOf(id)[0]?.result ?? ctx.tap.chunkRefused(id, attempt),
      3_000,
    );
    expectThat(
      reported,
      'the cancelled attempt was never reported: report it with errorCode cancelled',
    );
    if (reported !== true) {
      expectThat(
        reported.errorCode === 'cancelled',
        `the cancelled attempt was reported with errorCode ${JSON.stringify(reported.errorCode)}, not cancelled`,
      );
    }
  },
};

/** Drains the worker: acknowledged, said in its record and heartbeats, new work answered `draining`. */
async function expectDrained(ctx: ConformanceContext): Promise<void> {
  const { workerId, probe } = ctx;
  const drained = await ctx.rest.command(workerId, 'drain');
  expectThat(
    drained === 200,
    drained === 504
      ? 'drain was answered 504: the master got no ack within 5 s (publish the online record again at once with ack: { id, ok: true })'
      : `drain was answered ${drained}`,
  );
  // Heartbeats the probe hears after the acknowledging record were sent after it.
  const record = await probe.until(() => {
    const last = probe.statusesOf(workerId).at(-1);
    return (last?.value as WorkerOnline | undefined)?.draining === true && last;
  }, 2_000);
  expectThat(record, 'the online record after drain does not say draining: true');
  const since = record.at + 1;
  await waitHeartbeats(ctx, since, 1, 3 * ctx.options.heartbeatMs);
  expectThat(
    heartbeatsSince(ctx, since).every((h) => h.draining),
    'a heartbeat after drain says draining: false',
  );
  const stray = strayAssignment(2_000);
  const sent = Date.now();
  await probe.publish(workerId, 'tasks', stray);
  await waitHeartbeats(ctx, sent, 3, 6 * ctx.options.heartbeatMs);
  expectThat(
    !heartbeatsSince(ctx, sent).some((h) => h.active.some((a) => a.taskId === stray.taskId)),
    'a drained worker ran a new assignment: answer it with errorCode draining',
  );
  const refusal = await probe.until(() => ctx.tap.resultsOf(stray.taskId)[0]?.result, 3_000);
  expectThat(
    refusal?.errorCode === 'draining',
    refusal
      ? `an assignment while drained was answered with errorCode ${JSON.stringify(refusal.errorCode)}, not draining`
      : 'an assignment while drained got no result: answer it with errorCode draining, never drop it',
  );
}

/** After `resume`, heartbeats say draining: false and a task runs. */
async function expectResumed(ctx: ConformanceContext): Promise<void> {
  const after = Date.now();
  const back = await ctx.probe.until(
    () => heartbeatsSince(ctx, after).find((h) => !h.draining),
    3 * ctx.options.heartbeatMs,
  );
  expectThat(back, 'no heartbeat says draining: false after resume');
  const id = await ctx.rest.submit({ prompt: 'after resume', model: KIT_MODEL });
  const task = await ctx.rest.waitTask(id, finished, 10_000);
  expectThat(
    task.state === 'completed',
    `after resume a task ended ${task.state} (${task.error ?? ''})`,
  );
}

export const drainResume: Check = {
  id: 'failures.drain-resume',
  title: 'drain: acknowledged, draining: true, refuses new work; resume undoes it',
  section: 'MQTT › workers/{id}/control',
  timeoutMs: 25_000,
  async run(ctx) {
    let resumed = false;
    try {
      await expectDrained(ctx);
      const answered = await ctx.rest.command(ctx.workerId, 'resume');
      resumed = answered === 200;
      expectThat(resumed, `resume was answered ${answered}`);
      await expectResumed(ctx);
    } finally {
      // A failed check must not leave the worker drained for the checks after it.
      if (!resumed) await ctx.rest.command(ctx.workerId, 'resume').catch(() => 0);
    }
  },
};

/** The master ends a task itself this long past its deadline; the worker must be first. */
const MASTER_DEADLINE_SLACK_MS = 3_000;

export const deadline: Check = {
  id: 'failures.deadline',
  title: 'gives up a running attempt at its deadline and reports it',
  section: 'MQTT › workers/{id}/tasks: assignment',
  timeoutMs: 20_000,
  async run(ctx) {
    const timeoutMs = 1_500;
    const submitted = Date.now();
    const id = await ctx.rest.submit({ prompt: promptLasting(8_000), model: KIT_MODEL, timeoutMs });
    const task = await ctx.rest.waitTask(
      id,
      finished,
      timeoutMs + MASTER_DEADLINE_SLACK_MS + 2_000,
    );
    const late = Date.now() - submitted - timeoutMs;
    expectThat(task.state === 'failed', `a task past its deadline ended ${task.state}`);
    expectThat(
      !/^timed out after/.test(task.error ?? ''),
      `the worker did not report the deadline: the master ended the task itself ${MASTER_DEADLINE_SLACK_MS} ms past it (${task.error})`,
    );
    expectThat(late < MASTER_DEADLINE_SLACK_MS, `the failure came ${late} ms past the deadline`);
    const [reported] = ctx.tap.resultsOf(id).map((r) => r.result);
    expectThat(
      reported?.errorCode === 'deadline_exceeded',
      `the attempt past its deadline was reported with errorCode ${JSON.stringify(reported?.errorCode)}, not deadline_exceeded`,
    );
  },
};

/** Longest the kit waits for its master to declare the paused worker dead (3 × heartbeatMs, then a 250 ms sweep). */
const DECLARED_DEAD_MS = 10_000;

const runsAttempt = (h: Heartbeat, taskId: string, attempt: number) =>
  h.active.some((a) => a.taskId === taskId && a.attempt === attempt);

export const leaseRevoked: Check = {
  id: 'failures.lease-revoked',
  title: 'stops an attempt whose lease the master revoked, and sends nothing more for it',
  section: 'MQTT › workers/{id}/control',
  timeoutMs: 30_000,
  needs: ['signals'],
  async run(ctx) {
    const { probe, tap, workerId } = ctx;
    const since = Date.now();
    const id = await ctx.rest.submit({ prompt: promptLasting(8_000), model: KIT_MODEL });
    try {
      const listed = await waitListed(ctx, id, since, 5_000);
      expectThat(listed, 'no heartbeat listed the running task within 5 s');
      const attempt = heartbeatsSince(ctx, listed)
        .find((h) => lists(h, id))
        ?.active.find((a) => a.taskId === id)?.attempt;
      // Silent past 3 × heartbeatMs, the worker is declared dead: the master revokes the
      // attempt's lease and requeues the task. Heard again, it is told to cancel that attempt.
      const worker = ctx.worker();
      worker.signal('SIGSTOP');
      try {
        const dead = await ctx.rest.waitWorker(
          workerId,
          (w) => w?.state === 'offline',
          DECLARED_DEAD_MS,
        );
        if (dead?.state !== 'offline') {
          throw new Error(`the kit's master did not declare the paused worker dead`);
        }
      } finally {
        worker.signal('SIGCONT');
      }
      const resumed = Date.now();
      const revoked = await probe.until(
        () =>
          probe.masterLog.find(
            (l) =>
              l.at >= resumed &&
              l.line.taskId === id &&
              (l.line.msg === 'stale attempt stopped' || l.line.msg === 'result rejected'),
          ),
        5_000,
      );
      expectThat(
        revoked,
        'resumed, the worker named its revoked attempt in no heartbeat, chunk or result within 5 s',
      );
      const every = ctx.options.heartbeatMs;
      const gone = await probe.until(
        () =>
          heartbeatsSince(ctx, revoked.at + every).find(
            (h) => attempt !== undefined && !runsAttempt(h, id, attempt),
          ),
        2_000 + 2 * every,
      );
      expectThat(
        gone,
        `the worker still lists attempt ${attempt} ${2_000 + 2 * every} ms after the master revoked it and sent cancel: stop it at once`,
      );
      const late = tap
        .chunksOf(id)
        .filter((c) => c.chunk.attempt === attempt && c.at > revoked.at + STOP_SENDING_MS);
      expectThat(
        late.length === 0,
        `${late.length} chunks of the revoked attempt came more than ${STOP_SENDING_MS} ms after the master revoked it: stop sending`,
      );
      const results = tap.resultsOf(id).filter((r) => r.result.attempt === attempt);
      expectThat(
        results.length <= 1 && results.every((r) => r.result.errorCode === 'cancelled'),
        `the revoked attempt was reported ${results.length} time(s) (${results.map((r) => JSON.stringify(r.result.errorCode || 'text')).join(', ')}): report it once, errorCode cancelled, or not at all once the master refused it`,
      );
      expectThat(ctx.worker().running, 'the worker exited after its lease was revoked');
    } finally {
      // The retry of the task would hold a slot for the checks after this one.
      await ctx.rest.cancel(id).catch(() => undefined);
      await waitUnlisted(ctx, id, Date.now(), 3_000);
    }
  },
};
