/**
 * One pino JSON line as a person reads it on a terminal:
 *
 *   12:01:02 INFO:  master   task completed  taskId=any.echo.…  workerId=local-1  attempt=1
 *
 * Local time, level (coloured by pino-pretty), source, message, then every
 * other field as key=value. An error shows its message only; its stack stays
 * in the JSON (LOG_FORMAT=json, the MQTT log topic). A line that is not a
 * JSON object is returned as it is.
 */
import { prettyFactory } from 'pino-pretty';

/**
 * Keys the line shows in their own places, or not at all: pino's bookkeeping,
 * and the module that logged (the message says what happened; the JSON keeps where).
 */
const PLACED_KEYS = new Set(['ts', 'level', 'msg', 'source', 'pid', 'hostname', 'component']);
/** Wide enough for `master`, `local-12` and most worker ids, so messages line up. */
const SOURCE_WIDTH = 8;
/** `ERROR`, `FATAL`, `DEBUG`, `TRACE`: the longest level names. */
const LEVEL_WIDTH = 5;

export interface LineFormatOptions {
  /** ANSI colours (a terminal that has them). */
  colors: boolean;
}

export type LineFormatter = (line: string) => string;

/**
 * Control characters spelled out, so a logged value (a provider's error, a
 * model name) can never move the cursor or recolour the terminal.
 */
export function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => JSON.stringify(c).slice(1, -1));
}

/** A value as it reads after `key=`: bare when unambiguous, JSON-quoted otherwise. */
export function fieldValue(value: unknown): string {
  if (typeof value === 'string') {
    return /^[^\s\p{Cc}"=]+$/u.test(value) ? value : JSON.stringify(value);
  }
  if (value !== null && typeof value === 'object') {
    // A serialized error: its message is what a person needs; the stack is in the JSON.
    const message = (value as { message?: unknown }).message;
    return JSON.stringify(typeof message === 'string' ? message : value);
  }
  return String(value);
}

/** The fields after the message, as logged; a worker's own `workerId` is in the source column. */
function fieldsOf(log: Record<string, unknown>, messageKey: string): Array<[string, unknown]> {
  return Object.entries(log).filter(
    ([key, value]) =>
      !PLACED_KEYS.has(key) && key !== messageKey && !(key === 'workerId' && value === log.source),
  );
}

function parseObject(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function createLineFormatter(options: LineFormatOptions): LineFormatter {
  const pretty = prettyFactory({
    colorize: options.colors,
    // Levels keep pino-pretty's colours; the message is plain text.
    customColors: 'message:reset',
    useOnlyCustomProps: false,
    messageKey: 'msg',
    timestampKey: 'ts',
    translateTime: 'SYS:HH:MM:ss',
    singleLine: true,
    hideObject: true,
    ignore: 'pid,hostname,source',
    customPrettifiers: { time: (time) => String(time) },
    messageFormat: (log, messageKey, _label, { colors }) => {
      // pino-pretty puts a colon right after the level; the padding goes after it.
      const pad = ' '.repeat(Math.max(0, LEVEL_WIDTH - String(log.level).length));
      const source = printable(String(log.source ?? '')).padEnd(SOURCE_WIDTH);
      const fields = fieldsOf(log, messageKey).map(
        ([key, value]) => `${colors.gray(`${printable(key)}=`)}${fieldValue(value)}`,
      );
      const message = printable(String(log[messageKey] ?? ''));
      return [`${pad}${colors.cyan(source)} ${message}`, ...fields].join('  ');
    },
  });
  return (line) => {
    const log = parseObject(line);
    return log ? pretty(log).trimEnd() : line;
  };
}
