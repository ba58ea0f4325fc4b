/**
 * What an attacker on the network has: plain MQTT, gRPC and HTTP clients and
 * no credential (or a credential of its own, for a worker gone rogue). Every
 * helper reports what the server did (refused, granted, delivered) instead
 * of throwing, so a test can assert the refusal itself.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import {
  loadMasterPackage,
  type MasterClient,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
  type TaskAck__Output,
  type TaskResult,
  type WorkerReport,
} from '../../../proto/src/grpc.ts';
import { answerTo, type ConnectStream, openConnect } from '../../helpers/report-stream.ts';

export interface MqttAttempt {
  client?: MqttClient;
  /** Why the broker refused the connection (CONNACK code or socket error). */
  refused?: string;
}

/** Connects once (no reconnects); resolves with the client or the refusal. */
export async function mqttConnect(url: string, options: IClientOptions = {}): Promise<MqttAttempt> {
  const client = mqtt.connect(url, {
    reconnectPeriod: 0,
    connectTimeout: 3_000,
    clientId: `attacker-${randomBytes(4).toString('hex')}`,
    ...options,
  });
  return new Promise((resolve) => {
    client.once('connect', () => resolve({ client }));
    client.once('error', (err) => {
      client.end(true);
      resolve({ refused: err.message || String((err as { code?: unknown }).code) });
    });
    client.once('close', () => resolve({ refused: 'connection closed' }));
  });
}

/** The QoS the broker granted for `topic`, or 128 when it refused the subscription. */
export async function subscribeGranted(client: MqttClient, topic: string): Promise<number> {
  try {
    const granted = await client.subscribeAsync(topic, { qos: 1 });
    return granted[0]?.qos ?? 128;
  } catch {
    return 128;
  }
}

/** Collects every message `client` receives on topics matching `filter` (a plain prefix test). */
export function collect(client: MqttClient, prefix = ''): { topic: string; payload: Buffer }[] {
  const seen: { topic: string; payload: Buffer }[] = [];
  client.on('message', (topic, payload) => {
    if (topic.startsWith(prefix)) seen.push({ topic, payload });
  });
  return seen;
}

/** Publishes at QoS 1 and reports whether the broker acknowledged it (it may still drop it). */
export async function publishAcked(
  client: MqttClient,
  topic: string,
  payload: string | Buffer,
  options: { retain?: boolean } = {},
): Promise<boolean> {
  if (!client.connected) return false;
  let timer: NodeJS.Timeout | undefined;
  let onClose = () => {};
  try {
    await Promise.race([
      client.publishAsync(topic, payload, { qos: 1, retain: options.retain ?? false }),
      // A broker that refuses a publish may close the connection instead of answering.
      new Promise((_, reject) => {
        onClose = () => reject(new Error('connection closed'));
        client.once('close', onClose);
        timer = setTimeout(() => reject(new Error('no puback')), 3_000);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    client.off('close', onClose);
  }
}

export async function closeQuietly(...clients: (MqttClient | undefined)[]): Promise<void> {
  await Promise.all(clients.map((c) => c?.endAsync(true).catch(() => undefined)));
}

/** A gRPC client for the master's service with whatever metadata the attacker chooses. */
export function grpcClient(address: string): MasterClient {
  const { proto } = loadMasterPackage();
  return new proto.flota.v1.Master(address, grpc.credentials.createInsecure());
}

/** What a worker's call carries, as the attacker chooses: a worker id and a bearer, either may be omitted. */
export interface GrpcAuth {
  workerId?: string;
  bearer?: string;
}

export function workerMetadata(auth: GrpcAuth): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (auth.workerId) metadata.set(METADATA_WORKER_ID, auth.workerId);
  if (auth.bearer) metadata.set(METADATA_AUTHORIZATION, `Bearer ${auth.bearer}`);
  return metadata;
}

export interface GrpcOutcome {
  ack?: TaskAck__Output;
  code?: grpc.status;
  details?: string;
}

/** How long a helper below waits for the master's answer before it gives up on the call. */
const ANSWER_TIMEOUT_MS = 5_000;

/**
 * Opens a Connect stream with `auth` that is cancelled when it is still open
 * after `timeoutMs` (`ended` then settles with CANCELLED and `timedOut()` is
 * true), so a master that never answers fails the test instead of hanging it.
 */
export function connectAs(
  client: MasterClient,
  auth: GrpcAuth,
  timeoutMs = ANSWER_TIMEOUT_MS,
): ConnectStream & { timedOut(): boolean } {
  const stream = openConnect(client, workerMetadata(auth));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stream.call.cancel();
  }, timeoutMs);
  void stream.ended.then(() => clearTimeout(timer));
  return Object.assign(stream, { timedOut: () => timedOut });
}

/**
 * Sends `reports` in one message on a fresh Connect stream with `auth`, and
 * reports the master's answer to the last result among them (or its first
 * answer when there is none), or the status the call ended with; then closes
 * the stream.
 */
export async function reportAs(
  client: MasterClient,
  reports: WorkerReport[],
  auth: GrpcAuth,
): Promise<GrpcOutcome> {
  const stream = connectAs(client, auth);
  stream.write(reports);
  const last = [...reports].reverse().find((r) => r.result)?.result ?? undefined;
  const outcome = await (last ? answerTo(stream, last) : stream.answer());
  stream.end();
  if (outcome.reply) return { ack: outcome.reply };
  if (stream.timedOut()) {
    return {
      code: grpc.status.DEADLINE_EXCEEDED,
      details: `no answer within ${ANSWER_TIMEOUT_MS} ms`,
    };
  }
  return { code: outcome.error?.code, details: outcome.error?.details };
}

/** One result on a fresh Connect stream with the given worker id and bearer (either may be omitted). */
export const reportResult = (
  client: MasterClient,
  result: Record<string, unknown>,
  auth: GrpcAuth,
): Promise<GrpcOutcome> => reportAs(client, [{ result: result as TaskResult }], auth);

/** Resident memory of a process in MiB (Linux /proc). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

/**
 * Local addresses of sockets listening on `port` (IPv4 and IPv6), read from
 * /proc/net: what a scan from the network would find open.
 */
export async function listenAddresses(port: number): Promise<string[]> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const found: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const [local, , state] = [cols[1], cols[2], cols[3]];
      if (!local || state !== '0A') continue; // 0A = LISTEN
      const [addr, p] = local.split(':');
      if (p !== hexPort || !addr) continue;
      found.push(addr.length === 8 ? ipv4FromHex(addr) : ipv6FromHex(addr));
    }
  }
  return found;
}

function ipv4FromHex(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  return [...bytes].reverse().join('.');
}

function ipv6FromHex(hex: string): string {
  const words: string[] = [];
  for (let i = 0; i < 32; i += 8) {
    const word = Buffer.from(hex.slice(i, i + 8), 'hex')
      .reverse()
      .toString('hex');
    words.push(word.slice(0, 4), word.slice(4, 8));
  }
  const text = words.join(':');
  if (text === '0000:0000:0000:0000:0000:0000:0000:0000') return '::';
  if (text === '0000:0000:0000:0000:0000:0000:0000:0001') return '::1';
  if (text.startsWith('0000:0000:0000:0000:0000:ffff:')) {
    const v4 = Buffer.from(hex.slice(24), 'hex').reverse();
    return `::ffff:${[...v4].join('.')}`;
  }
  return text;
}
