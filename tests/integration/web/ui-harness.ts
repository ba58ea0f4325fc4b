import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { FakeMaster } from './fake-master.ts';

export const CONNECTED = '[data-testid="connection-status"][data-state="connected"]';

/** A fresh browser context on the chat page, connected and greeted. */
export async function openChat(
  browser: Browser,
  master: FakeMaster,
  viewport = { width: 1280, height: 800 },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  const hello = master.nextHello();
  await page.goto(master.url);
  await page.locator(CONNECTED).waitFor();
  await hello;
  return { context, page };
}

export async function send(page: Page, prompt: string) {
  await page.getByTestId('prompt-input').fill(prompt);
  await page.getByTestId('prompt-input').press('Enter');
}

export const bubble = (page: Page, taskId: string) =>
  page.locator(`[data-testid="message-assistant"][data-task-id="${taskId}"]`);

/** The bubble once it shows `state` (queued, running, completed or failed). */
export const bubbleIn = (page: Page, taskId: string, state: string) =>
  bubble(page, taskId).and(page.locator(`[data-state="${state}"]`));
