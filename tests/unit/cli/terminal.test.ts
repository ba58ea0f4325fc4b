/**
 * flota up's terminal: a JSON log line as a human line, the live status line,
 * the screen that keeps that line at the bottom, and when each is used.
 */
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createLineFormatter, fieldValue } from '../../../cli/terminal/log-line.ts';
import { ERASE_LINE, Screen } from '../../../cli/terminal/screen.ts';
import { renderStatusLine } from '../../../cli/terminal/status-line.ts';
import { chooseFormat } from '../../../cli/terminal/up-console.ts';
import { masterStatusOf } from '../../../master/src/metrics/master-status.ts';
import type { MasterStatus } from '../../../proto/src/ipc.ts';

const TS = Date.UTC(2030, 0, 2, 3, 4, 5);
/** HH:MM:ss in this machine's time zone, as the formatter prints it. */
const clock = new Date(TS).toTimeString().slice(0, 8);
const json = (fields: Record<string, unknown>) =>
  JSON.stringify({ level: 'info', ts: TS, source: 'master', ...fields });

const status = (overrides: Partial<MasterStatus> = {}): MasterStatus => ({
  type: 'flota:master-status',
  workersOnline: 1,
  tasksCompleted: 1,
  tasksFailed: 0,
  queued: 0,
  running: 0,
  ...overrides,
});

describe('log line formatter', () => {
  const plain = createLineFormatter({ colors: false });

  it("prints time, level, source, message, then the fields (not the logging module's name)", () => {
    const line = json({
      component: 'results',
      taskId: 'any.echo.abc',
      workerId: 'local-1',
      attempt: 1,
      msg: 'task completed',
    });
    expect(plain(line)).toBe(
      `${clock} INFO:  master   task completed  taskId=any.echo.abc  workerId=local-1  attempt=1`,
    );
  });

  it("leaves out a worker's own id, which the source column names", () => {
    const line = json({
      source: 'local-1',
      workerId: 'local-1',
      taskId: 't1',
      msg: 'task started',
    });
    expect(plain(line)).toBe(`${clock} INFO:  local-1  task started  taskId=t1`);
  });

  it("shows an error's message, not its stack, and lines the levels up", () => {
    const line = json({
      level: 'error',
      msg: 'result stream broke',
      err: { type: 'Error', message: 'socket hang up', stack: 'Error: socket hang up\n    at x' },
    });
    expect(plain(line)).toBe(`${clock} ERROR: master   result stream broke  err="socket hang up"`);
  });

  it('quotes values with spaces and spells out control characters', () => {
    expect(fieldValue('local-1')).toBe('local-1');
    expect(fieldValue('two words')).toBe('"two words"');
    expect(fieldValue('\u001b[2J')).toBe('"\\u001b[2J"');
    expect(fieldValue({ a: 1 })).toBe('{"a":1}');
    expect(fieldValue(42)).toBe('42');
    const line = json({ msg: 'evil \u001b[2J message', model: 'x\u0007y' });
    expect(plain(line)).toBe(`${clock} INFO:  master   evil \\u001b[2J message  model="x\\u0007y"`);
  });

  it('passes a line that is not a JSON object through unchanged', () => {
    for (const line of ['a plain note', '{"half', '[1,2]', '', '  spaced  ']) {
      expect(plain(line)).toBe(line);
    }
  });

  it('colours only what the plain line says', () => {
    const coloured = createLineFormatter({ colors: true });
    const line = json({ level: 'warn', taskId: 't1', msg: 'lease lost' });
    expect(coloured(line)).toContain('\u001b[33mWARN');
    expect(stripVTControlCharacters(coloured(line))).toBe(plain(line));
  });
});

