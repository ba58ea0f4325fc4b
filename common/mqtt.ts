import type { Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { z } from 'zod';
import type { Logger } from './logger.ts';
import { redactUrl } from './redact.ts';
import { formatZodError } from './zod-error.ts';

/**
 * Largest MQTT payload flota parses unless a caller allows more: checked
 * before JSON.parse, so a huge message costs no parsing at all. Status,
 * heartbeat and control messages stay far below it; assignments, which carry
 * a whole conversation, pass their own bound.
 */
export const MAX_MQTT_PAYLOAD_BYTES = 1_048_576;

/**
 * mqtt.js never sets TCP_NODELAY, so every small publish waits on Nagle's
 * algorithm (~40 ms per request/response). Turn it off on every (re)connect.
 */
export function connectMqtt(url: string, options: IClientOptions): MqttClient {
  const client = mqtt.connect(url, { reconnectPeriod: 500, connectTimeout: 5_000, ...options });
  client.on('connect', () => {
    const stream = client.stream as unknown as Partial<Socket> | undefined;
    stream?.setNoDelay?.(true);
  });
  return client;
}

/**
 * Parses an MQTT payload as JSON against a schema. A bad message (empty, over
 * `maxBytes`, not JSON, wrong shape) is logged with the reason and dropped
 * (undefined); it never throws.
 */
export function parseMqttJson<S extends z.ZodType>(
  schema: S,
  payload: Buffer,
  topic: string,
  log: Logger,
  maxBytes: number = MAX_MQTT_PAYLOAD_BYTES,
): z.infer<S> | undefined {
  const bytes = payload.length;
  if (bytes === 0) {
    log.warn({ topic, bytes }, 'mqtt message dropped: empty payload');
    return undefined;
  }
  if (bytes > maxBytes) {
    log.warn(
      { topic, bytes, limit: maxBytes },
      `mqtt message dropped: too large (${bytes} bytes, limit ${maxBytes})`,
    );
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    // The parser's message quotes the payload, which may carry a key: not logged.
    log.warn({ topic, bytes }, 'mqtt message dropped: not JSON');
    return undefined;
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    log.warn(
      { topic, bytes, reason: formatZodError(parsed.error).slice(0, 1_000) },
      'mqtt message dropped: invalid',
    );
    return undefined;
  }
  return parsed.data;
}

/** Resolves on the first successful connect; rejects with a readable error after `timeoutMs`. */
export function waitConnected(client: MqttClient, url: string, timeoutMs = 15_000): Promise<void> {
  if (client.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('connect', onConnect);
      reject(
        new Error(`cannot reach the MQTT broker at ${redactUrl(url)} (waited ${timeoutMs} ms)`),
      );
    }, timeoutMs);
    const onConnect = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('connect', onConnect);
  });
}
