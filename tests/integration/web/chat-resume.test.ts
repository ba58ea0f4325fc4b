import { describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait-for.ts';
import { taskView, UNKNOWN_TASK_ERROR, worker } from './fake-master.ts';
import {
  bubble,
  bubbleIn,
  reload,
  savedCursor,
  send,
  sessionIdOf,
  useChatHarness,
} from './ui-harness.ts';

/**
 * The session outbox from the page's side: every task event carries an
 * outboxSeq, the page skips what it has processed, resumes from its last
 * position after a reconnect or reload, and starts afresh (sending the tasks
 * it still waits for) when the master's epoch changed.
 */
const UNCONFIRMED_ERROR = 'The page was closed before the master confirmed this task.';

const ui = useChatHarness({
  workers: [
    worker({ id: 'gpu-worker-1', kind: 'gpu', models: ['llama-3-8b', 'echo'] }),
    worker({ id: 'cpu-worker-1', models: ['echo'] }),
  ],
  models: ['llama-3-8b', 'echo'],
});
const openChat = ui.openChat;

const ask = ui.ask;

const ackedUpTo = (sessionId: string, seq: number) =>
  waitFor(() => ui.master.ackedSeq(sessionId) === seq, { what: `the page to ack ${seq}` });

describe('chat UI on the session outbox', () => {
  it('ignores a duplicate replay of events it has already processed', async () => {
    const page = await openChat();
    const sessionId = await sessionIdOf(page);
    const task = await ask(page, 'Stream me something');
    const { taskId } = task;
    task.emit('task:assigned', { taskId, attempt: 1, workerId: 'cpu-worker-1', workerKind: 'cpu' });
    task.emit('task:chunk', { taskId, attempt: 1, seq: 0, text: 'One' });
    const last = task.emit('task:chunk', { taskId, attempt: 1, seq: 1, text: ' two' });
    const text = bubble(page, taskId).getByTestId('answer-text');
    await text.getByText('One two', { exact: true }).waitFor();
    await ackedUpTo(sessionId, last);

    // The first `task:queued` again, with its outboxSeq: applied, it would put
    // the running answer back in the queue.
    ui.master.replayDuplicates(sessionId, (e) => e.name === 'task:queued' && e.seq < last);
    await ask(page, 'A fence: shown once the replay above was handled');
    await bubbleIn(page, taskId, 'running').getByText('Running on cpu-worker-1').waitFor();
    await expect(text.textContent()).resolves.toBe('One two');
    // Then everything sent so far.
    ui.master.replayDuplicates(sessionId);

    task.emit('task:chunk', { taskId, attempt: 1, seq: 2, text: ' three' });
    await text.getByText('One two three', { exact: true }).waitFor();
    task.emit('task:completed', taskView(taskId, { state: 'completed', result: 'One two three.' }));
    await bubbleIn(page, taskId, 'completed').waitFor();
    ui.master.replayDuplicates(sessionId);
    await ask(page, 'Another fence');

    await expect(page.getByTestId('message-assistant').count()).resolves.toBe(3);
    await expect(bubble(page, taskId).count()).resolves.toBe(1);
    await expect(text.textContent()).resolves.toBe('One two three.');
  });

  it('resumes after a reconnect in the same epoch and gets only the missed events', async () => {
    const page = await openChat();
    const sessionId = await sessionIdOf(page);
    const task = await ask(page, 'Keep going across a reconnect');
    const { taskId } = task;
    task.emit('task:assigned', { taskId, attempt: 1, workerId: 'cpu-worker-1', workerKind: 'cpu' });
    const seen = task.emit('task:chunk', { taskId, attempt: 1, seq: 0, text: 'Alpha' });
    const text = bubble(page, taskId).getByTestId('answer-text');
    await text.getByText('Alpha', { exact: true }).waitFor();

    const hello = ui.master.nextHello();
    ui.master.dropConnections();
    // No socket of the session is in its room now: these reach only the outbox.
    ui.master.skipSeq(sessionId, 3);
    const missed = [
      task.emit('task:chunk', { taskId, attempt: 1, seq: 1, text: ' beta' }),
      task.emit('task:chunk', { taskId, attempt: 1, seq: 2, text: ' gamma' }),
    ];
    const back = await hello;
    expect(back.hello.resume).toEqual({ epoch: ui.master.epoch, lastSeq: seen });
    expect(back.hello.pending).toEqual([taskId]);
    expect(back.reply.resumed).toBe('replay');
    expect(back.replayed).toEqual(missed);
    await text.getByText('Alpha beta gamma', { exact: true }).waitFor();
    await ackedUpTo(sessionId, missed[1] ?? -1);
    await expect(savedCursor(page)).resolves.toEqual({
      epoch: ui.master.epoch,
      lastSeq: missed[1],
    });
  });

  it('replays a completion missed while the page was away, then ignores late duplicates', async () => {
    const page = await openChat();
    const sessionId = await sessionIdOf(page);
    await page.getByTestId('model-select').selectOption('llama-3-8b');
    const task = await ask(page, 'Finish while I am away');
    const { taskId } = task;
    task.emit('task:assigned', { taskId, attempt: 1, workerId: 'gpu-worker-1', workerKind: 'gpu' });
    const seen = task.emit('task:chunk', { taskId, attempt: 1, seq: 0, text: 'Partial' });
    await bubble(page, taskId).getByText('Partial', { exact: true }).waitFor();

    // Leaving saves the history with the cursor; the answer completes meanwhile.
    await page.goto('about:blank');
    const final = taskView(taskId, {
      state: 'completed',
      model: 'llama-3-8b',
      result: 'The whole answer, finished while the page was away.',
      workerId: 'gpu-worker-1',
      workerKind: 'gpu',
    });
    const done = task.emit('task:completed', final);
    const back = await reload(page, ui.master, ui.master.url);
    expect(back.hello.resume).toEqual({ epoch: ui.master.epoch, lastSeq: seen });
    expect(back.reply.resumed).toBe('replay');
    expect(back.replayed).toEqual([done]);

    const answer = bubbleIn(page, taskId, 'completed');
    await answer.waitFor();
    const text = answer.getByTestId('answer-text');
    await expect(text.textContent()).resolves.toBe(final.result);
    await expect(answer.getByTestId('answer-status').isHidden()).resolves.toBe(true);
    const meta = answer.getByTestId('answer-meta');
    await expect(meta.textContent()).resolves.toMatch(/gpu-worker-1.*GPU.*12 ms.*1\.53 s.*llama/);

    // The whole log again, and a second completion the master should never send.
    ui.master.replayDuplicates(sessionId);
    task.emit('task:chunk', { taskId, attempt: 1, seq: 1, text: ' and a late chunk' });
    task.emit('task:completed', { ...final, result: 'A second, different result' });
    await ask(page, 'And one more');
    await expect(page.getByTestId('message-assistant').count()).resolves.toBe(2);
    await expect(text.textContent()).resolves.toBe(final.result);
    await expect(meta.getByTestId('meta-worker-id').count()).resolves.toBe(1);
    await page.waitForFunction(() => JSON.stringify({ ...localStorage }).includes('And one more'));
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
    expect(stored).not.toContain('late chunk');
    expect(stored).not.toContain('A second, different result');
  });

  it('after a master restart sends its pending tasks and takes their state once', async () => {
    const page = await openChat();
    const sessionId = await sessionIdOf(page);
    const done = await ask(page, 'Finish during the restart');
    done.emit('task:assigned', {
      taskId: done.taskId,
      attempt: 1,
      workerId: 'cpu-worker-1',
      workerKind: 'cpu',
    });
    done.emit('task:chunk', { taskId: done.taskId, attempt: 1, seq: 0, text: 'Before' });
    const lost = await ask(page, 'Forgotten by the restart');
    const seen = lost.emit('task:assigned', {
      taskId: lost.taskId,
      attempt: 1,
      workerId: 'cpu-worker-1',
      workerKind: 'cpu',
    });
    await bubbleIn(page, lost.taskId, 'running').waitFor();
    await ackedUpTo(sessionId, seen);

    const final = taskView(done.taskId, {
      state: 'completed',
      result: 'Finished while the master restarted.',
      workerId: 'cpu-worker-1',
      workerKind: 'cpu',
    });
    ui.master.setTask(final);
    ui.master.forgetTask(lost.taskId);
    const oldEpoch = ui.master.epoch;
    const hello = ui.master.nextHello();
    // The resync arrives before the hello ack, which alone says the epoch is new.
    ui.master.setEventsBeforeHelloAck(true);
    ui.master.restart();
    const back = await hello;
    ui.master.setEventsBeforeHelloAck(false);

    expect(back.hello.resume).toEqual({ epoch: oldEpoch, lastSeq: seen });
    expect(back.hello.pending).toEqual([done.taskId, lost.taskId]);
    expect(back.reply.epoch).not.toBe(oldEpoch);
    expect(back.reply.resumed).toBe('resync');
    // Numbered afresh, below the old lastSeq: taken all the same, as the epoch changed.
    // Nothing for the forgotten task: the page finds out from the REST 404.
    expect(back.resynced.map((e) => [e.seq, e.name])).toEqual([[1, 'task:completed']]);
    const answer = bubbleIn(page, done.taskId, 'completed');
    await answer.waitFor();
    await expect(answer.getByTestId('answer-text').textContent()).resolves.toBe(final.result);
    const failed = bubbleIn(page, lost.taskId, 'failed');
    await expect(failed.getByTestId('answer-error').textContent()).resolves.toBe(
      UNKNOWN_TASK_ERROR,
    );
    await ackedUpTo(sessionId, 1);
    await expect(savedCursor(page)).resolves.toEqual({ epoch: back.reply.epoch, lastSeq: 1 });

    ui.master.replayDuplicates(sessionId);
    await ask(page, 'After the restart');
    await expect(page.getByTestId('message-assistant').count()).resolves.toBe(3);
    await expect(bubble(page, done.taskId).count()).resolves.toBe(1);
    await expect(answer.getByTestId('answer-text').textContent()).resolves.toBe(final.result);
  });

  it('sends a submission again after a reload when it never reached the master', async () => {
    const page = await openChat();
    const logged = ui.master.submitLog.length;
    ui.master.loseNextSubmit();
    await send(page, 'Lost on the way in');
    const sending = page.getByTestId('message-assistant').last();
    await sending.getByText('Sending…').waitFor();
    await waitFor(() => ui.master.submitLog.length === logged + 1, { what: 'the lost submission' });

    const back = await reload(page, ui.master);
    expect(back.hello.pending).toBeUndefined();
    const task = await ui.master.nextSubmit();
    const [first, second, ...more] = ui.master.submitLog.slice(logged);
    expect(more).toEqual([]);
    expect(first).toMatchObject({ dropped: 'submit' });
    expect(second).toEqual({ clientId: first?.clientId, taskId: task.taskId });
    expect(task.payload.prompt).toBe('Lost on the way in');
    await bubbleIn(page, task.taskId, 'queued').waitFor();
    task.emit('task:completed', taskView(task.taskId, { state: 'completed', result: 'Made it.' }));
    await bubbleIn(page, task.taskId, 'completed').getByText('Made it.').waitFor();
    await expect(page.getByTestId('message-assistant').count()).resolves.toBe(1);
  });

  it('fails a restored bubble whose submit was never confirmed', async () => {
    const page = await openChat();
    // Seeded before the app starts: the page being left saves its own (empty) history on pagehide.
    await page.context().addInitScript(() => {
      if (sessionStorage.getItem('seeded')) return;
      sessionStorage.setItem('seeded', '1');
      const ts = Date.now();
      localStorage.setItem(
        `flota.history.${localStorage.getItem('flota.sessionId')}`,
        JSON.stringify([
          { kind: 'user', id: 'user-1', text: 'Lost in flight', ts },
          { kind: 'assistant', id: 'answer-1', state: 'queued', text: '', attempt: 0, ts },
        ]),
      );
    });
    await reload(page, ui.master);
    const failed = page.locator('[data-testid="message-assistant"][data-state="failed"]');
    await failed.waitFor();
    await expect(failed.getByTestId('answer-error').textContent()).resolves.toBe(UNCONFIRMED_ERROR);
  });
});
