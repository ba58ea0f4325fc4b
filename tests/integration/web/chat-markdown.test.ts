import { describe, expect, it } from 'vitest';
import { taskView, worker } from './fake-master.ts';
import { bubbleIn, useChatHarness } from './ui-harness.ts';

/**
 * Answers render as Markdown in a real browser: headings, lists, tables,
 * links that open safely, code blocks coloured by highlight.js, and nothing
 * an answer carries can run script or load a remote image. The model picker
 * says where each model runs.
 */
const ui = useChatHarness({
  workers: [
    worker({ id: 'cpu-worker-1', models: ['echo', 'phi3'] }),
    worker({ id: 'gpu-worker-1', kind: 'gpu', models: ['llama3', 'phi3'] }),
  ],
  models: ['echo', 'llama3', 'phi3', 'gone'],
});

const ANSWER = [
  '## Leases',
  '',
  'A **lease** fences a worker: see [the docs](https://example.com/leases).',
  '',
  '- one',
  '- two',
  '',
  '| state | meaning |',
  '| --- | --- |',
  '| queued | waits |',
  '',
  '```ts',
  'const lease = newLease("worker-1"); // a fencing token',
  'return 42;',
  '```',
  '',
  '<img src="https://example.com/track.png" onerror="window.__pwned = true">',
  '<script>window.__pwned = true</script>',
  '<a href="javascript:window.__pwned = true">click</a>',
].join('\n');

describe('answers as Markdown', () => {
  it('renders structure and highlighted code, and strips anything active', async () => {
    const page = await ui.openChat();
    const task = await ui.ask(page, 'explain leases');
    task.emit('task:completed', taskView(task.taskId, { state: 'completed', result: ANSWER }));
    const bubble = bubbleIn(page, task.taskId, 'completed');
    await bubble.waitFor();
    const text = bubble.locator('[data-testid="answer-text"]');
    await expect.poll(() => text.locator('h2').textContent()).toBe('Leases');
    expect(await text.locator('strong').textContent()).toBe('lease');
    expect(await text.locator('li').count()).toBe(2);
    expect(await text.locator('td').first().textContent()).toBe('queued');
    const link = text.locator('a[href^="https://example.com"]');
    expect(await link.getAttribute('target')).toBe('_blank');
    expect(await link.getAttribute('rel')).toContain('noopener');
    const code = text.locator('pre code');
    expect(await code.textContent()).toContain('newLease("worker-1")');
    expect(await code.locator('.hljs-keyword').count()).toBeGreaterThan(0);
    expect(await code.locator('.hljs-comment').count()).toBe(1);
    expect(await text.locator('pre').getAttribute('data-language')).toBe('ts');
    // Nothing active survives: no image, no script, no javascript: link.
    expect(await text.locator('img, script').count()).toBe(0);
    expect(await text.locator('a[href^="javascript"]').count()).toBe(0);
    expect(await page.evaluate(() => (window as { __pwned?: boolean }).__pwned)).toBeUndefined();
  });

  it('labels each model in the picker with where it runs now', async () => {
    const page = await ui.openChat();
    const options = page.locator('#model option');
    await expect
      .poll(() => options.allTextContents())
      .toEqual(['echo · CPU', 'llama3 · GPU', 'phi3 · CPU + GPU', 'gone · (offline)']);
  });

  it('shows the time to first token and the tokens per second with the answer', async () => {
    const page = await ui.openChat();
    const task = await ui.ask(page, 'how fast?');
    const submittedAt = 1_700_000_000_000;
    const timings = {
      submittedAt,
      queueMs: 40,
      processingMs: 1500,
      totalMs: 1500,
      firstChunkAt: submittedAt + 200,
      ttftMs: 200,
    };
    const usage = { inputTokens: 12, outputTokens: 130 };
    task.emit(
      'task:completed',
      taskView(task.taskId, { state: 'completed', result: 'Fast.', timings, usage }),
    );
    const bubble = bubbleIn(page, task.taskId, 'completed');
    await bubble.waitFor();
    expect(await bubble.getByTestId('meta-ttft').textContent()).toBe('first token 200 ms');
    expect(await bubble.getByTestId('meta-rate').textContent()).toBe('tokens/s 100');
  });
});
