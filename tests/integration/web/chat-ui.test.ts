import { describe, expect, it } from 'vitest';
import { REJECT_ERROR, taskView, worker } from './fake-master.ts';
import { bubble, send, useChatHarness } from './ui-harness.ts';

const SCREENSHOT = '/tmp/flota-ui.png';
const GPU_WORKER = worker({
  id: 'gpu-worker-1',
  kind: 'gpu',
  models: ['llama-3-8b', 'echo'],
  slots: 4,
  active: 1,
  cpuPct: 37,
  memPct: 62,
  gpus: [{ index: 0, name: 'RTX 4090', utilPct: 71, memUsedMb: 9000, memTotalMb: 24000 }],
});
const CPU_WORKER = worker({ id: 'cpu-worker-1', models: ['echo'] });

const ui = useChatHarness({
  workers: [GPU_WORKER, CPU_WORKER],
  models: ['llama-3-8b', 'echo'],
});
const openChat = ui.openChat;

describe('chat UI in Chromium', () => {
  it('connects, greets with a stable session id and lists models and workers', async () => {
    const page = await openChat();
    await expect(page.getByTestId('connection-status').textContent()).resolves.toContain(
      'Connected',
    );
    const sessionId = await page.evaluate(() => localStorage.getItem('flota.sessionId'));
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{8,64}$/);

    const options = page.getByTestId('model-select').locator('option');
    await expect(options.allTextContents()).resolves.toEqual([
      'llama-3-8b · GPU',
      'echo · CPU + GPU',
    ]);
    await expect(page.getByTestId('model-select').inputValue()).resolves.toBe('llama-3-8b');

    const cards = page.getByTestId('worker-list').getByTestId('worker-card');
    await expect(cards.count()).resolves.toBe(2);
    const gpuCard = cards.and(page.locator('[data-worker-id="gpu-worker-1"]'));
    await expect(gpuCard.getByTestId('worker-kind').textContent()).resolves.toBe('GPU');
    await expect(gpuCard.getByTestId('worker-slots').textContent()).resolves.toBe('1/4');
    await expect(gpuCard.textContent()).resolves.toContain('71%');

    ui.master.setWorkers(
      [GPU_WORKER, { ...CPU_WORKER, active: 2, models: ['echo', 'qwen-2.5'] }],
      ['llama-3-8b', 'echo', 'qwen-2.5'],
    );
    await page
      .locator('[data-worker-id="cpu-worker-1"] [data-testid="worker-slots"]', {
        hasText: '2/2',
      })
      .waitFor();
    await page.getByTestId('model-select').locator('option[value="qwen-2.5"]').waitFor({
      state: 'attached',
    });

    // A fleet larger than the panel lists: its numbers come from the summary.
    ui.master.setWorkers([GPU_WORKER, CPU_WORKER], ['llama-3-8b', 'echo'], {
      online: 9_998,
      offline: 4,
      slots: 40_000,
      active: 1_234,
      models: {
        'llama-3-8b': { cpu: 0, gpu: 5_000, local: false, loaded: 0 },
        echo: { cpu: 4_998, gpu: 1, local: false, loaded: 0 },
      },
    });
    await page.getByTestId('worker-more').filter({ hasText: 'and 10,000 more workers' }).waitFor();
    await expect(page.locator('#worker-count').textContent()).resolves.toBe('9,998');
    await expect(page.locator('#workers-summary').textContent()).resolves.toBe(
      '9,998 online · 1,234/40,000 slots busy',
    );
    await expect(
      page.getByTestId('model-select').locator('option').allTextContents(),
    ).resolves.toEqual(['llama-3-8b · GPU', 'echo · CPU + GPU']);
  });

  it('streams an answer in order, then shows the final text and its metadata', async () => {
    const page = await openChat();
    await page.getByTestId('api-key-input').fill('sk-test-123');
    await page.getByTestId('gpu-toggle').check();
    await page.getByTestId('model-select').selectOption('llama-3-8b');
    await send(page, 'Say hello to the fleet');

    const task = await ui.master.nextSubmit();
    expect(task.payload).toMatchObject({
      prompt: 'Say hello to the fleet',
      model: 'llama-3-8b',
      requires: { gpu: true },
      apiKey: 'sk-test-123',
    });
    expect(task.payload.clientId).toEqual(expect.any(String));

    const answer = bubble(page, task.taskId);
    await answer.and(page.locator('[data-state="queued"]')).waitFor();
    await answer.getByText(ui.master.waitingFor).waitFor();

    task.emit('task:assigned', {
      taskId: task.taskId,
      attempt: 1,
      workerId: 'gpu-worker-1',
      workerKind: 'gpu',
    });
    await answer.and(page.locator('[data-state="running"]')).waitFor();
    await answer.getByText('Running on gpu-worker-1').waitFor();

    const text = answer.getByTestId('answer-text');
    task.emit('task:chunk', { taskId: task.taskId, attempt: 1, seq: 0, text: 'Hello' });
    await text.getByText('Hello', { exact: true }).waitFor();
    // seq 2 would leave a gap (seq 1 was dropped upstream): ignored, the final text fills it.
    task.emit('task:chunk', { taskId: task.taskId, attempt: 1, seq: 2, text: ' fleet' });
    task.emit('task:chunk', { taskId: task.taskId, attempt: 1, seq: 1, text: ',' });
    task.emit('task:chunk', { taskId: task.taskId, attempt: 1, seq: 1, text: ',' });
    await text.getByText('Hello,', { exact: true }).waitFor();
    task.emit('task:chunk', { taskId: task.taskId, attempt: 1, seq: 2, text: ' fleet' });
    await text.getByText('Hello, fleet', { exact: true }).waitFor();

    task.emit(
      'task:completed',
      taskView(task.taskId, {
        state: 'completed',
        model: 'llama-3-8b',
        result: 'Hello, fleet! All hands on deck.',
        workerId: 'gpu-worker-1',
        workerKind: 'gpu',
        requires: { gpu: true },
      }),
    );
    await answer.and(page.locator('[data-state="completed"]')).waitFor();
    await expect(text.textContent()).resolves.toBe('Hello, fleet! All hands on deck.');
    const meta = answer.getByTestId('answer-meta');
    await expect(meta.getByTestId('meta-worker-id').textContent()).resolves.toBe('gpu-worker-1');
    await expect(meta.getByTestId('meta-worker-kind').textContent()).resolves.toBe('GPU');
    await expect(meta.textContent()).resolves.toMatch(/12 ms.*1\.50 s.*1\.53 s.*llama-3-8b/);

    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('flota.apiKey'),
      local: JSON.stringify({ ...localStorage }),
    }));
    expect(stored.session).toBe('sk-test-123');
    expect(stored.local).not.toContain('sk-test-123');
    await page.screenshot({ path: SCREENSHOT });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-dark.png') });

    // A reload keeps the session and shows the conversation again.
    const sessionId = await page.evaluate(() => localStorage.getItem('flota.sessionId'));
    const hello = ui.master.nextHello();
    await page.reload();
    await expect(hello).resolves.toMatchObject({ hello: { sessionId } });
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor();
    await expect(page.getByTestId('message-user').textContent()).resolves.toContain(
      'Say hello to the fleet',
    );
    const restored = bubble(page, task.taskId);
    await expect(restored.getAttribute('data-state')).resolves.toBe('completed');
    await expect(restored.getByTestId('answer-text').textContent()).resolves.toBe(
      'Hello, fleet! All hands on deck.',
    );
    await expect(restored.getByTestId('meta-worker-id').textContent()).resolves.toBe(
      'gpu-worker-1',
    );
  });

  it('restarts the text on a higher attempt and shows a failure in the bubble', async () => {
    const page = await openChat();
    await send(page, 'Tell me a long story');
    const task = await ui.master.nextSubmit();
    expect(task.payload.requires).toEqual({ gpu: false });
    expect(task.payload).not.toHaveProperty('apiKey');

    const answer = bubble(page, task.taskId);
    const text = answer.getByTestId('answer-text');
    task.emit('task:chunk', { taskId: task.taskId, attempt: 1, seq: 0, text: 'Once upon' });
    await text.getByText('Once upon', { exact: true }).waitFor();

    task.emit('task:assigned', {
      taskId: task.taskId,
      attempt: 2,
      workerId: 'cpu-worker-1',
      workerKind: 'cpu',
    });
    task.emit('task:chunk', { taskId: task.taskId, attempt: 2, seq: 0, text: 'Long ago' });
    task.emit('task:chunk', { taskId: task.taskId, attempt: 1, seq: 1, text: ' a time' });
    await text.getByText('Long ago', { exact: true }).waitFor();
    await answer.getByText('Running on cpu-worker-1 · attempt 2').waitFor();
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-running.png') });

    task.emit(
      'task:failed',
      taskView(task.taskId, {
        state: 'failed',
        attempt: 2,
        error: 'Provider quota exceeded; try again later',
        workerId: 'cpu-worker-1',
        workerKind: 'cpu',
      }),
    );
    await answer.and(page.locator('[data-state="failed"]')).waitFor();
    await expect(answer.getByTestId('answer-error').textContent()).resolves.toBe(
      'Provider quota exceeded; try again later',
    );
    await expect(answer.getByTestId('meta-worker-kind').textContent()).resolves.toBe('CPU');

    await send(page, 'reject: this one');
    const rejected = page.getByTestId('message-assistant').last();
    await rejected.and(page.locator('[data-state="failed"]')).waitFor();
    await expect(rejected.getByTestId('answer-error').textContent()).resolves.toBe(REJECT_ERROR);
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-failed.png') });
  });

  it('collapses the worker panel on a narrow screen', async () => {
    const page = await openChat({ width: 420, height: 800 });
    const panel = page.locator('#workers-panel');
    await panel.waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: /Workers/ }).click();
    await panel.waitFor({ state: 'visible' });
    await expect(panel.getByTestId('worker-card').count()).resolves.toBe(2);
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-narrow.png') });
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
  });
});
