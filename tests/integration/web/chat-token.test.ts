import type { Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait-for.ts';
import { worker } from './fake-master.ts';
import { bubbleIn, CONNECTED, reload, send, useChatHarness } from './ui-harness.ts';

/**
 * A master with API tokens: the page sends its access token in the Socket.IO
 * handshake and as a Bearer header on REST calls. Refused for want of one, it
 * says why, asks for the token and does not try again until it gets one.
 */
const SCREENSHOT = '/tmp/flota-ui-token.png';
const TOKEN = 'web-token-0123456789';
const REFUSED = '[data-testid="connection-status"][data-state="unauthorized"]';

const ui = useChatHarness({
  workers: [worker({ id: 'cpu-worker-1', models: ['echo'] })],
  models: ['echo'],
});

afterEach(() => ui.master.requireToken(undefined));

const statusText = (page: Page) => page.getByTestId('connection-status').textContent();

/** Types a token and presses Enter, as someone asked for it would. */
async function enterToken(page: Page, token: string) {
  await page.getByTestId('token-input').fill(token);
  await page.getByTestId('token-input').press('Enter');
}

describe('access tokens in the chat UI', () => {
  it('asks for the token when refused, then connects with it and sends it on REST calls', async () => {
    ui.master.requireToken(TOKEN);
    const seen = ui.master.handshakeTokens.length;
    const page = await ui.openPage();
    await page.locator(REFUSED).waitFor();
    await expect(statusText(page)).resolves.toContain('an API token is required');
    const problem = page.locator('#problem');
    await expect(problem.textContent()).resolves.toContain('Access token');
    const input = page.getByTestId('token-input');
    await expect(input.getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(input.evaluate((el) => el === document.activeElement)).resolves.toBe(true);
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-refused.png') });

    await enterToken(page, 'not-the-token');
    await page.locator(REFUSED, { hasText: 'the API token is not valid' }).waitFor();

    const hello = ui.master.nextHello();
    await enterToken(page, TOKEN);
    await hello;
    await page.locator(CONNECTED).waitFor();
    await expect(problem.isHidden()).resolves.toBe(true);
    await expect(input.getAttribute('aria-invalid')).resolves.toBeNull();
    // One handshake per token: no retries of its own after a refusal.
    expect(ui.master.handshakeTokens.slice(seen)).toEqual([undefined, 'not-the-token', TOKEN]);
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('flota.token'),
      local: JSON.stringify({ ...localStorage }),
    }));
    expect(stored.session).toBe(TOKEN);
    expect(stored.local).not.toContain(TOKEN);

    // A task still open at a reconnect is looked up over REST, with the token.
    await send(page, 'Behind a token');
    const task = await ui.master.nextSubmit();
    await bubbleIn(page, task.taskId, 'queued').waitFor();
    const asked = ui.master.apiAuthorizations.length;
    const again = ui.master.nextHello();
    ui.master.dropConnections();
    await expect(again).resolves.toMatchObject({ hello: { pending: [task.taskId] } });
    await waitFor(() => ui.master.apiAuthorizations.length > asked, { what: 'the REST lookup' });
    expect(ui.master.apiAuthorizations.slice(asked)).toEqual([`Bearer ${TOKEN}`]);
    expect(ui.master.handshakeTokens.at(-1)).toBe(TOKEN);

    // A reload of the tab keeps the token: straight back in.
    await reload(page, ui.master);
    expect(ui.master.handshakeTokens.at(-1)).toBe(TOKEN);
  });

  it('sends no token until one is set, then connects again with it', async () => {
    const seen = ui.master.handshakeTokens.length;
    const page = await ui.openChat();
    expect(ui.master.handshakeTokens.slice(seen)).toEqual([undefined]);

    const hello = ui.master.nextHello();
    await enterToken(page, TOKEN);
    await hello;
    await page.locator(CONNECTED).waitFor();
    expect(ui.master.handshakeTokens.slice(seen)).toEqual([undefined, TOKEN]);

    // Cleared: the next handshake carries none.
    const cleared = ui.master.nextHello();
    await enterToken(page, '');
    await cleared;
    expect(ui.master.handshakeTokens.slice(seen)).toEqual([undefined, TOKEN, undefined]);
    await expect(page.evaluate(() => sessionStorage.getItem('flota.token'))).resolves.toBeNull();
  });
});
