/**
 * pino JSON logs to stdout, also republished on the MQTT topic `logs/{source}`
 * so `mosquitto_sub -t 'flota/v1/logs/#'` shows what every process does.
 */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export type { Logger };
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Keys whose values never reach a log line. */
export const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  'key',
  '*.key',
  'token',
  '*.token',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'headers["x-goog-api-key"]',
];

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
    const line = chunk.toString().trimEnd();
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
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    streams,
  );
  return { logger, attachPublisher: (publisher) => sink.attach(publisher) };
}
