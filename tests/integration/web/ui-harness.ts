import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { launchBrowser } from '../../helpers/browser.ts';
import { type FakeMaster, type HelloRecord, startFakeMaster } from './fake-master.ts';

export const CONNECTED = '[data-testid="connection-status"][data-state="connected"]';

/** A fresh browser context with the chat page loading; nothing is awaited beyond the load. */
export async function openPage(
  browser: Browser,
  master: FakeMaster,
  viewport = { width: 1280, height: 800 },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  await page.goto(master.url);
  return { context, page };
}

/** A fresh browser context on the chat page, connected and greeted. */
export async function openChat(
  browser: Browser,
  master: FakeMaster,
  viewport?: { width: number; height: number },
): Promise<{ context: BrowserContext; page: Page }> {
  const hello = master.nextHello();
  const opened = await openPage(browser, master, viewport);
  await opened.page.locator(CONNECTED).waitFor();
  await hello;
  return opened;
}

export async function send(page: Page, prompt: string) {
  await page.getByTestId('prompt-input').fill(prompt);
  await page.getByTestId('prompt-input').press('Enter');
}

export const bubble = (page: Page, taskId: string) =>
  page.locator(`[data-testid="message-assistant"][data-task-id="${taskId}"]`);

/** The bubble once it shows `state` (queued, running, completed, failed or cancelled). */
export const bubbleIn = (page: Page, taskId: string, state: string) =>
  bubble(page, taskId).and(page.locator(`[data-state="${state}"]`));

/** The page's session id, as stored. */
export async function sessionIdOf(page: Page): Promise<string> {
  const id = await page.evaluate(() => localStorage.getItem('flota.sessionId'));
  if (!id) throw new Error('the page has no session id');
  return id;
}

/** Reloads (or, with `url`, opens it) and resolves with the hello the page then sent. */
export async function reload(page: Page, master: FakeMaster, url?: string): Promise<HelloRecord> {
  const hello = master.nextHello();
  if (url) await page.goto(url);
  else await page.reload();
  const record = await hello;
  await page.locator(CONNECTED).waitFor();
  return record;
}

/** The outbox cursor the page has saved for its session. */
export function savedCursor(page: Page) {
  return page.evaluate(() => {
    const raw = localStorage.getItem(`flota.outbox.${localStorage.getItem('flota.sessionId')}`);
    return raw ? (JSON.parse(raw) as { epoch: string; lastSeq: number }) : null;
  });
}

/**
 * One fake master and one Chromium for a test file, a fresh browser context per
 * test: registers the hooks and hands back the master and an `openChat`.
 */
export function useChatHarness(options: Parameters<typeof startFakeMaster>[0]) {
  let master: FakeMaster | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  beforeAll(async () => {
    master = await startFakeMaster(options);
    browser = await launchBrowser();
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
  });
  afterAll(async () => {
    await browser?.close();
    await master?.close();
  });
  return {
    get master(): FakeMaster {
      if (!master) throw new Error('the fake master is not started yet');
      return master;
    },
    async openChat(viewport?: { width: number; height: number }): Promise<Page> {
      if (!browser || !master) throw new Error('the harness is not started yet');
      const opened = await openChat(browser, master, viewport);
      context = opened.context;
      return opened.page;
    },
    /** Sends a prompt; resolves with its submission once its bubble is queued (every earlier event handled). */
    async ask(page: Page, prompt: string) {
      await send(page, prompt);
      if (!master) throw new Error('the fake master is not started yet');
      const task = await master.nextSubmit();
      await bubbleIn(page, task.taskId, 'queued').waitFor();
      return task;
    },
    /** The chat page, loaded but not necessarily connected (e.g. refused for want of a token). */
    async openPage(): Promise<Page> {
      if (!browser || !master) throw new Error('the harness is not started yet');
      const opened = await openPage(browser, master);
      context = opened.context;
      return opened.page;
    },
  };
}
