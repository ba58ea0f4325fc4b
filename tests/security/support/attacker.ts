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
} from '../../../proto/src/grpc.ts';

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

export interface GrpcOutcome {
  ack?: TaskAck__Output;
  code?: grpc.status;
  details?: string;
}

/** ReportResult with the given worker id and bearer (either may be omitted). */
export function reportResult(
  client: MasterClient,
  result: Record<string, unknown>,
  auth: { workerId?: string; bearer?: string },
): Promise<GrpcOutcome> {
  const metadata = new grpc.Metadata();
  if (auth.workerId) metadata.set(METADATA_WORKER_ID, auth.workerId);
  if (auth.bearer) metadata.set(METADATA_AUTHORIZATION, `Bearer ${auth.bearer}`);
  return new Promise((resolve) => {
    client.ReportResult(
      result,
      metadata,
      { deadline: Date.now() + 5_000 },
      (err: grpc.ServiceError | null, ack?: TaskAck__Output) =>
        resolve(err ? { code: err.code, details: err.details } : { ack }),
    );
  });
}

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
