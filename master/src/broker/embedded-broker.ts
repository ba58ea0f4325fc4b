/**
 * The embedded MQTT broker (aedes) for single-machine mode, so
 * `mosquitto_sub -h localhost -t 'flota/v1/logs/#'` works without Mosquitto.
 *
 * Nothing on it acts without a credential: the master logs in with a password
 * made for this run, each worker with its own worker credential and client
 * id, and anyone else may only read log lines (broker-acl.ts has the rules).
 * Packets, retained messages and connections are bounded.
 */
import type { Server as HttpServer } from 'node:http';
import net from 'node:net';
import { type Duplex, Readable } from 'node:stream';
import tls from 'node:tls';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { type IClientOptions, MqttClient } from 'mqtt';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { Logger } from '../../../common/logger.ts';
import { MQTT_WS_PATH, type Topics, workerClientId } from '../../../proto/src/topics.ts';
import { listen, listenError } from '../listen.ts';
import type { TlsMaterial } from '../security/tls.ts';
import type { WorkerCredentials } from '../security/worker-credentials.ts';
import {
  type BrokerIdentity,
  decideConnect,
  MAX_CLIENT_ID_CHARS,
  mayReceive,
  maySubscribe,
  publishRefusal,
  RetainedTopics,
} from './broker-acl.ts';
import { duplexPair } from './local-link.ts';
import { limitPacketSize } from './packet-limit.ts';
import type { Publisher } from './publisher.ts';

export interface EmbeddedBroker extends Publisher {
  readonly port: number;
  /** What workers dial: `mqtt://` or, with TLS, `mqtts://`. */
  readonly url: string;
  /**
   * An MQTT client connected in-process (no socket): the master's own link.
   * It still logs in, so the master identity needs its password here too.
   */
  connectLocal(options: IClientOptions): MqttClient;
  /**
   * Also serves MQTT over WebSocket on `server` (the master's HTTP or HTTPS
   * port) at MQTT_WS_PATH: `ws://` or, over TLS, `wss://`, with the same
   * logins, rules and bounds as the TCP listener.
   */
  serveWebSocket(server: HttpServer): void;
  /**
   * Hears of every login the broker refuses (the audit trail). The broker
   * starts before the store does, so the listener comes later; refusals
   * before it are only logged.
   */
  onRefused(listener: (refusal: MqttRefusal) => void): void;
  close(): Promise<void>;
}

/** A refused MQTT login: from where, as whom, and why. */
export interface MqttRefusal {
  from?: string;
  clientId: string;
  username?: string;
  reason: string;
}

export interface EmbeddedBrokerOptions {
  port: number;
  host: string;
  topics: Topics;
  log: Logger;
  /** Checks worker logins; its 'revoked' event cuts that worker's connection. */
  credentials: WorkerCredentials;
  /** The master's own login (username `_master`, a password made for this run). */
  master: { username: string; password: string };
  /** With TLS material the broker listens for mqtts only. */
  tls?: TlsMaterial;
  /** MQTT_MAX_PACKET_BYTES: a larger packet closes the connection. */
  maxPacketBytes: number;
  /** MQTT_MAX_RETAINED: most retained topics kept. */
  maxRetained: number;
}

/** A client that connected but never sent CONNECT is dropped after this. */
const CONNECT_TIMEOUT_MS = 10_000;
/** A TLS client that never finishes its handshake is dropped after this. */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Most simultaneous connections: a fleet of ten thousand workers stays under
 * it (measured: `npm run bench -- --sim-workers-large 10000`), and so does
 * the master's own file limit on a usual host (each connection is a socket).
 */
const MAX_CONNECTIONS = 20_000;
/** Packets a client may send before its CONNECT is accepted (aedes queues them). */
const QUEUE_LIMIT = 64;

/**
 * A worker's assignments (which may carry a user's API key) and control
 * messages are forwarded only to that worker's own client, whatever a
 * subscriber's wildcard asks for: `mosquitto_sub -t 'flota/v1/#'` sees logs,
 * status and heartbeats, never someone's key.
 */
export function privateTopicFilter(topics: Topics) {
  return (clientId: string | undefined, topic: string): boolean => {
    const parsed = topics.parseWorkerTopic(topic);
    if (!parsed || (parsed.kind !== 'tasks' && parsed.kind !== 'control')) return true;
    return clientId === workerClientId(parsed.workerId);
  };
}

/**
 * True the first time a key is seen in each window: a revoked worker retries
 * its login every half second, and each refusal would otherwise be a warning
 * (and a line on the MQTT log topic).
 */
function firstInWindow(windowMs: number, maxKeys = 1_000) {
  const last = new Map<string, number>();
  return (key: string): boolean => {
    const now = Date.now();
    const at = last.get(key);
    if (at !== undefined && now - at < windowMs) return false;
    if (last.size >= maxKeys) last.clear();
    last.set(key, now);
    return true;
  };
}

