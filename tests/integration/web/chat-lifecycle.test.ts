import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait-for.ts';
import { taskView, worker } from './fake-master.ts';
import { bubble, bubbleIn, send, sessionIdOf, useChatHarness } from './ui-harness.ts';

/**
 * What happens to an answer on its way: an attempt lost and retried on
 * another worker, a cancel (by the user, or a timeout), and a submission
 * whose ack never came.
 */
const SCREENSHOT = '/tmp/flota-ui-lifecycle.png';

const ui = useChatHarness({
  workers: [
    worker({ id: 'gpu-worker-1', kind: 'gpu', models: ['echo'] }),
    worker({ id: 'cpu-worker-1', models: ['echo'] }),
  ],
  models: ['echo'],
});
const openChat = ui.openChat;

const ask = ui.ask;

/** The computed border style of a bubble, to tell a cancel from a failure at a glance. */
const borderStyle = (page: Page, taskId: string) =>
  bubble(page, taskId)
    .locator('.bubble-assistant')
    .evaluate((el) => getComputedStyle(el).borderTopStyle);

describe('chat UI through retries, cancels and lost acks', () => {
  it('keeps the lost attempt’s text while retrying, and starts over where the next worker cannot continue', async () => {
    const page = await openChat();
    const task = await ask(page, 'Tell me a long story');
    const { taskId } = task;
    const answer = bubble(page, taskId);
    const text = answer.getByTestId('answer-text');
    const status = answer.getByTestId('answer-status');
    task.emit('task:assigned', { taskId, attempt: 1, workerId: 'gpu-worker-1', workerKind: 'gpu' });
    task.emit('task:chunk', { taskId, attempt: 1, seq: 0, text: 'Once upon' });
    task.emit('task:chunk', { taskId, attempt: 1, seq: 1, text: ' a time' });
    await text.getByText('Once upon a time', { exact: true }).waitFor();

    const reason = 'worker gpu-worker-1 stopped sending heartbeats';
    task.emit('task:retrying', { taskId, attempt: 1, reason });
    const retrying = bubbleIn(page, taskId, 'queued');
    await retrying.getByText(/retrying on another worker/i).waitFor();
    await expect(status.getAttribute('title')).resolves.toContain(reason);
    // What streamed stays (dimmed) until the next attempt says whether it continues it.
    await expect(text.textContent()).resolves.toBe('Once upon a time');
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-retrying.png') });

    // A late chunk of the lost attempt changes nothing; attempt 2 cannot continue: it starts over.
    task.emit('task:chunk', { taskId, attempt: 1, seq: 2, text: ' there was' });
    task.emit('task:assigned', { taskId, attempt: 2, workerId: 'cpu-worker-1', workerKind: 'cpu' });
    await answer.getByText('Running on cpu-worker-1 · attempt 2 · started over').waitFor();
    await expect(text.textContent()).resolves.toBe('');
    await expect(status.getAttribute('title')).resolves.toContain('starts over');
    task.emit('task:chunk', { taskId, attempt: 2, seq: 0, text: 'Long ago' });
    task.emit('task:chunk', { taskId, attempt: 2, seq: 1, text: ', far away' });
    await text.getByText('Long ago, far away', { exact: true }).waitFor();

    task.emit(
      'task:completed',
      taskView(taskId, {
        state: 'completed',
        attempt: 2,
        result: 'Long ago, far away.',
        workerId: 'cpu-worker-1',
        workerKind: 'cpu',
      }),
    );
    const done = bubbleIn(page, taskId, 'completed');
    await done.waitFor();
    await expect(text.textContent()).resolves.toBe('Long ago, far away.');
    await expect(done.getByTestId('answer-meta').textContent()).resolves.toContain('attempt 2');
    await expect(done.getAttribute('data-retrying')).resolves.toBeNull();
  });

  it('continues the lost attempt’s text on the next worker, never repeating it', async () => {
    const page = await openChat();
    const task = await ask(page, 'Tell me another story');
    const { taskId } = task;
    const answer = bubble(page, taskId);
    const text = answer.getByTestId('answer-text');
    task.emit('task:assigned', { taskId, attempt: 1, workerId: 'gpu-worker-1', workerKind: 'gpu' });
    task.emit('task:chunk', { taskId, attempt: 1, seq: 0, text: 'Once upon' });
    task.emit('task:chunk', { taskId, attempt: 1, seq: 1, text: ' a time' });
    await text.getByText('Once upon a time', { exact: true }).waitFor();
    task.emit('task:retrying', { taskId, attempt: 1, reason: 'worker gpu-worker-1 lost' });
    await bubbleIn(page, taskId, 'queued').waitFor();

    task.emit('task:assigned', {
      taskId,
      attempt: 2,
      workerId: 'cpu-worker-1',
      workerKind: 'cpu',
      continuesFrom: 'Once upon a time',
    });
    await answer.getByText('Running on cpu-worker-1 · attempt 2 · continuing').waitFor();
    task.emit('task:chunk', { taskId, attempt: 2, seq: 0, text: ' there was' });
    task.emit('task:chunk', { taskId, attempt: 2, seq: 1, text: ' a lease' });
    await text.getByText('Once upon a time there was a lease', { exact: true }).waitFor();
    await expect(answer.getByTestId('answer-status').getAttribute('title')).resolves.toContain(
      'continues the answer',
    );
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-continued.png') });
  });

  it('cancels an answer: the button is disabled once pressed and the bubble says Cancelled', async () => {
    const page = await openChat();
    const sessionId = await sessionIdOf(page);
    const task = await ask(page, 'Never mind this one');
    const { taskId } = task;
    task.emit('task:assigned', { taskId, attempt: 1, workerId: 'cpu-worker-1', workerKind: 'cpu' });
    task.emit('task:chunk', { taskId, attempt: 1, seq: 0, text: 'Partial' });
    const answer = bubble(page, taskId);
    await answer.getByText('Partial', { exact: true }).waitFor();

    const cancel = answer.getByTestId('cancel-task');
    await cancel.click();
    const request = await ui.master.nextCancel();
    expect(request).toMatchObject({ taskId, sessionId });
    await expect(cancel.isDisabled()).resolves.toBe(true);
    request.reply({ ok: true, state: 'running' });
    task.emit('task:failed', taskView(taskId, { state: 'cancelled', workerId: 'cpu-worker-1' }));

    const cancelled = bubbleIn(page, taskId, 'cancelled');
    await cancelled.waitFor();
    await expect(cancelled.getByTestId('answer-error').textContent()).resolves.toBe('Cancelled');
    await expect(cancel.isHidden()).resolves.toBe(true);
    await expect(cancelled.getByTestId('answer-text').textContent()).resolves.toBe('Partial');
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-cancelled.png') });

    // Queued, then cancelled by the master's timeout: its reason is shown instead.
    const slow = await ask(page, 'This will take too long');
    await expect(bubble(page, slow.taskId).getByTestId('cancel-task').isEnabled()).resolves.toBe(
      true,
    );
    slow.emit(
      'task:failed',
      taskView(slow.taskId, { state: 'cancelled', attempt: 0, error: 'timed out after 30 s' }),
    );
    const timedOut = bubbleIn(page, slow.taskId, 'cancelled');
    await expect(timedOut.getByTestId('answer-error').textContent()).resolves.toBe(
      'timed out after 30 s',
    );

    // A failure looks different from a cancel.
    const broken = await ask(page, 'This one breaks');
    broken.emit('task:failed', taskView(broken.taskId, { state: 'failed', error: 'Boom' }));
    await bubbleIn(page, broken.taskId, 'failed').waitFor();
    await expect(borderStyle(page, taskId)).resolves.toBe('dashed');
    await expect(borderStyle(page, broken.taskId)).resolves.toBe('solid');
  });

  it('lets the cancel be tried again when the master refuses it', async () => {
    const page = await openChat();
    const task = await ask(page, 'Too late to stop');
    const { taskId } = task;
    const cancel = bubble(page, taskId).getByTestId('cancel-task');
    await cancel.click();
    const request = await ui.master.nextCancel();
    await expect(cancel.isDisabled()).resolves.toBe(true);
    request.reply({ ok: false, error: 'the task is finishing' });
    await page.locator(`[data-task-id="${taskId}"] [data-testid="cancel-task"]:enabled`).waitFor();
    await expect(cancel.getAttribute('title')).resolves.toContain('the task is finishing');

    task.emit('task:completed', taskView(taskId, { state: 'completed', result: 'Done anyway.' }));
    await bubbleIn(page, taskId, 'completed').getByText('Done anyway.').waitFor();
    await expect(cancel.isHidden()).resolves.toBe(true);
  });

  it('sends a submission again with the same client id when its ack is lost', async () => {
    const page = await openChat();
    const logged = ui.master.submitLog.length;
    ui.master.dropNextSubmitAck();
    const reconnected = ui.master.nextHello();
    await send(page, 'Acknowledge me, please');
    const task = await ui.master.nextSubmit();
    const { taskId } = task;
    await reconnected;
    await waitFor(() => ui.master.submitLog.length === logged + 2, { what: 'the second submit' });

    const [first, second, ...more] = ui.master.submitLog.slice(logged);
    expect(more).toEqual([]);
    expect(first).toEqual({ clientId: task.payload.clientId, taskId, dropped: 'ack' });
    expect(second).toEqual({ clientId: task.payload.clientId, taskId });
    await bubbleIn(page, taskId, 'queued').waitFor();

    task.emit('task:chunk', { taskId, attempt: 1, seq: 0, text: 'Here' });
    task.emit('task:completed', taskView(taskId, { state: 'completed', result: 'Here I am.' }));
    const done = bubbleIn(page, taskId, 'completed');
    await done.waitFor();
    await expect(done.getByTestId('answer-text').textContent()).resolves.toBe('Here I am.');
    await expect(done.getByTestId('answer-error').isHidden()).resolves.toBe(true);
    await expect(page.getByTestId('message-assistant').count()).resolves.toBe(1);
    await expect(page.getByTestId('message-user').count()).resolves.toBe(1);
  });
});
