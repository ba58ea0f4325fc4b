/**
 * pino JSON logs to stdout, also republished on the MQTT topic `logs/{source}`
 * so `mosquitto_sub -t 'flota/v1/logs/#'` shows what every process does.
 * Anonymous clients may read that topic, so no line carries a secret: secret
 * keys are censored (at any depth on the MQTT copy), session ids hashed, and
 * passwords inside URLs masked.
 */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { hashId, redactUrlsIn } from './redact.ts';

export type { Logger };
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/**
 * Keys whose values never reach a log line: keys and tokens, worker
 * credentials and join tokens, leases (they let a holder report a task), and
 * what users wrote or got back (prompts, messages, answers).
 */
export const SECRET_KEYS = [
  'apiKey',
  'key',
  'token',
  'password',
  'secret',
  'authorization',
  'credential',
  'joinToken',
  'lease',
  'prompt',
  'messages',
  'text',
  'answer',
  'result',
] as const;

/** Keys whose values are logged as a short hash (hashId): relatable, but useless to anyone else. */
export const HASHED_KEYS = ['sessionId'] as const;

/** pino redact paths: each key at the top level and one level down (e.g. inside `err`). */
export const REDACT_PATHS = [
  ...[...SECRET_KEYS, ...HASHED_KEYS].flatMap((k) => [k, `*.${k}`]),
  'headers["x-goog-api-key"]',
];

const REDACTED = '[redacted]';
const secretKeys = new Set<string>(SECRET_KEYS);
const hashedKeys = new Set<string>(HASHED_KEYS);

const censor = (value: unknown, path: string[]): unknown =>
  hashedKeys.has(path[path.length - 1] ?? '') && typeof value === 'string'
    ? hashId(value)
    : REDACTED;

/** A secret or hashed key whose value is not yet `[redacted]` or a `#…` hash. */
const UNCENSORED_KEY = new RegExp(
  `"(?:${[...SECRET_KEYS, ...HASHED_KEYS].join('|')})":(?!"\\[redacted\\]"|"#[0-9a-f]{10}")`,
);

/** Censors secret keys at any depth (pino's paths reach two levels). */
function scrub(value: unknown, depth = 0): unknown {
  if (depth > 32 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (secretKeys.has(key)) out[key] = REDACTED;
    else if (hashedKeys.has(key) && typeof item === 'string') out[key] = hashId(item);
    else out[key] = scrub(item, depth + 1);
  }
  return out;
}

/**
 * The copy of a log line that goes on the MQTT log topic, which anyone who
 * may subscribe reads: secret keys censored at any depth. A line that is not
 * JSON is not published at all.
 */
export function lineForMqtt(line: string): string | undefined {
  // Most lines hold no secret key that pino has not censored already (it
  // reaches two levels): those go out as they are, without a parse on the hot path.
  if (!UNCENSORED_KEY.test(line)) return line.startsWith('{') ? line : undefined;
  try {
    return JSON.stringify(scrub(JSON.parse(line)));
  } catch {
    return undefined;
  }
}

/** Publishes what it is given; the logger buffers until one is attached. */
export type LogPublisher = (line: string) => void;

const BUFFER_LIMIT = 500;

class MqttLogSink extends Writable {
  private publisher: LogPublisher | undefined;
  private buffer: string[] = [];

  attach(publisher: LogPublisher | undefined): void {
    this.publisher = publisher;
    if (!publisher) return;
    const pending = this.buffer;
    this.buffer = [];
    for (const line of pending) publisher(line);
  }

  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error) => void): void {
    const line = lineForMqtt(chunk.toString().trimEnd());
    if (line === undefined) {
      done();
      return;
    }
    if (this.publisher) {
      try {
        this.publisher(line);
      } catch {
        // A log line that cannot be published must never take the process down.
      }
    } else if (this.buffer.length < BUFFER_LIMIT) {
      this.buffer.push(line);
    }
    done();
  }
}

export interface FlotaLogger {
  logger: Logger;
  /** Starts (or stops, with undefined) republishing log lines over MQTT. */
  attachPublisher(publisher: LogPublisher | undefined): void;
}

export interface LoggerOptions {
  source: string;
  level?: LogLevel;
  /** Where JSON lines go besides MQTT; stdout by default (tests pass a sink). */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): FlotaLogger {
  const sink = new MqttLogSink();
  const streams = pino.multistream([
    { stream: options.destination ?? process.stdout, level: 'trace' },
    { stream: sink, level: 'trace' },
  ]);
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: { source: options.source },
      messageKey: 'msg',
      timestamp: () => `,"ts":${Date.now()}`,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor },
      // A password inside a URL (MQTT_URL, QUEUE_URL, an error message) never leaves the process.
      hooks: { streamWrite: redactUrlsIn },
    },
    streams,
  );
  return { logger, attachPublisher: (publisher) => sink.attach(publisher) };
}
