/**
 * What `flota up` prints, and where. Every process logs pino JSON lines; on a
 * terminal (LOG_FORMAT=auto) the supervisor reads its children's output and
 * shows each line as a short human one, under a live status line fed by the
 * master's status messages. Piped or redirected, or with LOG_FORMAT=json, the
 * children write straight to the supervisor's stdout and stderr, as JSON.
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { type Readable, Writable } from 'node:stream';
import type { ChildOutput } from '../../common/flota-process.ts';
import type { MasterConfig } from '../../master/src/config.ts';
import type { MasterStatus } from '../../proto/src/ipc.ts';
import { createLineFormatter, type LineFormatter } from './log-line.ts';
import { Screen } from './screen.ts';

/** How long the supervisor waits, before it exits, for its children's last lines. */
const DRAIN_MS = 2_000;

export interface UpConsole {
  /** How children's stdout and stderr are wired; undefined: they write to this process's own. */
  readonly childOutput: ChildOutput | undefined;
  /** Where the supervisor's own logger writes; undefined: stdout. */
  readonly logDestination: NodeJS.WritableStream | undefined;
  /** A message for the person at the terminal (the banner, the shutdown): stderr. */
  note(text: string): void;
  status(status: MasterStatus): void;
  /** Erases the status line for good: the shutdown prints as plain lines. */
  endStatus(): void;
  /** Resolves once every child's output has been read to its end (or after a short wait). */
  drained(): Promise<void>;
}

export type LogFormat = MasterConfig['LOG_FORMAT'];

/** Human lines, or the JSON lines as they are. */
export function chooseFormat(format: LogFormat, stdoutIsTerminal: boolean): 'human' | 'json' {
  if (format === 'auto') return stdoutIsTerminal ? 'human' : 'json';
  return format === 'pretty' ? 'human' : 'json';
}

/** `env` decides colours (NO_COLOR, FORCE_COLOR, TERM), as Node's tty.WriteStream.hasColors reads them. */
export function openUpConsole(format: LogFormat, env: NodeJS.ProcessEnv): UpConsole {
  const stdout = process.stdout;
  const terminal = stdout.isTTY === true;
  if (chooseFormat(format, terminal) === 'json') return jsonConsole();
  const colors = terminal && stdout.hasColors(env);
  const screen = new Screen({
    out: stdout,
    err: process.stderr,
    live: terminal,
    colors,
    // A pseudo-terminal may report no size (0 columns).
    columns: () => stdout.columns || 80,
  });
  if (terminal) stdout.on('resize', () => screen.resized());
  return humanConsole(screen, createLineFormatter({ colors }));
}

function jsonConsole(): UpConsole {
  return {
    childOutput: undefined,
    logDestination: undefined,
    note: (text) => process.stderr.write(`${text}\n`),
    status: () => {},
    endStatus: () => {},
    drained: async () => {},
  };
}

function humanConsole(screen: Screen, format: LineFormatter): UpConsole {
  const open = new Set<Promise<unknown>>();
  const follow = (stream: Readable, to: 'out' | 'err') => {
    const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    lines.on('line', (line) => screen.print(format(line), to));
    const closed = once(lines, 'close');
    open.add(closed);
    void closed.finally(() => open.delete(closed));
  };
  return {
    childOutput: {
      attach(stdout, stderr) {
        follow(stdout, 'out');
        follow(stderr, 'err');
      },
    },
    // pino hands each line to the destination in one write.
    logDestination: new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) screen.print(format(line));
        done();
      },
    }),
    note: (text) => screen.print(text, 'err'),
    status: (status) => screen.status(status),
    endStatus: () => screen.end(),
    async drained() {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise((resolve) => {
        timer = setTimeout(resolve, DRAIN_MS);
      });
      await Promise.race([Promise.all(open), late]);
      clearTimeout(timer);
    },
  };
}
