/**
 * The worker's MQTT session: a Last Will that marks it offline, the retained
 * online record and its two subscriptions re-established on every connect,
 * and a persistent session (clean: false, stable clientId) so QoS 1
 * assignments sent during a short disconnect are delivered afterwards.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from '../../common/logger.ts';
import { connectMqtt } from '../../common/mqtt.ts';
import { settlesWithin } from '../../common/timeout.ts';
import type { Heartbeat, WorkerOffline, WorkerOnline } from '../../proto/src/schemas/worker.ts';
import { type Topics, workerClientId } from '../../proto/src/topics.ts';

/** PEM texts for mqtts: the CA the broker's certificate chains to; a client certificate for mutual TLS. */
export interface MqttTlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface MqttLinkOptions {
  url: string;
  /** The broker login: the worker id and its credential, unless MQTT_USERNAME / MQTT_PASSWORD say otherwise. */
  username: string;
  password: string;
  /** Used by mqtts:// and wss:// URLs only. */
  tls?: MqttTlsOptions;
  workerId: string;
  topics: Topics;
  /** The retained online record, built fresh on every connect. */
  onlineRecord: () => WorkerOnline;
  onAssignment: (payload: Buffer, topic: string) => void;
  onControl: (payload: Buffer, topic: string) => void;
  log: Logger;
}

export interface MqttLink {
  readonly client: MqttClient;
  /** Resolves on the first successful connect. */
  connected(): Promise<void>;
  publishHeartbeat(heartbeat: Heartbeat): void;
  /** Publishes the retained online record again (it changed: draining, live config, an ack). */
  publishStatus(): void;
  publishLog(line: string): void;
  /** Retained `{state:'offline', reason:'shutdown'}`, then a clean disconnect. */
  shutdown(): Promise<void>;
}

const json = (value: unknown) => JSON.stringify(value);

/**
 * How long a stopping worker waits for the broker to confirm its offline
 * record. A broker that is gone or stuck never will: the worker then leaves
 * without it (the Last Will says `lost`), instead of waiting forever.
 */
export const OFFLINE_CONFIRM_WAIT_MS = 2_000;

export function openMqttLink(options: MqttLinkOptions): MqttLink {
  const { topics, workerId } = options;
  const log = options.log.child({ component: 'mqtt-link' });
  const statusTopic = topics.status(workerId);
  const tasksTopic = topics.tasks(workerId);
  const controlTopic = topics.control(workerId);
  const lastWill: WorkerOffline = { state: 'offline', id: workerId, reason: 'lost' };

  const client = connectMqtt(options.url, {
    clientId: workerClientId(workerId),
    clean: false,
    username: options.username,
    password: options.password,
    ...options.tls,
    will: { topic: statusTopic, payload: Buffer.from(json(lastWill)), qos: 1, retain: true },
  });

  let resolveFirst: () => void = () => {};
  const first = new Promise<void>((resolve) => {
    resolveFirst = resolve;
  });

  // While the broker is down the same error repeats every reconnect period: warn once.
  let lastError = '';
  const publishStatus = () => {
    client.publish(statusTopic, json(options.onlineRecord()), { qos: 1, retain: true }, (err) => {
      if (err) log.warn({ err: err.message }, 'could not publish online status');
    });
  };
  client.on('connect', (connack) => {
    lastError = '';
    log.info({ sessionPresent: connack.sessionPresent }, 'connected to broker');
    publishStatus();
    client.subscribe({ [tasksTopic]: { qos: 1 }, [controlTopic]: { qos: 1 } }, (err) => {
      if (err) log.error({ err: err.message }, 'subscribe failed');
      else resolveFirst();
    });
  });
  client.on('reconnect', () => log.debug('reconnecting to broker'));
  client.on('offline', () => log.warn('broker connection lost'));
  client.on('error', (err) => {
    log[err.message === lastError ? 'debug' : 'warn']({ err: err.message }, 'mqtt error');
    lastError = err.message;
  });
  client.on('message', (topic, payload) => {
    try {
      if (topic === tasksTopic) options.onAssignment(payload, topic);
      else if (topic === controlTopic) options.onControl(payload, topic);
      else log.warn({ topic, bytes: payload.length }, 'mqtt message dropped: unexpected topic');
    } catch (error) {
      // A handler bug on one message must not take the worker down: drop that message.
      log.error({ topic, err: error instanceof Error ? error.message : error }, 'handler failed');
    }
  });

  return {
    client,
    connected: () => first,
    publishHeartbeat(heartbeat) {
      if (client.connected) client.publish(topics.heartbeat(workerId), json(heartbeat), { qos: 0 });
    },
    publishStatus() {
      // Offline, the next connect publishes the record as it is then.
      if (client.connected) publishStatus();
    },
    publishLog(line) {
      // Only while connected: a log line must not queue up behind a dead link.
      if (client.connected) client.publish(topics.log(workerId), line, { qos: 0 });
    },
    async shutdown() {
      let confirmed = false;
      if (client.connected) {
        const offline: WorkerOffline = { state: 'offline', id: workerId, reason: 'shutdown' };
        const published = client
          .publishAsync(statusTopic, json(offline), { qos: 1, retain: true })
          .then(() => {
            confirmed = true;
          });
        await settlesWithin(published, OFFLINE_CONFIRM_WAIT_MS);
        if (!confirmed) log.warn('offline status not confirmed by the broker: leaving without it');
      }
      // A clean end waits for acknowledgements; without a broker that answers, end at once.
      await client.endAsync(!confirmed);
    },
  };
}
