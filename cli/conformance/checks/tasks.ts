/** Tasks: an assignment run to a result, its chunks in order, and slots respected. */
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { type Check, expectThat } from '../check.ts';
import { KIT_MODEL } from '../worker-env.ts';
import { echoAnswer, heartbeatsSince, promptLasting, strayAssignment } from './support.ts';

const finished = (t: TaskView) => t.state !== 'queued' && t.state !== 'running';

export const result: Check = {
  id: 'tasks.result',
  title: 'runs an assignment and reports one result with text, usage and timings',
  section: 'gRPC › TaskResult',
  timeoutMs: 20_000,
  async run(ctx) {
    const prompt = 'conformance says hello';
    const id = await ctx.rest.submit({ prompt, model: KIT_MODEL });
    const task = await ctx.rest.waitTask(id, finished, 15_000);
    expectThat(
      task.state === 'completed',
      `the task is ${task.state}${task.error ? ` (${task.error})` : ''} 15 s after submission`,
    );
    expectThat(task.workerId === ctx.workerId, `the task ran on ${task.workerId}`);
    expectThat(
      task.result === echoAnswer(prompt),
      `the result is ${JSON.stringify(task.result)}; the echo provider answers ${JSON.stringify(echoAnswer(prompt))} (was the prompt parsed from the assignment?)`,
    );
    expectThat(task.usage, 'the result carries no usage (input and output tokens)');
    expectThat(
      task.usage.outputTokens > 0,
      `usage says ${task.usage.outputTokens} output tokens for a non-empty answer`,
    );
    const [sent] = ctx.tap.resultsOf(id).map((r) => r.result);
    expectThat(sent, 'the kit saw no result on the gRPC stream for the task');
    expectThat(
      sent.startedAt > 0 && sent.finishedAt >= sent.startedAt,
      `the result's started_at ${sent.startedAt} / finished_at ${sent.finishedAt} are not the worker's Unix ms`,
    );
    expectThat(sent.model === KIT_MODEL, `the result's model is ${JSON.stringify(sent.model)}`);
    expectThat(
      ctx.tap.resultsOf(id).length === 1,
      `the worker sent ${ctx.tap.resultsOf(id).length} results for one accepted attempt`,
    );
  },
};

export const streamOrder: Check = {
  id: 'tasks.stream-order',
  title: 'streams chunks with seq 0, 1, 2, … whose text joins to the result',
  section: 'gRPC › Connect',
  timeoutMs: 20_000,
  async run(ctx) {
    const prompt = promptLasting(600);
    const { taskId, pieces } = await ctx.rest.stream(prompt, KIT_MODEL);
    const task = await ctx.rest.task(taskId);
    expectThat(task.state === 'completed', `the task is ${task.state} (${task.error ?? ''})`);
    const chunks = ctx.tap.chunksOf(taskId).map((c) => c.chunk);
    const [final] = ctx.tap.resultsOf(taskId).map((r) => r.result);
    expectThat(final, 'the kit saw no result on the gRPC stream for the task');
    expectThat(
      chunks.length >= 2,
      `the worker sent ${chunks.length} chunk(s) for a ${prompt.length}-character echo streamed over ${ECHO_WINDOW}; stream chunks as the text comes`,
    );
    const seqs = chunks.map((c) => c.seq);
    expectThat(
      seqs.every((seq, i) => seq === i),
      `chunk seq went ${seqs.slice(0, 12).join(', ')}${seqs.length > 12 ? ', …' : ''}: count 0, 1, 2, … per attempt, in the order sent`,
    );
    const foreign = chunks.find((c) => c.attempt !== final.attempt || c.lease !== final.lease);
    expectThat(
      !foreign,
      "a chunk carries another attempt or lease than the result: echo the assignment's",
    );
    const streamed = chunks.map((c) => c.text).join('');
    expectThat(
      streamed === final.text,
      `the chunks join to ${streamed.length} characters that differ from the ${final.text.length}-character result`,
    );
    expectThat(
      pieces.join('') === task.result,
      'what the master streamed to the client differs from the result',
    );
  },
};

const ECHO_WINDOW = 'about 600 ms';

export const slots: Check = {
  id: 'tasks.slots',
  title: 'never runs more than SLOTS attempts; refuses the one past them',
  section: 'MQTT › workers/{id}/tasks: assignment',
  timeoutMs: 40_000,
  async run(ctx) {
    const { options, workerId } = ctx;
    const since = Date.now();
    const prompt = promptLasting(1_200);
    const ids = await Promise.all(
      Array.from({ length: options.slots + 2 }, () =>
        ctx.rest.submit({ prompt, model: KIT_MODEL }),
      ),
    );
    const full = await ctx.probe.until(
      () => heartbeatsSince(ctx, since).some((h) => h.active.length >= options.slots),
      10_000,
    );
    expectThat(
      full,
      `no heartbeat listed ${options.slots} running attempts within 10 s of ${ids.length} submissions`,
    );
    // The master never assigns past the slots; the kit does, as a late duplicate dispatch would.
    const extra = strayAssignment(1_000);
    await ctx.probe.publish(workerId, 'tasks', extra);
    const tasks = await Promise.all(ids.map((id) => ctx.rest.waitTask(id, finished, 30_000)));
    const beats = heartbeatsSince(ctx, since);
    const most = Math.max(...beats.map((h) => h.active.length));
    expectThat(
      most <= options.slots,
      `a heartbeat listed ${most} running attempts with SLOTS=${options.slots}`,
    );
    expectThat(
      !beats.some((h) => h.active.some((a) => a.taskId === extra.taskId)),
      'it ran an assignment that came while every slot was busy: answer it with errorCode worker_full',
    );
    const refusal = await ctx.probe.until(() => ctx.tap.resultsOf(extra.taskId)[0]?.result, 3_000);
    expectThat(
      refusal?.errorCode === 'worker_full',
      refusal
        ? `the assignment past the slots was answered with errorCode ${JSON.stringify(refusal.errorCode)}, not worker_full`
        : 'the assignment past the slots got no result: answer it with errorCode worker_full, never drop it',
    );
    const notDone = tasks.filter((t) => t.state !== 'completed');
    expectThat(
      notDone.length === 0,
      `${notDone.length} of ${tasks.length} tasks did not complete: ${notDone.map((t) => `${t.state} ${t.error ?? ''}`).join('; ')}`,
    );
    const spans = tasks.map((t) => [t.timings.startedAt ?? 0, t.timings.finishedAt ?? 0] as const);
    const overlap = Math.max(
      ...spans.map(([start]) => spans.filter(([s, f]) => s <= start && start < f).length),
    );
    expectThat(
      overlap <= options.slots,
      `${overlap} tasks ran at once by the results' startedAt / finishedAt, with SLOTS=${options.slots}`,
    );
  },
};
