/**
 * What `npm start` prints. On a terminal (a pseudo-terminal made by
 * `script`): short human lines and a live status line, no raw JSON; piped:
 * the JSON lines as ever; LOG_FORMAT=json on a terminal: JSON too. The human
 * and the JSON runs tell the same facts about a task (who logged what).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { type LogLine, logLineSchema } from '../../proto/src/schemas/log.ts';
import { freePort } from '../helpers/free-port.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { submitTask, waitForCompleted, waitForSystem } from './support/api.ts';
import { baseChildEnv, SHOW_LOGS } from './support/config.ts';
import {
  dumpOutput,
  FLOTA_BIN,
  type FlotaProcess,
  groupAlive,
  REPO_ROOT,
  spawnGroup,
} from './support/flota-process.ts';
import { leftoverProcesses, processesMentioning } from './support/proc-scan.ts';
import { deadReason, startUp } from './support/system.ts';

const started: FlotaProcess[] = [];
const dataDirs: string[] = [];
/** `HH:MM:ss LEVEL: source  message  key=value …` (ANSI stripped). */
const HUMAN_LINE = /^\d\d:\d\d:\d\d [A-Z]+: +(\S+) +(.+?)(?: {2}\S+=.*)?$/;
const STATUS_AFTER_ONE_TASK = '● 1 worker online · 1 task done · 0 failed · 0 queued · 0 running';

beforeEach((ctx) => {
  ctx.onTestFailed(() => dumpOutput(started));
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop('SIGINT')));
  if (SHOW_LOGS) dumpOutput(started);
  await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function newDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flota-e2e-terminal-'));
  dataDirs.push(dir);
  return dir;
}

interface TerminalRun {
  /** `script`, which holds the pseudo-terminal; `flota up` runs inside it. */
  script: FlotaProcess;
  baseUrl: string;
  dataDir: string;
  /** Everything the terminal showed, escapes and all. */
  screen(): string;
}

/** `node bin/flota.mjs up` with one worker, on a 120×40 pseudo-terminal. */
async function upOnTerminal(env: Record<string, string> = {}): Promise<TerminalRun> {
  const dataDir = await newDataDir();
  const [port, grpcPort, mqttPort] = [await freePort(), await freePort(), await freePort()];
  // A person's terminal has colours: none of the settings that turn them off
  // (FORCE_COLOR=0 is the suite's default; CI=… makes Node assume two colours).
  const base = baseChildEnv();
  for (const name of ['FORCE_COLOR', 'NO_COLOR', 'NODE_DISABLE_COLORS', 'CI']) delete base[name];
  const script = spawnGroup({
    name: `flota up on a terminal${env.LOG_FORMAT ? ` (LOG_FORMAT=${env.LOG_FORMAT})` : ''}`,
    command: 'script',
    args: [
      '-qfec',
      `stty cols 120 rows 40; exec '${process.execPath}' '${FLOTA_BIN}' up`,
      '/dev/null',
    ],
    env: {
      ...base,
      TERM: 'xterm-256color',
      PORT: String(port),
      GRPC_PORT: String(grpcPort),
      MQTT_PORT: String(mqttPort),
      FLOTA_DATA_DIR: dataDir,
      WORKERS: '1',
      ...env,
    },
    cwd: REPO_ROOT,
  });
  started.push(script);
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForSystem(baseUrl, ['local-1'], () => deadReason(script));
  return { script, baseUrl, dataDir, screen: () => script.stdout() };
}

/**
 * Ctrl-C on the terminal: SIGINT to `flota up`'s process group (the
 * terminal's foreground group). Then nothing of it is left.
 */
async function pressCtrlC(run: TerminalRun): Promise<void> {
  const up = (await processesMentioning(run.dataDir)).find(
    (p) => p.cmdline.startsWith(process.execPath) && p.cmdline.endsWith(`${FLOTA_BIN} up`),
  );
  expect(up, 'the flota up process inside the terminal').toBeDefined();
  process.kill(-(up?.pid ?? 0), 'SIGINT');
  await expect(run.script.exited).resolves.toEqual({ code: 0, signal: null });
  await expectNothingLeft(run.dataDir, run.script);
}

