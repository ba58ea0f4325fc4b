/**
 * The whole system started exactly as `npm start` does (`node bin/flota.mjs up`
 * in its own process group), then driven from outside: a real Chromium, the
 * real `mosquitto_sub`, REST, Ctrl-C, and a restart on the same data dir.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { logLineSchema } from '../../proto/src/schemas/log.ts';
import type { TaskView } from '../../proto/src/schemas/task.ts';
import { launchBrowser } from '../helpers/browser.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { getJson, getTask, submitTask, waitForCompleted } from './support/api.ts';
import { openChat } from './support/chat-page.ts';
import { SHOW_LOGS } from './support/config.ts';
import { dumpOutput, type FlotaProcess, groupAlive } from './support/flota-process.ts';
import { tapTopic } from './support/log-tap.ts';
import { environOf, leftoverProcesses, processesMentioning } from './support/proc-scan.ts';
import { startUp, type UpSystem } from './support/system.ts';

const LOCAL_WORKERS = ['local-1', 'local-2'];
/** Long enough to stream in several chunks (16 characters each), without markdown syntax. */
const SEA = 'tell me about the sea and the ships that sail on it all night long';

const started: FlotaProcess[] = [];
let dataDir: string;
let system: UpSystem;
let browser: Browser | undefined;
let completedBeforeStop: TaskView | undefined;
let inFlight: { id: string; prompt: string } | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'flota-e2e-up-'));
  system = await startUp(dataDir, { ECHO_DELAY_MS: '30' });
  started.push(system.up);
});

beforeEach((ctx) => {
  ctx.onTestFailed(() => dumpOutput(started));
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(started.map((p) => p.stop('SIGINT')));
  if (SHOW_LOGS) dumpOutput(started);
  await rm(dataDir, { recursive: true, force: true });
});

