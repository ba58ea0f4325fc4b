import { describe, expect, it } from 'vitest';
import { taskView, worker } from './fake-master.ts';
import { bubble, bubbleIn, sessionIdOf, useChatHarness } from './ui-harness.ts';

/**
 * Priorities and the result cache in the chat UI: the composer's priority and
 * "skip cache" choices reach the submission, a queued answer can move to
 * another priority (or says why it could not), and an answer from the cache
 * says so instead of naming a worker.
 */
const SCREENSHOT = '/tmp/flota-ui-priority.png';

const ui = useChatHarness({
  workers: [worker({ id: 'cpu-worker-1', models: ['echo'] })],
  models: ['echo'],
});
const openChat = ui.openChat;

const ask = ui.ask;

describe('priorities and cached answers in the chat UI', () => {
  it('sends the chosen priority and "skip cache", and shows the priority with the answer', async () => {
    const page = await openChat();
    const priority = page.getByTestId('priority-select');
    await expect(priority.locator('option').allTextContents()).resolves.toEqual([
      'Normal · 0',
      'High · 100',
      'Urgent · 500',
      'Top · 1000',
    ]);
    await expect(priority.inputValue()).resolves.toBe('0');
    await expect(priority.getAttribute('title')).resolves.toContain('Priority 0');

    await priority.selectOption('500');
    await expect(priority.getAttribute('title')).resolves.toContain('Priority 500');
    await page.getByTestId('no-cache-toggle').check();
    const urgent = await ask(page, 'Urgent and fresh, please');
    expect(urgent.payload).toMatchObject({ priority: 500, cache: false });

    // The choices stay for the next prompt until changed.
    await page.getByTestId('no-cache-toggle').uncheck();
    const cacheable = await ask(page, 'Urgent, a cached answer will do');
    expect(cacheable.payload.priority).toBe(500);
    expect(cacheable.payload).not.toHaveProperty('cache');

    await priority.selectOption('0');
    const normal = await ask(page, 'No hurry');
    expect(normal.payload.priority).toBe(0);

    urgent.emit(
      'task:completed',
      taskView(urgent.taskId, { state: 'completed', priority: 500, result: 'Done first.' }),
    );
    const done = bubbleIn(page, urgent.taskId, 'completed');
    await done.waitFor();
    await expect(done.getByTestId('meta-priority').textContent()).resolves.toBe('priority 500');
    await expect(done.getByTestId('priority-editor').isHidden()).resolves.toBe(true);
  });

  it('moves a queued answer to another priority', async () => {
    const page = await openChat();
    const sessionId = await sessionIdOf(page);
    const task = await ask(page, 'Can this go first?');
    const { taskId } = task;
    const answer = bubble(page, taskId);
    const select = answer.getByTestId('priority-change');
    await expect(select.inputValue()).resolves.toBe('0');
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-queued.png') });

    await select.selectOption('1000');
    const request = await ui.master.nextReprioritize();
    expect(request).toMatchObject({ taskId, priority: 1000, sessionId });
    await expect(select.isDisabled()).resolves.toBe(true);
    request.reply({ ok: true, state: 'queued', priority: 1000 });
    await answer.locator('[data-testid="priority-change"]:enabled').waitFor();
    await expect(select.inputValue()).resolves.toBe('1000');
    await expect(answer.getByTestId('priority-error').isHidden()).resolves.toBe(true);

    // And back down: the bubble shows what the master confirmed.
    await select.selectOption('100');
    const back = await ui.master.nextReprioritize();
    expect(back).toMatchObject({ taskId, priority: 100 });
    back.reply({ ok: true, state: 'queued', priority: 100 });
    await answer.locator('[data-testid="priority-change"]:enabled').waitFor();
    await expect(select.locator('option:checked').textContent()).resolves.toBe('High · 100');

    task.emit('task:assigned', { taskId, attempt: 1, workerId: 'cpu-worker-1', workerKind: 'cpu' });
    await bubbleIn(page, taskId, 'running').waitFor();
    await expect(answer.getByTestId('priority-editor').isHidden()).resolves.toBe(true);
    task.emit(
      'task:completed',
      taskView(taskId, { state: 'completed', priority: 100, result: 'Went first.' }),
    );
    const done = bubbleIn(page, taskId, 'completed');
    await expect(done.getByTestId('meta-priority').textContent()).resolves.toBe('priority 100');
  });

  it('shows why the priority did not change when the task had already started', async () => {
    const page = await openChat();
    const task = await ask(page, 'Too late to hurry');
    const { taskId } = task;
    const answer = bubble(page, taskId);
    await answer.getByTestId('priority-change').selectOption('100');
    const request = await ui.master.nextReprioritize();
    task.emit('task:assigned', { taskId, attempt: 1, workerId: 'cpu-worker-1', workerKind: 'cpu' });
    await bubbleIn(page, taskId, 'running').waitFor();
    const refusal = `task ${taskId} is running; only a queued task can move`;
    request.reply({ ok: false, error: refusal });

    const note = answer.getByTestId('priority-error');
    await note.waitFor();
    await expect(note.textContent()).resolves.toBe(`Priority not changed: ${refusal}`);
    await expect(answer.getByTestId('priority-editor').isHidden()).resolves.toBe(true);
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-refused.png') });

    // The answer keeps its first priority; the note goes once it is done.
    task.emit('task:completed', taskView(taskId, { state: 'completed', result: 'Here.' }));
    const done = bubbleIn(page, taskId, 'completed');
    await expect(done.getByTestId('meta-priority').textContent()).resolves.toBe('priority 0');
    await expect(note.isHidden()).resolves.toBe(true);
  });

  it('marks an answer from the result cache, with no worker named', async () => {
    const page = await openChat();
    const task = await ask(page, 'Asked before');
    const cachedAt = Date.now() - 60_000;
    task.emit(
      'task:completed',
      taskView(task.taskId, {
        state: 'completed',
        attempt: 0,
        result: 'The same answer as last time.',
        timings: { submittedAt: Date.now(), queueMs: 3, processingMs: 0, totalMs: 4 },
        cache: { hit: true, cachedAt },
      }),
    );
    const done = bubbleIn(page, task.taskId, 'completed');
    await done.waitFor();
    const meta = done.getByTestId('answer-meta');
    await expect(meta.getByTestId('meta-cached').textContent()).resolves.toBe('Cached');
    await expect(meta.getByTestId('meta-cached').getAttribute('title')).resolves.toContain(
      'result cache',
    );
    await expect(meta.getByTestId('meta-worker-id').count()).resolves.toBe(0);
    await expect(meta.getByTestId('meta-worker-kind').count()).resolves.toBe(0);
    await expect(meta.getByTestId('meta-processing').count()).resolves.toBe(0);
    await expect(meta.getByTestId('meta-total').textContent()).resolves.toBe('total 4 ms');
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-cached.png') });

    // An answer a worker ran has no badge.
    const fresh = await ask(page, 'Something new');
    fresh.emit(
      'task:completed',
      taskView(fresh.taskId, { state: 'completed', result: 'New.', workerId: 'cpu-worker-1' }),
    );
    const ran = bubbleIn(page, fresh.taskId, 'completed');
    await expect(ran.getByTestId('meta-worker-id').textContent()).resolves.toBe('cpu-worker-1');
    await expect(ran.getByTestId('meta-cached').count()).resolves.toBe(0);
  });
});
