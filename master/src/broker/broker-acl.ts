/**
 * Who may do what on the embedded broker, as pure functions of a client's
 * identity (decided once, at CONNECT) and a topic:
 *
 * - the master (`_master` + the password made for this run): anything;
 * - a worker (username = its id, password = its credential, client id =
 *   `flota-worker-<id>`): publish its own status (the only retained topic),
 *   heartbeat and log lines; subscribe to its own tasks and control topics;
 * - an observer (no username, or `_observer`): subscribe to log topics only.
 */
import { timingSafeEqual } from 'node:crypto';
import {
  MASTER_MQTT_USERNAME,
  OBSERVER_MQTT_USERNAME,
  TOPIC_ID_PATTERN,
  type Topics,
  workerClientId,
} from '../../../proto/src/topics.ts';
import type { WorkerCheck } from '../security/worker-credentials.ts';

export type BrokerIdentity =
  | { kind: 'master' }
  | { kind: 'worker'; workerId: string }
  | { kind: 'observer' };

/** CONNACK return codes used for refusals (MQTT 3.1.1 §3.2.2.3). */
export const BAD_USERNAME_OR_PASSWORD = 4;
export const NOT_AUTHORIZED = 5;

export type ConnectDecision =
  | { ok: true; identity: BrokerIdentity }
  | {
      ok: false;
      returnCode: typeof BAD_USERNAME_OR_PASSWORD | typeof NOT_AUTHORIZED;
      reason: string;
    };

/** Longest client id accepted (a worker's is `flota-worker-` + up to 128 characters). */
export const MAX_CLIENT_ID_CHARS = 256;
const WORKER_CLIENT_PREFIX = workerClientId('');
const MASTER_CLIENT_PREFIX = 'flota-master-';

export interface ConnectRequest {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
}

export interface ConnectVerifier {
  masterPassword: string;
  /** WorkerCredentials.check: is `token` a valid, unrevoked credential for `workerId`? */
  checkCredential(token: string, workerId: string): WorkerCheck;
}

function samePassword(given: Buffer | undefined, expected: string): boolean {
  if (!given) return false;
  const want = Buffer.from(expected);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** Decides a CONNECT. The reason is for the broker's log; it never quotes the password. */
export function decideConnect(req: ConnectRequest, verifier: ConnectVerifier): ConnectDecision {
  const { clientId, username, password } = req;
  if (clientId.length > MAX_CLIENT_ID_CHARS) {
    return {
      ok: false,
      returnCode: NOT_AUTHORIZED,
      reason: `client id over ${MAX_CLIENT_ID_CHARS} characters`,
    };
  }
  if (username === MASTER_MQTT_USERNAME) {
    return samePassword(password, verifier.masterPassword)
      ? { ok: true, identity: { kind: 'master' } }
      : { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD, reason: 'wrong master password' };
  }
  // The master's and workers' client ids carry sessions (a worker's queued
  // assignments): taking one over needs that identity's credential.
  const reservedId =
    clientId.startsWith(WORKER_CLIENT_PREFIX) || clientId.startsWith(MASTER_CLIENT_PREFIX);
  if (username === undefined || username === '' || username === OBSERVER_MQTT_USERNAME) {
    if (reservedId) {
      return {
        ok: false,
        returnCode: NOT_AUTHORIZED,
        reason: 'a reserved client id without its credential',
      };
    }
    return { ok: true, identity: { kind: 'observer' } };
  }
  if (!TOPIC_ID_PATTERN.test(username)) {
    return { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD, reason: 'unknown username' };
  }
  if (!password) {
    return { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD, reason: 'no worker credential' };
  }
  const check = verifier.checkCredential(password.toString('utf8'), username);
  if (!check.ok) {
    return {
      ok: false,
      returnCode: BAD_USERNAME_OR_PASSWORD,
      reason: `worker credential refused: ${check.reason}`,
    };
  }
  if (clientId !== workerClientId(username)) {
    return {
      ok: false,
      returnCode: NOT_AUTHORIZED,
      reason: `a worker must connect with client id ${workerClientId(username)}`,
    };
  }
  return { ok: true, identity: { kind: 'worker', workerId: username } };
}

/** May `identity` publish on `topic` (and retain it)? `undefined` = allowed, else why not. */
export function publishRefusal(
  identity: BrokerIdentity,
  topic: string,
  retain: boolean,
  topics: Topics,
): string | undefined {
  if (topic.startsWith('$')) return 'topics starting with $ are reserved';
  switch (identity.kind) {
    case 'master':
      return undefined;
    case 'observer':
      return 'an anonymous client may not publish';
    case 'worker': {
      const id = identity.workerId;
      if (topic === topics.status(id)) return undefined;
      if (retain) return 'a worker may retain only its own status';
      if (topic === topics.heartbeat(id) || topic === topics.log(id)) return undefined;
      return 'a worker may publish only its own status, heartbeat and log topics';
    }
    default: {
      const unreachable: never = identity;
      return unreachable;
    }
  }
}

/** The subscription filters an observer may use: `<prefix>/logs/#`, `/+`, or one source. */
function isLogFilter(filter: string, topics: Topics): boolean {
  const head = `${topics.prefix}/logs/`;
  if (!filter.startsWith(head)) return false;
  const rest = filter.slice(head.length);
  return rest === '#' || rest === '+' || TOPIC_ID_PATTERN.test(rest);
}

/** May `identity` subscribe to `filter`? */
export function maySubscribe(identity: BrokerIdentity, filter: string, topics: Topics): boolean {
  switch (identity.kind) {
    case 'master':
      return true;
    case 'worker':
      return (
        filter === topics.tasks(identity.workerId) || filter === topics.control(identity.workerId)
      );
    case 'observer':
      return isLogFilter(filter, topics);
    default: {
      const unreachable: never = identity;
      return unreachable;
    }
  }
}

/**
 * May a message on `topic` be delivered to `identity`? The second line of
 * defence behind maySubscribe: a worker's assignments (which may carry a
 * user's API key) and control messages reach only that worker.
 */
export function mayReceive(identity: BrokerIdentity, topic: string, topics: Topics): boolean {
  switch (identity.kind) {
    case 'master':
      return true;
    case 'worker':
      return (
        topic === topics.tasks(identity.workerId) || topic === topics.control(identity.workerId)
      );
    case 'observer':
      return topic.startsWith(`${topics.prefix}/logs/`);
    default: {
      const unreachable: never = identity;
      return unreachable;
    }
  }
}

/**
 * Bounds the broker's retained store: at most `max` retained topics. A new
 * retained topic past the bound is refused; updating or clearing (empty
 * payload) a kept one is always allowed.
 */
export class RetainedTopics {
  private readonly topics = new Set<string>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.topics.size;
  }

  /** True when a retained message may be kept on this exact topic. */
  has(topic: string): boolean {
    return this.topics.has(topic);
  }

  /** Records a retained publish; false when it would exceed the bound. */
  admit(topic: string, payloadBytes: number): boolean {
    if (payloadBytes === 0) {
      this.topics.delete(topic);
      return true;
    }
    if (this.topics.has(topic)) return true;
    if (this.topics.size >= this.max) return false;
    this.topics.add(topic);
    return true;
  }
}