/** Ctrl-C in a terminal: SIGINT to the whole foreground process group. */
async function pressCtrlC(up: FlotaProcess): Promise<void> {
  const before = await processesMentioning(dataDir);
  // The scan must see what it later expects gone, or "nothing left" proves nothing.
  expect(before.filter((p) => p.cmdline.includes('bin/flota.mjs worker'))).toHaveLength(2);
  expect(before.some((p) => p.cmdline.includes(`-D ${join(dataDir, 'pg')}`))).toBe(true);

  up.signalGroup('SIGINT');
  await waitFor(() => up.hasExited(), { timeoutMs: 30_000, what: 'flota up to exit after Ctrl-C' });
  await expect(up.exited).resolves.toEqual({ code: 0, signal: null });

  expect(await leftoverProcesses(dataDir)).toEqual([]);
  expect(groupAlive(up.pid)).toBe(false);
  expect(existsSync(join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
}

describe('npm start (flota up): master, embedded broker and store, two local workers', () => {
  it('prints the URL to open, where it listens, and how to watch the logs', () => {
    expect(system.up.stderr()).toContain(`open ${system.baseUrl}`);
    expect(system.up.stderr()).toMatch(/open http:\/\//);
    expect(system.up.stderr()).toContain('listening on 127.0.0.1 (this machine only');
    expect(system.up.stderr()).toContain(
      `mosquitto_sub -h 127.0.0.1 -p ${system.mqttPort} -t 'flota/v1/logs/#' -v`,
    );
  });

  it("gives each local worker its own credential, and none of the master's secrets", async () => {
    const workers = (await processesMentioning(dataDir)).filter((p) =>
      p.cmdline.includes('bin/flota.mjs worker'),
    );
    expect(workers).toHaveLength(2);
    const envs = await Promise.all(workers.map((w) => environOf(w.pid)));
    const tokens = envs.map((env) => env.WORKER_TOKEN);
    for (const env of envs) {
      expect(LOCAL_WORKERS).toContain(env.WORKER_ID);
      expect(env.WORKER_TOKEN?.startsWith(`fwt1.${env.WORKER_ID}.`)).toBe(true);
      expect(env.MQTT_PASSWORD).toBeUndefined();
      expect(env.FLOTA_SECRET).toBeUndefined();
    }
    expect(new Set(tokens).size).toBe(2);
  });

  it('chats in Chromium: streamed answers from both local workers', async () => {
    browser = await launchBrowser();
    const chat = await openChat(browser, system.baseUrl);
    const prompts = [1, 2, 3, 4].map((n) => `Question ${n} from the browser, ${SEA}`);
    for (const prompt of prompts) await chat.send(prompt);

    const answers = chat.answers();
    await waitFor(async () => (await answers.count()) === prompts.length, {
      what: 'one answer bubble per prompt',
    });
    const workers = new Set<string>();
    for (const [i, prompt] of prompts.entries()) {
      const bubble = answers.nth(i);
      await bubble.and(chat.page.locator('[data-state="completed"]')).waitFor();
      await expect(bubble.getByTestId('answer-text').textContent()).resolves.toBe(
        `echo: ${prompt}`,
      );
      const workerId = await bubble.getByTestId('meta-worker-id').textContent();
      expect(LOCAL_WORKERS).toContain(workerId);
      workers.add(workerId ?? '');
      await expect(bubble.getByTestId('meta-worker-kind').textContent()).resolves.toBe('CPU');
    }
    expect([...workers].sort()).toEqual(LOCAL_WORKERS);

    // Streamed: each answer showed a partial text while running, before the final one.
    const frames = await chat.frames();
    for (const [i, prompt] of prompts.entries()) {
      const taskId = await answers.nth(i).getAttribute('data-task-id');
      const partial = frames.filter(
        (f) =>
          f.taskId === taskId &&
          f.state === 'running' &&
          f.text.length > 0 &&
          f.text.length < `echo: ${prompt}`.length &&
          `echo: ${prompt}`.startsWith(f.text),
      );
      expect(partial.length, `partial texts of answer ${i + 1}`).toBeGreaterThan(0);
    }
    await chat.close();
  });

  it('cancels a long answer from the UI: the bubble says so and the master agrees', async () => {
    browser ??= await launchBrowser();
    const chat = await openChat(browser, system.baseUrl);
    await chat.send(`A very long question. ${'z'.repeat(3_000)}`);
    const bubble = chat.answers().last();
    await bubble.and(chat.page.locator('[data-state="running"]')).waitFor();
    await bubble.getByTestId('cancel-task').click();
    await bubble.and(chat.page.locator('[data-state="cancelled"]')).waitFor();
    const taskId = await bubble.getAttribute('data-task-id');
    const { body } = await getJson(`${system.baseUrl}/api/tasks/${taskId}`);
    expect(body).toMatchObject({ state: 'cancelled', error: 'cancelled by the user' });
    await chat.close();
  });

  it('publishes master and worker logs that mosquitto_sub can read', async () => {
    const tap = await tapTopic(system.mqttPort, 'flota/v1/logs/#');
    try {
      const id = await submitTask(system.baseUrl, `Logged question, ${SEA}`);
      await waitForCompleted(system.baseUrl, id);
      const mentions = (source: string) =>
        tap.messages.some((m) => m.topic === `flota/v1/logs/${source}` && m.payload.includes(id));
      await waitFor(() => mentions('master') && LOCAL_WORKERS.some(mentions), {
        what: `log lines about ${id} from the master and a worker`,
      });
      const sources = new Set(tap.messages.map((m) => m.topic));
      expect(sources).toContain('flota/v1/logs/master');
      expect(LOCAL_WORKERS.some((w) => sources.has(`flota/v1/logs/${w}`))).toBe(true);
      for (const m of tap.messages) {
        const line = logLineSchema.parse(JSON.parse(m.payload));
        expect(m.topic).toBe(`flota/v1/logs/${line.source}`);
      }
    } finally {
      await tap.stop();
    }
  });

  it('answers a REST task with its result, worker and timings', async () => {
    const prompt = 'What does the REST API say';
    const id = await submitTask(system.baseUrl, prompt);
    const view = await waitForCompleted(system.baseUrl, id);
    expect(view).toMatchObject({
      id,
      state: 'completed',
      model: 'echo',
      attempt: 1,
      result: `echo: ${prompt}`,
      workerKind: 'cpu',
    });
    expect(LOCAL_WORKERS).toContain(view.workerId);
    expect(view.timings.queueMs).toBeGreaterThanOrEqual(0);
    expect(view.timings.processingMs).toBeGreaterThanOrEqual(0);
    expect(view.timings.totalMs).toBeGreaterThanOrEqual(view.timings.processingMs ?? 0);
    completedBeforeStop = view;
  });

  it('stops everything on Ctrl-C: exit 0, no process left, no postmaster.pid', async () => {
    // A task still streaming when Ctrl-C comes: the stop must not lose it (checked after restart).
    const prompt = `A long question, ${SEA.repeat(15)}`;
    inFlight = { id: await submitTask(system.baseUrl, prompt), prompt };
    const id = inFlight.id;
    await waitFor(async () => (await getTask(system.baseUrl, id)).state === 'running', {
      what: `task ${id} to run`,
    });
    await pressCtrlC(system.up);
  });

  it('restarts on the same data dir and still knows the finished task', async () => {
    expect(completedBeforeStop).toBeDefined();
    const task = completedBeforeStop as TaskView;
    system = await startUp(dataDir, { ECHO_DELAY_MS: '0' });
    started.push(system.up);
    const again = await getTask(system.baseUrl, task.id);
    expect(again).toMatchObject({
      id: task.id,
      state: 'completed',
      result: task.result,
      workerId: task.workerId,
    });
  });

  it('completes the task that was in flight at Ctrl-C, promptly after the restart', async () => {
    expect(inFlight).toBeDefined();
    const { id, prompt } = inFlight as { id: string; prompt: string };
    // The worker finished it during its shutdown grace, or the restarted master re-queued it;
    // either way it must not sit "running" until a lock times out.
    const view = await waitForCompleted(system.baseUrl, id, { timeoutMs: 15_000 });
    expect(view.result).toBe(`echo: ${prompt}`);
  });

  it('answers an echo task over REST in well under a second (ECHO_DELAY_MS=0)', async () => {
    const runs: Array<{ wallMs: number; view: TaskView }> = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      const id = await submitTask(system.baseUrl, `ping ${i}`);
      // Polled every 2 ms, so the poll adds little to the measured time.
      const view = await waitForCompleted(system.baseUrl, id, { intervalMs: 2 });
      runs.push({ wallMs: performance.now() - t0, view });
      expect(view.result).toBe(`echo: ping ${i}`);
    }
    const [first, ...warm] = runs;
    const median = (pick: (r: (typeof runs)[number]) => number) =>
      warm.map(pick).sort((a, b) => a - b)[Math.floor(warm.length / 2)] ?? Number.NaN;
    console.log(
      `flota up, echo with ECHO_DELAY_MS=0, REST submit → result: first ${first?.wallMs.toFixed(1)} ms; ` +
        `median of the next ${warm.length}: ${median((r) => r.wallMs).toFixed(1)} ms wall, ` +
        `server queueMs ${median((r) => r.view.timings.queueMs ?? Number.NaN)}, ` +
        `processingMs ${median((r) => r.view.timings.processingMs ?? Number.NaN)}, ` +
        `totalMs ${median((r) => r.view.timings.totalMs ?? Number.NaN)}`,
    );
    expect(median((r) => r.wallMs)).toBeLessThan(1_000);
  });

  it('stops cleanly on Ctrl-C again after the restart', async () => {
    await pressCtrlC(system.up);
  });
});
