import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { taskView, worker } from './fake-master.ts';
import { bubble, bubbleIn, CONNECTED, send, useChatHarness } from './ui-harness.ts';

/**
 * Task events reach a session only while one of its sockets is connected.
 * These tests make a task change state while the page is away (a reload or a
 * dropped connection) and check that the page asks the REST API afterwards.
 */
const UNKNOWN_TASK_ERROR = 'This task is no longer known to the master.';
const UNCONFIRMED_ERROR = 'The page was closed before the master confirmed this task.';

const ui = useChatHarness({
  workers: [
    worker({ id: 'gpu-worker-1', kind: 'gpu', models: ['llama-3-8b', 'echo'] }),
    worker({ id: 'cpu-worker-1', models: ['echo'] }),
  ],
  models: ['llama-3-8b', 'echo'],
});
const openChat = ui.openChat;

/** Reloads and waits until the page has greeted the master again. */
async function reload(page: Page) {
  const hello = ui.master.nextHello();
  await page.reload();
  await hello;
  await page.locator(CONNECTED).waitFor();
}

describe('chat UI catching up on missed task events', () => {
  it('shows a completion missed during a reload and ignores the late duplicate event', async () => {
    const page = await openChat();
    await page.getByTestId('model-select').selectOption('llama-3-8b');
    await send(page, 'Finish while I reload');
    const task = await ui.master.nextSubmit();
    const { taskId } = task;
    await bubbleIn(page, taskId, 'queued').waitFor();

    task.emit('task:assigned', { taskId, attempt: 1, workerId: 'gpu-worker-1', workerKind: 'gpu' });
    task.emit('task:chunk', { taskId, attempt: 1, seq: 0, text: 'Partial' });
    const text = bubble(page, taskId).getByTestId('answer-text');
    await text.getByText('Partial', { exact: true }).waitFor();
    await page.waitForFunction(() => JSON.stringify({ ...localStorage }).includes('Partial'));

    // The task finishes while the page is away: the master knows, no event is sent.
    const final = taskView(taskId, {
      state: 'completed',
      model: 'llama-3-8b',
      result: 'The whole answer, finished while the page was away.',
      workerId: 'gpu-worker-1',
      workerKind: 'gpu',
      requires: { gpu: false },
    });
    ui.master.setTask(final);
    await reload(page);

    const done = bubbleIn(page, taskId, 'completed');
    await done.waitFor();
    await expect(text.textContent()).resolves.toBe(final.result);
    await expect(done.getByTestId('answer-status').isHidden()).resolves.toBe(true);
    const meta = done.getByTestId('answer-meta');
    await expect(meta.getByTestId('meta-worker-id').textContent()).resolves.toBe('gpu-worker-1');
    await expect(meta.getByTestId('meta-worker-kind').textContent()).resolves.toBe('GPU');
    await expect(meta.getByTestId('meta-model').textContent()).resolves.toBe('llama-3-8b');
    await expect(meta.textContent()).resolves.toMatch(/12 ms.*1\.50 s.*1\.53 s/);

    // The socket is back in the session room: a late chunk and a duplicate completion arrive.
    task.emit('task:chunk', { taskId, attempt: 1, seq: 1, text: ' and a late chunk' });
    task.emit('task:completed', final);
    task.emit('task:completed', { ...final, result: 'A second, different result' });
    // Events reach one socket in order: once the next task shows, those above were handled.
    await send(page, 'And one more');
    const next = await ui.master.nextSubmit();
    await bubbleIn(page, next.taskId, 'queued').waitFor();

    await expect(page.getByTestId('message-assistant').count()).resolves.toBe(2);
    await expect(done.count()).resolves.toBe(1);
    await expect(text.textContent()).resolves.toBe(final.result);
    await expect(meta.getByTestId('meta-worker-id').count()).resolves.toBe(1);
    await expect(meta.textContent()).resolves.toMatch(/12 ms.*1\.50 s.*1\.53 s.*llama-3-8b/);
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
    expect(stored).not.toContain('late chunk');
    expect(stored).not.toContain('A second, different result');
  });

  it('catches up after a reconnect, then fails a task the master no longer knows', async () => {
    const page = await openChat();
    await send(page, 'Keep going across a reconnect');
    const task = await ui.master.nextSubmit();
    const { taskId } = task;
    await bubbleIn(page, taskId, 'queued').waitFor();

    // Assigned while the socket is down: only the REST view says so.
    ui.master.setTask(
      taskView(taskId, {
        state: 'running',
        attempt: 1,
        workerId: 'cpu-worker-1',
        workerKind: 'cpu',
        timings: { submittedAt: Date.now() },
      }),
    );
    const hello = ui.master.nextHello();
    ui.master.dropConnections();
    await hello;
    const running = bubbleIn(page, taskId, 'running');
    await running.getByText('Running on cpu-worker-1').waitFor();

    // Still running: events after the reconnect keep streaming into the bubble.
    task.emit('task:chunk', { taskId, attempt: 1, seq: 0, text: 'Still streaming' });
    await running
      .getByTestId('answer-text')
      .getByText('Still streaming', { exact: true })
      .waitFor();
    await page.waitForFunction(() =>
      JSON.stringify({ ...localStorage }).includes('Still streaming'),
    );

    // The task expires from the master's store before the page comes back.
    ui.master.forgetTask(taskId);
    await reload(page);
    const failed = bubbleIn(page, taskId, 'failed');
    await failed.waitFor();
    await expect(failed.getByTestId('answer-error').textContent()).resolves.toBe(
      UNKNOWN_TASK_ERROR,
    );
    await expect(failed.getByTestId('answer-status').isHidden()).resolves.toBe(true);
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
          {
            kind: 'assistant',
            id: 'answer-1',
            state: 'queued',
            text: '',
            attempt: 0,
            chunks: {},
            ts,
          },
        ]),
      );
    });
    await reload(page);
    const failed = page.locator('[data-testid="message-assistant"][data-state="failed"]');
    await failed.waitFor();
    await expect(failed.getByTestId('answer-error').textContent()).resolves.toBe(UNCONFIRMED_ERROR);
  });
});
