/**
 * The first minutes of `npm start` (`node bin/flota.mjs up`), as a person
 * meets them, on a terminal (a pseudo-terminal through `script`) and without
 * one: a start-up failure they can fix is one plain line that says what,
 * why and what to do, with no stack trace; a fresh data dir and a restart
 * on it log no warning at all.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.ts';
import { type MosquittoServer, startMosquitto } from '../helpers/mosquitto-server.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { submitTask, waitForCompleted } from './support/api.ts';
import { baseChildEnv } from './support/config.ts';
import {
  dumpOutput,
  FLOTA_BIN,
  type FlotaProcess,
  REPO_ROOT,
  spawnFlota,
  spawnGroup,
} from './support/flota-process.ts';
import { startUp } from './support/system.ts';

const STACK_LINE = /^\s+at /;
const started: FlotaProcess[] = [];
const scratch: string[] = [];
let failed = false;

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true;
});

afterAll(async () => {
  if (failed) dumpOutput(started);
  await Promise.all(started.map((p) => p.stop('SIGINT')));
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** Free ports and a fresh data dir, as a first `npm start` would have them; `env` overrides. */
async function upEnv(env: Record<string, string>): Promise<Record<string, string>> {
  return {
    PORT: String(await freePort()),
    GRPC_PORT: String(await freePort()),
    MQTT_PORT: String(await freePort()),
    FLOTA_DATA_DIR: await tempDir('flota-first-start-'),
    WORKERS: '1',
    ...env,
  };
}

interface Finished {
  code: number | null;
  /** Every line it printed, stdout and stderr, without colours or carriage returns. */
  lines: string[];
}

/**
 * Runs `flota up` until it exits by itself: with `tty`, inside `script`, so its
 * stdin, stdout and stderr are a terminal (script's exit code is flota's).
 */
async function runUntilExit(env: Record<string, string>, tty: boolean): Promise<Finished> {
  const p = tty
    ? spawnGroup({
        name: 'flota up (terminal)',
        command: 'script',
        args: ['-qfec', `'${process.execPath}' '${FLOTA_BIN}' up`, '/dev/null'],
        env: { ...baseChildEnv(), ...env },
        cwd: REPO_ROOT,
      })
    : spawnFlota({ name: 'flota up', args: ['up'], env });
  started.push(p);
  await waitFor(() => p.hasExited(), { timeoutMs: 90_000, what: `${p.name} to exit` });
  const { code } = await p.exited;
  const text = stripVTControlCharacters(`${p.stdout()}\n${p.stderr()}`);
  return { code, lines: text.split(/\r?\n/).filter((line) => line.trim() !== '') };
}

/** Lines that are pino JSON, parsed. */
function jsonLines(lines: string[]): Array<{ level?: unknown; msg?: unknown }> {
  return lines.flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as { level?: unknown; msg?: unknown }];
    } catch {
      return [];
    }
  });
}

/** The one `flota:` line a failed start prints, checked for its shape; returned for details. */
function theOneMessage(run: Finished, mentions: string): string {
  const messages = run.lines.filter((line) => line.startsWith('flota:'));
  expect(messages, run.lines.join('\n')).toHaveLength(1);
  const [message] = messages as [string];
  expect(message).toContain(mentions);
  expect(message).toContain('`flota doctor`');
  expect(run.lines.filter((line) => STACK_LINE.test(line))).toEqual([]);
  const loud = jsonLines(run.lines).filter((l) => l.level === 'warn' || l.level === 'error');
  expect(loud).toEqual([]);
  return message;
}

describe.each([
  ['without a terminal', false],
  ['on a terminal', true],
])('a start-up failure a person can fix, %s', (_, tty) => {
  let mosquitto: MosquittoServer;
  let httpServer: Server;
  let httpPort: number;

  beforeAll(async () => {
    mosquitto = await startMosquitto();
    httpPort = await freePort();
    httpServer = createServer((_req, res) => res.end('not flota'));
    httpServer.listen(httpPort, '127.0.0.1');
    await once(httpServer, 'listening');
  });

  afterAll(async () => {
    await mosquitto?.stop();
    httpServer?.close();
  });

  it('MQTT port taken by a broker: names the port and both ways out', async () => {
    const port = mosquitto.port;
    const run = await runUntilExit(await upEnv({ MQTT_PORT: String(port) }), tty);
    expect(run.code).not.toBe(0);
    const message = theOneMessage(run, `MQTT port ${port} is in use`);
    expect(message).toContain('an MQTT broker answers there');
    expect(message).toMatch(/MQTT_PORT=\d+ to move the embedded broker/);
    expect(message).toContain(`MQTT_URL=mqtt://127.0.0.1:${port}`);
  });

  it('HTTP port taken by a web server: names the port and how to move it', async () => {
    const run = await runUntilExit(await upEnv({ PORT: String(httpPort) }), tty);
    expect(run.code).not.toBe(0);
    const message = theOneMessage(run, `HTTP port ${httpPort} is in use`);
    expect(message).toContain('an HTTP server answers there');
    expect(message).toMatch(/PORT=\d+/);
  });

  it('FLOTA_DATA_DIR under a regular file: what, why, what to do', async () => {
    const file = join(await tempDir('flota-not-a-dir-'), 'a-file');
    await writeFile(file, 'not a directory\n');
    const run = await runUntilExit(await upEnv({ FLOTA_DATA_DIR: join(file, 'data') }), tty);
    expect(run.code).toBe(1);
    const message = theOneMessage(run, `FLOTA_DATA_DIR ${join(file, 'data')} cannot be used`);
    expect(message).toContain(`${file} is a file, not a directory`);
    expect(message).toContain('Point FLOTA_DATA_DIR at a directory');
  });

  it('bad environment values: one line per problem, exit code 2', async () => {
    const run = await runUntilExit(await upEnv({ PORT: 'abc', GRPC_PORT: '-1' }), tty);
    expect(run.code).toBe(2);
    expect(run.lines).toContain('flota: invalid master configuration:');
    expect(run.lines).toContain('  - PORT: expected a number, got "abc"');
    expect(run.lines.filter((line) => line.startsWith('  - GRPC_PORT:'))).toHaveLength(1);
    expect(run.lines.filter((line) => STACK_LINE.test(line))).toEqual([]);
  });
});

describe('a clean first start, and a restart on the same data dir', () => {
  /** Starts, runs one task, stops with Ctrl-C; returns every line it printed. */
  async function startRunStop(dataDir: string): Promise<string[]> {
    const system = await startUp(dataDir, { WORKERS: '1' }, { workers: ['local-1'] });
    started.push(system.up);
    const id = await submitTask(system.baseUrl, 'hello from the first five minutes');
    await waitForCompleted(system.baseUrl, id);
    system.up.signalGroup('SIGINT');
    await waitFor(() => system.up.hasExited(), { timeoutMs: 30_000, what: 'flota up to stop' });
    await expect(system.up.exited).resolves.toEqual({ code: 0, signal: null });
    return `${system.up.stdout()}\n${system.up.stderr()}`.split('\n');
  }

  it('logs no warning and no stack trace, first time or after a restart', async () => {
    const dataDir = await tempDir('flota-clean-start-');
    for (const round of ['first start', 'restart']) {
      const lines = await startRunStop(dataDir);
      const logged = jsonLines(lines);
      expect(logged.length, round).toBeGreaterThan(0);
      const loud = logged.filter((l) => l.level !== 'info' && l.level !== 'debug');
      expect(loud, round).toEqual([]);
      expect(
        lines.filter((line) => STACK_LINE.test(line)),
        round,
      ).toEqual([]);
    }
  });
});