/** The part of aedes' persistence a SUBSCRIBE asks for the retained messages it must send. */
interface RetainedStreams {
  createRetainedStreamCombi(patterns: string[]): Readable;
}

/**
 * aedes' in-memory persistence answers every SUBSCRIBE by testing each of its
 * filters against every retained topic: with one retained status per worker,
 * each worker subscribing to its own two topics scanned them all, and ten
 * thousand workers connecting cost the broker minutes of CPU. A filter
 * without wildcards can only match its own topic: when no retained message
 * was admitted there (`retained` sees every retained publish, the master's
 * and Last Wills included), it is left out of the scan, and a SUBSCRIBE of
 * such filters only scans nothing. Wildcard filters and topics that may hold
 * a message still go to aedes, so what is sent is unchanged.
 */
function skipRetainedScans(broker: Aedes, retained: RetainedTopics): void {
  const persistence = (broker as unknown as { persistence: RetainedStreams }).persistence;
  const scan = persistence.createRetainedStreamCombi.bind(persistence);
  persistence.createRetainedStreamCombi = (patterns) => {
    const needed = patterns.filter((p) => /[+#]/.test(p) || retained.has(p));
    return needed.length === 0 ? Readable.from([]) : scan(needed);
  };
}

/** The client's address: a TCP or TLS socket's peer; nothing for in-process or WebSocket streams. */
function remoteAddressOf(client: Client): string | undefined {
  const conn = (client as unknown as { conn?: { remoteAddress?: unknown } }).conn;
  return typeof conn?.remoteAddress === 'string' ? conn.remoteAddress : undefined;
}

function refusal(reason: string, returnCode: 4 | 5): AuthenticateError {
  return Object.assign(new Error(reason), { returnCode }) as AuthenticateError;
}

const describeIdentity = (identity: BrokerIdentity | undefined) =>
  identity?.kind === 'worker' ? `worker ${identity.workerId}` : (identity?.kind ?? 'unknown');

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const { topics, credentials } = options;
  const log = options.log.child({ component: 'broker' });
  const identities = new WeakMap<Client, BrokerIdentity>();
  const retained = new RetainedTopics(options.maxRetained);
  const isPrivateFor = privateTopicFilter(topics);
  const warnNow = firstInWindow(60_000);
  let refusedListener: ((refusal: MqttRefusal) => void) | undefined;

  const broker = await Aedes.createBroker({
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxClientsIdLength: MAX_CLIENT_ID_CHARS,
    queueLimit: QUEUE_LIMIT,
    authenticate(client, username, password, done) {
      const decision = decideConnect(
        { clientId: client.id, username, password },
        {
          masterPassword: options.master.password,
          checkCredential: (token, workerId) => credentials.check(token, workerId),
        },
      );
      if (decision.ok) {
        identities.set(client, decision.identity);
        return done(null, true);
      }
      const who = {
        clientId: client.id.slice(0, MAX_CLIENT_ID_CHARS),
        username: username?.slice(0, 140),
        reason: decision.reason,
      };
      const level = warnNow(`${who.clientId}|${who.username}|${who.reason}`) ? 'warn' : 'debug';
      log[level](who, 'mqtt connection refused');
      refusedListener?.({ ...who, from: remoteAddressOf(client) });
      done(refusal(decision.reason, decision.returnCode), false);
    },
    authorizePublish(client, packet, done) {
      const payloadBytes = Buffer.byteLength(packet.payload);
      // No client: aedes replaying a will stored by a broker that is gone. Only a status may be one.
      const identity = client ? identities.get(client) : undefined;
      let reason: string | undefined;
      if (identity) reason = publishRefusal(identity, packet.topic, packet.retain, topics);
      else if (client || topics.parseWorkerTopic(packet.topic)?.kind !== 'status')
        reason = 'no identity';
      if (reason === undefined && packet.retain && !retained.admit(packet.topic, payloadBytes)) {
        if (client?.closed) {
          // A Last Will (the client is gone): the master must still learn the
          // worker is offline, so it goes out, just not kept.
          log.warn(
            { clientId: client.id, topic: packet.topic },
            'retained store full: Last Will sent unretained',
          );
          packet.retain = false;
          return done(null);
        }
        reason = `retained store full (MQTT_MAX_RETAINED=${options.maxRetained})`;
      }
      if (reason === undefined) return done(null);
      // aedes then closes the connection: MQTT 3.1.1 has no way to refuse one publish.
      log.warn(
        {
          clientId: client?.id,
          who: describeIdentity(identity),
          topic: packet.topic.slice(0, 300),
          reason,
        },
        'mqtt publish refused',
      );
      done(new Error(`publish refused: ${reason}`));
    },
    authorizeSubscribe(client, subscription, done) {
      const identity = identities.get(client);
      if (identity && maySubscribe(identity, subscription.topic, topics))
        return done(null, subscription);
      log.warn(
        {
          clientId: client.id,
          who: describeIdentity(identity),
          filter: subscription.topic.slice(0, 300),
        },
        'mqtt subscription refused',
      );
      // A negative SUBACK (0x80) for this filter; the connection stays up.
      done(null, null);
    },
    authorizeForward(client, packet) {
      const identity = identities.get(client);
      if (!identity || !mayReceive(identity, packet.topic, topics)) return null;
      return isPrivateFor(client.id, packet.topic) ? packet : null;
    },
  });
  skipRetainedScans(broker, retained);
  // One client's protocol error must never take the broker down.
  broker.on('clientError', (client, err) =>
    log.debug({ clientId: client?.id, err: err.message }, 'client error'),
  );
  broker.on('connectionError', (_client, err) =>
    log.debug({ err: err.message }, 'connection error'),
  );

  // A revoked worker loses its connection now, not at its next reconnect: its
  // Last Will marks it offline and the master requeues its tasks.
  const clients = (broker as unknown as { clients: Record<string, Client | undefined> }).clients;
  const onRevoked = (workerId: string) => {
    const client = clients[workerClientId(workerId)];
    if (!client) return;
    log.warn({ workerId }, 'worker credential revoked: closing its MQTT connection');
    client.close();
  };
  credentials.on('revoked', onRevoked);

  const accept = (conn: Duplex) => {
    broker.handle(conn);
    limitPacketSize(conn, options.maxPacketBytes, (result) =>
      log.warn(
        { bytes: result.bytes, limit: options.maxPacketBytes, reason: result.reason },
        result.reason === 'too_large'
          ? 'mqtt connection closed: packet over MQTT_MAX_PACKET_BYTES'
          : 'mqtt connection closed: malformed packet length',
      ),
    );
  };
  // Nagle would add ~40 ms to every small request/response.
  const server = options.tls
    ? tls.createServer(
        {
          noDelay: true,
          cert: options.tls.cert,
          key: options.tls.key,
          ca: options.tls.ca,
          requestCert: options.tls.requireClientCert,
          rejectUnauthorized: options.tls.requireClientCert,
          handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
        },
        accept,
      )
    : net.createServer({ noDelay: true }, accept);
  server.maxConnections = MAX_CONNECTIONS;
  // A failed TLS handshake (no or wrong client certificate) is that client's problem.
  server.on('tlsClientError', (err: Error) =>
    log.debug({ err: err.message }, 'mqtts handshake failed'),
  );
  try {
    await listen(server, options.port, options.host);
  } catch (err) {
    credentials.off('revoked', onRevoked);
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw await listenError(
      { name: 'MQTT', variable: 'MQTT_PORT', host: options.host, port: options.port },
      err,
    );
  }
  // From here on a server error is a runtime fault, not a start-up one.
  server.on('error', (err) => log.error({ err }, 'broker server error'));
  const address = server.address() as net.AddressInfo;
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  const scheme = options.tls ? 'mqtts' : 'mqtt';
  log.info(
    { port: address.port, tls: options.tls !== undefined },
    'embedded MQTT broker listening',
  );
  let closing: Promise<void> | undefined;
  let webSockets: WebSocketServer | undefined;
  return {
    port: address.port,
    url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    publish(topic, payload, qos) {
      return new Promise<void>((resolve, reject) => {
        const packet = {
          cmd: 'publish' as const,
          topic,
          payload: Buffer.from(payload),
          qos,
          retain: false,
          dup: false,
        };
        broker.publish(packet, (err) => (err ? reject(err) : resolve()));
      });
    },
    connectLocal(clientOptions) {
      // A fresh pair on every (re)connect, as a socket would be.
      const streamBuilder = () => {
        const [clientEnd, brokerEnd] = duplexPair();
        broker.handle(brokerEnd);
        return clientEnd;
      };
      return new MqttClient(streamBuilder as never, {
        reconnectPeriod: 500,
        connectTimeout: 5_000,
        ...clientOptions,
      });
    },
    onRefused(listener) {
      refusedListener = listener;
    },
    serveWebSocket(httpServer) {
      webSockets = new WebSocketServer({
        noServer: true,
        maxPayload: options.maxPacketBytes,
        // mqtt.js and browsers ask for the MQTT subprotocol.
        handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
      });
      const wss = webSockets;
      httpServer.on('upgrade', (req, socket, head) => {
        if (new URL(req.url ?? '/', 'http://x').pathname !== MQTT_WS_PATH) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          const stream = createWebSocketStream(ws);
          stream.on('error', (err) => log.debug({ err: err.message }, 'mqtt websocket error'));
          accept(stream);
        });
      });
      log.info({ path: MQTT_WS_PATH }, 'embedded MQTT broker serving WebSocket');
    },
    close() {
      closing ??= (async () => {
        credentials.off('revoked', onRevoked);
        for (const ws of webSockets?.clients ?? []) ws.terminate();
        webSockets?.close();
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}