async function expectNothingLeft(dataDir: string, p: FlotaProcess): Promise<void> {
  expect(await leftoverProcesses(dataDir)).toEqual([]);
  expect(groupAlive(p.pid)).toBe(false);
  expect(existsSync(join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
}

/** The terminal's rows as a person reads them: no escapes, no carriage returns. */
function rows(screen: string): string[] {
  return stripVTControlCharacters(screen)
    .split('\n')
    .flatMap((row) => row.split('\r'))
    .map((row) => row.trimEnd());
}

/** "source message" of each line about `taskId`. */
function humanFacts(screen: string, taskId: string): string[] {
  return rows(screen)
    .filter((row) => row.includes(taskId))
    .map((row) => {
      const match = HUMAN_LINE.exec(row);
      expect(match, `a human line: ${row}`).not.toBeNull();
      return `${match?.[1]} ${match?.[2]}`;
    });
}

function jsonLines(text: string): LogLine[] {
  return text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line !== '')
    .map((line) => logLineSchema.parse(JSON.parse(line)));
}

const jsonFacts = (lines: LogLine[], taskId: string) =>
  lines.filter((l) => JSON.stringify(l).includes(taskId)).map((l) => `${l.source} ${l.msg}`);

let prettyFacts: string[] = [];

describe('flota up on a terminal', () => {
  it('prints human lines under a live status line, and no JSON', async () => {
    const run = await upOnTerminal();
    const id = await submitTask(run.baseUrl, 'hello from a terminal');
    const view = await waitForCompleted(run.baseUrl, id);
    expect(view.workerId).toBe('local-1');
    await waitFor(() => rows(run.screen()).some((row) => row === STATUS_AFTER_ONE_TASK), {
      what: `the status line "${STATUS_AFTER_ONE_TASK}"`,
    });

    const screen = run.screen();
    // Coloured: the level of an info line is green.
    expect(screen).toContain('\u001b[32mINFO');
    const shown = rows(screen);
    expect(shown.filter((row) => row.trimStart().startsWith('{'))).toEqual([]);
    expect(shown).toContain(`  flota is running — open ${run.baseUrl}`);
    const completed = shown.find((row) => row.includes('task completed'));
    expect(completed).toMatch(HUMAN_LINE);
    expect(completed).toContain(` master   task completed  taskId=${id}  workerId=local-1`);
    // Redrawn in place: erased before each line printed, never left in the scrollback.
    expect(screen).toContain(`\r\u001b[2K`);
    expect(stripVTControlCharacters(screen)).not.toMatch(/running\n/);
    prettyFacts = humanFacts(screen, id);
    expect(prettyFacts).toContain('master task completed');

    await pressCtrlC(run);
    const end = rows(run.screen());
    const stopping = end.findIndex((row) => row.includes('flota: SIGINT — stopping workers'));
    expect(stopping).toBeGreaterThan(0);
    const after = end.slice(stopping);
    // The shutdown prints as plain lines: no status line any more, the last words included.
    expect(after.filter((row) => row.includes('workers online'))).toEqual([]);
    expect(after.some((row) => HUMAN_LINE.test(row) && row.includes('master stopped'))).toBe(true);
  });

  it('prints JSON lines with LOG_FORMAT=json', async () => {
    const run = await upOnTerminal({ LOG_FORMAT: 'json' });
    await pressCtrlC(run);
    const screen = stripVTControlCharacters(run.screen());
    // The banner, the ^C echo and the shutdown note are for people; every log line is JSON.
    const logLines = screen.split('\n').filter((line) => line.startsWith('{'));
    expect(jsonLines(logLines.join('\n')).map((l) => l.msg)).toContain('master ready');
    expect(screen.split('\n').filter((line) => HUMAN_LINE.test(line.trimEnd()))).toEqual([]);
    expect(screen).not.toContain('workers online');
  });
});

describe('flota up piped', () => {
  it('prints the same facts as JSON lines on stdout, the banner on stderr', async () => {
    const dataDir = await newDataDir();
    const system = await startUp(dataDir, { WORKERS: '1' }, { workers: ['local-1'] });
    started.push(system.up);
    const id = await submitTask(system.baseUrl, 'hello from a pipe');
    await waitForCompleted(system.baseUrl, id);
    const completed = (line: LogLine) => line.msg === 'task completed' && line.taskId === id;
    await waitFor(() => jsonLines(system.up.stdout()).some(completed), {
      what: 'the "task completed" JSON line',
    });
    system.up.signalGroup('SIGINT');
    await expect(system.up.exited).resolves.toEqual({ code: 0, signal: null });
    await expectNothingLeft(dataDir, system.up);

    const lines = jsonLines(system.up.stdout());
    expect(lines.find(completed)).toMatchObject({ source: 'master', workerId: 'local-1' });
    expect(system.up.stderr()).toContain(`flota is running — open ${system.baseUrl}`);
    expect(system.up.stdout()).not.toContain('workers online');
    // The same lines about a task, shown one way or the other.
    expect(prettyFacts.length).toBeGreaterThan(0);
    // Sorted: lines from different processes may interleave either way.
    expect(jsonFacts(lines, id).sort()).toEqual([...prettyFacts].sort());
  });
});
