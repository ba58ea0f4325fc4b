import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { type Submission, taskView, worker } from './fake-master.ts';
import { bubbleIn, CONNECTED, send, useChatHarness } from './ui-harness.ts';

/**
 * The chat remembers: each prompt carries the earlier completed exchanges of
 * the visible conversation as `messages`, and "Clear" starts afresh.
 */
const ui = useChatHarness({
  workers: [worker({ id: 'cpu-worker-1', models: ['echo'] })],
  models: ['echo'],
});
const openChat = ui.openChat;

/** Sends a prompt and returns the submission once its bubble shows as queued. */
async function ask(page: Page, prompt: string): Promise<Submission> {
  const task = await ui.ask(page, prompt);
  expect(task.payload.prompt).toBe(prompt);
  return task;
}

async function complete(page: Page, task: Submission, result: string) {
  task.emit('task:completed', taskView(task.taskId, { state: 'completed', result }));
  await bubbleIn(page, task.taskId, 'completed').waitFor();
}

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

/** Waits until the context hint reads `text`. */
async function hintSays(page: Page, text: string) {
  await page.locator('[data-testid="context-hint"]', { hasText: text }).waitFor();
}

describe('chat memory', () => {
  it('sends completed exchanges as history, skips failed and unfinished ones, and forgets on Clear', async () => {
    const page = await openChat();
    await hintSays(page, 'New conversation');

    const first = await ask(page, 'What is a lease?');
    expect(first.payload).not.toHaveProperty('messages');
    first.emit('task:chunk', { taskId: first.taskId, attempt: 1, seq: 0, text: 'A lease is' });
    await bubbleIn(page, first.taskId, 'running').waitFor();
    await complete(page, first, 'A lease is a time-limited claim on a task.');
    await hintSays(page, 'Context: last 1 exchange');

    const second = await ask(page, 'And a fencing token?');
    expect(second.payload.messages).toEqual([
      user('What is a lease?'),
      assistant('A lease is a time-limited claim on a task.'),
    ]);
    second.emit('task:failed', taskView(second.taskId, { state: 'failed', error: 'Boom' }));
    await bubbleIn(page, second.taskId, 'failed').waitFor();

    // Refused in the ack: failed locally, so left out as well.
    await send(page, 'reject: this one');
    await page
      .getByTestId('message-assistant')
      .last()
      .and(page.locator('[data-state="failed"]'))
      .waitFor();

    const third = await ask(page, 'Why do they expire?');
    expect(third.payload.messages).toEqual([
      user('What is a lease?'),
      assistant('A lease is a time-limited claim on a task.'),
    ]);
    await complete(page, third, 'So a crashed worker cannot hold a task forever.');
    await hintSays(page, 'Context: last 2 exchanges');

    // Still streaming when the next prompt goes out: not part of the history yet.
    const fourth = await ask(page, 'Who renews them?');
    fourth.emit('task:chunk', { taskId: fourth.taskId, attempt: 1, seq: 0, text: 'The worker' });
    await bubbleIn(page, fourth.taskId, 'running').waitFor();
    const fifth = await ask(page, 'How often?');
    const twoExchanges = [
      user('What is a lease?'),
      assistant('A lease is a time-limited claim on a task.'),
      user('Why do they expire?'),
      assistant('So a crashed worker cannot hold a task forever.'),
    ];
    expect(fifth.payload.messages).toEqual(twoExchanges);
    await complete(page, fifth, 'Every few seconds.');
    await complete(page, fourth, 'The worker that holds the lease.');
    await hintSays(page, 'Context: last 4 exchanges');

    // A reload shows the same conversation, and the memory comes back with it.
    const hello = ui.master.nextHello();
    await page.reload();
    await hello;
    await page.locator(CONNECTED).waitFor();
    await hintSays(page, 'Context: last 4 exchanges');
    const sixth = await ask(page, 'Thanks!');
    expect(sixth.payload.messages).toEqual([
      ...twoExchanges,
      user('Who renews them?'),
      assistant('The worker that holds the lease.'),
      user('How often?'),
      assistant('Every few seconds.'),
    ]);
    await complete(page, sixth, 'You are welcome.');

    page.once('dialog', (dialog) => void dialog.accept());
    await page.locator('#clear-chat').click();
    await hintSays(page, 'New conversation');
    await expect(page.getByTestId('message-assistant').count()).resolves.toBe(0);

    const fresh = await ask(page, 'Start over');
    expect(fresh.payload).not.toHaveProperty('messages');
  });

  it('keeps only the last ten exchanges and about 50,000 characters', async () => {
    const page = await openChat();
    for (let i = 1; i <= 11; i++) {
      const task = await ask(page, `Question ${i}`);
      await complete(page, task, `Answer ${i}`);
    }
    await hintSays(page, 'Context: last 10 exchanges');
    const twelfth = await ask(page, 'Question 12');
    const expected = [];
    for (let i = 2; i <= 11; i++) expected.push(user(`Question ${i}`), assistant(`Answer ${i}`));
    expect(twelfth.payload.messages).toEqual(expected);

    // Three long answers: only the two newest fit in the character budget.
    await complete(page, twelfth, 'A'.repeat(20_000));
    const long13 = await ask(page, 'Question 13');
    await complete(page, long13, 'B'.repeat(20_000));
    const long14 = await ask(page, 'Question 14');
    await complete(page, long14, 'C'.repeat(20_000));
    await hintSays(page, 'Context: last 2 exchanges');

    const last = await ask(page, 'Question 15');
    expect(last.payload.messages).toEqual([
      user('Question 13'),
      assistant('B'.repeat(20_000)),
      user('Question 14'),
      assistant('C'.repeat(20_000)),
    ]);
  });
});
