/** Drives the real chat UI in Chromium through its data-testid hooks. */
import type { Browser, Locator, Page } from 'playwright-core';

export interface AnswerFrame {
  taskId: string | undefined;
  state: string | undefined;
  text: string;
}

export interface ChatPage {
  page: Page;
  /** Types `prompt` and presses Enter, as a person would. */
  send(prompt: string): Promise<void>;
  /** The assistant bubbles, in the order the prompts were sent. */
  answers(): Locator;
  /** Every text the answer bubbles showed, in order, recorded in the page as it changed. */
  frames(): Promise<AnswerFrame[]>;
  close(): Promise<void>;
}

declare global {
  interface Window {
    __answerFrames?: AnswerFrame[];
  }
}

/** Opens the UI, waits until its socket is connected, and starts recording streamed text. */
export async function openChat(browser: Browser, url: string): Promise<ChatPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  // Records each rendered text of an answer bubble: a poll could miss a chunk in between.
  await page.addInitScript(() => {
    window.__answerFrames = [];
    new MutationObserver((records) => {
      for (const r of records) {
        const el = r.target as HTMLElement;
        const article = el.closest<HTMLElement>('[data-testid="message-assistant"]');
        window.__answerFrames?.push({
          taskId: article?.dataset.taskId,
          state: article?.dataset.state,
          text: el.dataset.rendered ?? '',
        });
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-rendered'] });
  });
  await page.goto(url);
  await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor();
  return {
    page,
    async send(prompt) {
      const input = page.getByTestId('prompt-input');
      await input.fill(prompt);
      await input.press('Enter');
      // The composer clears itself once the prompt is handed to the socket.
      await page.waitForFunction(
        () =>
          (document.querySelector('[data-testid="prompt-input"]') as HTMLTextAreaElement).value ===
          '',
      );
    },
    answers: () => page.getByTestId('message-assistant'),
    async frames() {
      if (pageErrors.length > 0) throw new Error(`errors in the page: ${pageErrors.join('; ')}`);
      return page.evaluate(() => window.__answerFrames ?? []);
    },
    close: () => context.close(),
  };
}