describe('status line', () => {
  it('says workers online, tasks done and failed, queued and running', () => {
    expect(renderStatusLine(status(), { width: 120, colors: false })).toBe(
      '● 1 worker online · 1 task done · 0 failed · 0 queued · 0 running',
    );
    const busy = status({ workersOnline: 3, tasksCompleted: 12, tasksFailed: 2, queued: 7 });
    expect(renderStatusLine(busy, { width: 120, colors: false })).toBe(
      '● 3 workers online · 12 tasks done · 2 failed · 7 queued · 0 running',
    );
    expect(
      renderStatusLine(status({ tasksCompleted: 0 }), { width: 120, colors: false }),
    ).toContain('0 tasks done');
  });

  it('drops facts from the end until it fits in one row, never the last column', () => {
    for (let width = 1; width <= 80; width++) {
      const line = renderStatusLine(status(), { width, colors: false });
      if (width >= 2) expect(line.length).toBeLessThan(width);
      expect(line.startsWith('●')).toBe(true);
    }
    expect(renderStatusLine(status(), { width: 40, colors: false })).toBe(
      '● 1 worker online · 1 task done',
    );
  });

  it('colours the same text', () => {
    const coloured = renderStatusLine(status({ tasksFailed: 1 }), { width: 120, colors: true });
    expect(coloured).toContain('\u001b[');
    expect(stripVTControlCharacters(coloured)).toBe(
      renderStatusLine(status({ tasksFailed: 1 }), { width: 120, colors: false }),
    );
  });
});

describe('screen', () => {
  function screen(live = true) {
    const written: string[] = [];
    const out = { write: (text: string) => written.push(`out:${text}`) };
    const err = { write: (text: string) => written.push(`err:${text}`) };
    return { written, screen: new Screen({ out, err, live, colors: false, columns: () => 100 }) };
  }
  const LINE = renderStatusLine(status(), { width: 100, colors: false });

  it('erases the status line before each printed line and draws it again after', () => {
    const { written, screen: s } = screen();
    s.print('before any status');
    s.status(status());
    s.print('a log line');
    s.print('a note', 'err');
    expect(written).toEqual([
      'out:before any status\n',
      `out:${LINE}`,
      `out:${ERASE_LINE}`,
      'out:a log line\n',
      `out:${LINE}`,
      `out:${ERASE_LINE}`,
      'err:a note\n',
      `out:${LINE}`,
    ]);
  });

  it('redraws only when the text changes', () => {
    const { written, screen: s } = screen();
    s.status(status());
    s.status(status());
    expect(written).toEqual([`out:${LINE}`]);
    s.status(status({ tasksCompleted: 2 }));
    expect(written.slice(1)).toEqual([
      `out:${ERASE_LINE}`,
      `out:${renderStatusLine(status({ tasksCompleted: 2 }), { width: 100, colors: false })}`,
    ]);
  });

  it('once ended, erases the line and prints plain lines only', () => {
    const { written, screen: s } = screen();
    s.status(status());
    s.end();
    s.status(status({ tasksCompleted: 5 }));
    s.print('stopping');
    expect(written).toEqual([`out:${LINE}`, `out:${ERASE_LINE}`, 'out:stopping\n']);
  });

  it('draws no status line where it could not be redrawn in place', () => {
    const { written, screen: s } = screen(false);
    s.status(status());
    s.print('a log line');
    expect(written).toEqual(['out:a log line\n']);
  });
});

describe('output format', () => {
  it('is human on a terminal unless LOG_FORMAT says json, and JSON elsewhere unless it says pretty', () => {
    expect(chooseFormat('auto', true)).toBe('human');
    expect(chooseFormat('auto', false)).toBe('json');
    expect(chooseFormat('json', true)).toBe('json');
    expect(chooseFormat('json', false)).toBe('json');
    expect(chooseFormat('pretty', false)).toBe('human');
    expect(chooseFormat('pretty', true)).toBe('human');
  });
});

describe("the master's status message", () => {
  it('adds up what waits and what runs over every queue', () => {
    const snapshot = {
      tasks: { completed: 4, failed: 1 },
      workers: { online: 2, offline: 1, slots: 4, active: 1 },
      queues: {
        'tasks.any.echo': { waiting: 2, prioritized: 1, delayed: 1, active: 1, completed: 4 },
        'tasks.gpu.llama': { waiting: 3, active: 2, failed: 1 },
      },
      resultsRejected: {},
      cache: { enabled: false, hits: 0, misses: 0 },
    };
    expect(masterStatusOf(snapshot)).toEqual({
      type: 'flota:master-status',
      workersOnline: 2,
      tasksCompleted: 4,
      tasksFailed: 1,
      queued: 7,
      running: 3,
    });
  });
});
