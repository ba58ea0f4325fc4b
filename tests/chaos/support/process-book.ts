/**
 * Every flota process the chaos run starts, with its whole output teed to a
 * log file, its JSON log lines handed to listeners as they arrive, and the
 * evidence of a crash (an uncaught exception, a fatal line, an exit nobody
 * asked for) collected for the final verdict.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Exit, FlotaProcess } from '../../e2e/support/flota-process.ts';

export type Role = 'master' | 'worker';

export interface LogLine {
  ts: number;
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface TrackedProcess {
  name: string;
  role: Role;
  /** Worker id, or "master". */
  id: string;
  process: FlotaProcess;
  startedAt: number;
  /** We killed it (SIGKILL) on purpose: its exit is expected. */
  killedOnPurpose: boolean;
  /** We asked it to stop (SIGTERM) at the end: it must exit with code 0. */
  stopRequested: boolean;
  exit?: Exit & { at: number };
  /** Lines that say the process crashed: uncaught exceptions, fatal log lines. */
  crashLines: string[];
  /** Error-level log lines, by message. */
  errors: Record<string, number>;
}

/**
 * Raw (non-JSON) output that means a Node process crashed: what Node prints
 * for an uncaught exception or unhandled rejection. JSON log lines count as
 * a crash only at level fatal or when they report an uncaught error: their
 * fields may quote PostgreSQL's own "FATAL:" messages, which are not ours.
 */
const CRASH_PATTERN =
  /Uncaught|FATAL|UnhandledPromiseRejection|unhandledRejection|^Node\.js v\d+|ERR_INTERNAL_ASSERTION/;
const CRASH_MESSAGE = /uncaught|unhandled/i;
const MAX_CRASH_LINES = 20;

export type LineListener = (p: TrackedProcess, line: LogLine) => void;

export class ProcessBook {
  readonly all: TrackedProcess[] = [];
  private readonly listeners: LineListener[] = [];
  private readonly files: WriteStream[] = [];

  constructor(private readonly logDir: string) {}

  onLine(listener: LineListener): void {
    this.listeners.push(listener);
  }

  track(role: Role, id: string, process: FlotaProcess): TrackedProcess {
    const tracked: TrackedProcess = {
      name: process.name,
      role,
      id,
      process,
      startedAt: Date.now(),
      killedOnPurpose: false,
      stopRequested: false,
      crashLines: [],
      errors: {},
    };
    this.all.push(tracked);
    const file = createWriteStream(
      join(this.logDir, `${role}-${id}-${process.pid}.log`.replace(/[^\w.-]/g, '_')),
    );
    this.files.push(file);
    const { stdout, stderr } = process.child;
    if (stdout) this.follow(tracked, stdout, file, '');
    if (stderr) this.follow(tracked, stderr, file, '[stderr] ');
    void process.exited.then((exit) => {
      tracked.exit = { ...exit, at: Date.now() };
    });
    return tracked;
  }

  /** Processes that exited although nobody killed or stopped them, or stopped uncleanly. */
  unexpectedExits(): string[] {
    const found: string[] = [];
    for (const p of this.all) {
      if (!p.exit || p.killedOnPurpose) continue;
      const clean = p.stopRequested && p.exit.code === 0;
      if (!clean) {
        const why = p.stopRequested ? 'on the final stop' : 'on its own';
        found.push(
          `${p.name} (pid ${p.process.pid}) exited ${why}: code ${p.exit.code}, signal ${p.exit.signal}`,
        );
      }
    }
    return found;
  }

  crashes(): string[] {
    return this.all.flatMap((p) =>
      p.crashLines.map((line) => `${p.name} (pid ${p.process.pid}): ${line}`),
    );
  }

  async closeFiles(): Promise<void> {
    await Promise.all(
      this.files.map((f) => new Promise<void>((resolve) => f.end(() => resolve()))),
    );
  }

  private follow(p: TrackedProcess, stream: Readable, file: WriteStream, prefix: string): void {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.line(p, line, file, prefix);
    });
    stream.on('end', () => {
      if (partial) this.line(p, partial, file, prefix);
      partial = '';
    });
  }

  private line(p: TrackedProcess, line: string, file: WriteStream, prefix: string): void {
    file.write(`${prefix}${line}\n`);
    let parsed: LogLine | undefined;
    if (line.startsWith('{')) {
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        parsed = undefined;
      }
    }
    const crashed = parsed
      ? parsed.level === 'fatal' || CRASH_MESSAGE.test(String(parsed.msg))
      : CRASH_PATTERN.test(line);
    if (crashed && p.crashLines.length < MAX_CRASH_LINES) p.crashLines.push(line.slice(0, 500));
    if (!parsed) return;
    if (parsed.level === 'error') p.errors[parsed.msg] = (p.errors[parsed.msg] ?? 0) + 1;
    for (const listener of this.listeners) listener(p, parsed);
  }
}
