// A worker that breaks the protocol on purpose, for the conformance kit's
// own test. It logs in and publishes a valid online record, then misbehaves
// as FAULT says:
//   no-heartbeat         never heartbeats, never runs anything;
//   chunks-out-of-order  heartbeats and answers like the echo provider, but
//                        sends each answer's chunk 1 before chunk 0;
//   no-resend            heartbeats and answers like the echo provider, but
//                        sends each result once, whatever the master answers
//                        (store_unavailable) and even when the stream broke
//                        before it answered.
// In no mode does it act on a control message.
// Run as `node tests/helpers/faulty-worker.mjs` with the environment
// `flota conformance` gives a worker (plus FAULT).
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import mqtt from 'mqtt';

const env = process.env;
const fault = env.FAULT ?? 'no-heartbeat';
const id = env.WORKER_ID;
const prefix = 'flota/v1';
const topic = (kind) => `${prefix}/workers/${id}/${kind}`;
const slots = Number(env.SLOTS ?? 2);
const heartbeatMs = Number(env.HEARTBEAT_MS ?? 1000);
const chunkSize = Number(env.ECHO_CHUNK_SIZE ?? 16);
const startedAt = Date.now();
const running = new Map();

const client = mqtt.connect(env.MQTT_URL, {
  clientId: `flota-worker-${id}`,
  username: id,
  password: env.WORKER_TOKEN,
  clean: false,
  reconnectPeriod: 500,
  will: {
    topic: topic('status'),
    payload: JSON.stringify({ state: 'offline', id, reason: 'lost' }),
    qos: 1,
    retain: true,
  },
});
client.on('error', () => undefined);
client.on('connect', () => {
  const online = {
    state: 'online',
    id,
    kind: 'cpu',
    models: (env.MODELS ?? 'echo').split(','),
    providers: ['echo'],
    slots,
    labels: {},
    weight: 1,
    version: 'faulty',
    host: os.hostname(),
    heartbeatMs,
    startedAt,
  };
  client.publish(topic('status'), JSON.stringify(online), { qos: 1, retain: true });
  client.subscribe([topic('tasks'), topic('control')], { qos: 1 });
});

if (fault !== 'no-heartbeat') {
  setInterval(() => {
    const heartbeat = {
      id,
      ts: Date.now(),
      cpuPct: 0,
      mem: { usedPct: 0, totalMb: 0, rssMb: 0 },
      gpus: [],
      freeSlots: Math.max(0, slots - running.size),
      active: [...running.values()],
      draining: false,
    };
    client.publish(topic('heartbeat'), JSON.stringify(heartbeat), { qos: 0 });
  }, heartbeatMs);

  const protoPath = fileURLToPath(new URL('../../proto/flota/v1/master.proto', import.meta.url));
  const definition = protoLoader.loadSync(protoPath, {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const { flota } = grpc.loadPackageDefinition(definition);
  const master = new flota.v1.Master(env.MASTER_GRPC, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${env.WORKER_TOKEN}`);
  metadata.set('x-flota-worker-id', id);
  const stream = master.Connect(metadata);
  stream.on('data', () => undefined);
  stream.on('error', () => undefined);

  client.on('message', (at, payload) => {
    if (at !== topic('tasks')) return;
    let a;
    try {
      a = JSON.parse(payload.toString());
    } catch {
      return;
    }
    if (typeof a?.taskId !== 'string' || typeof a.prompt !== 'string') return;
    const base = { taskId: a.taskId, attempt: a.attempt, lease: a.lease };
    running.set(`${a.taskId}#${a.attempt}`, base);
    const text = `echo: ${a.prompt}`;
    const pieces = [];
    for (let i = 0; i < text.length; i += chunkSize) pieces.push(text.slice(i, i + chunkSize));
    const order = pieces.map((_, i) => i);
    if (fault === 'chunks-out-of-order' && order.length > 1) {
      [order[0], order[1]] = [order[1], order[0]];
    }
    for (const seq of order) {
      stream.write({ reports: [{ chunk: { ...base, seq, text: pieces[seq] } }] });
    }
    const now = Date.now();
    const result = {
      ...base,
      workerId: id,
      text,
      model: a.model,
      usage: { inputTokens: 1, outputTokens: pieces.length },
      startedAt: now,
      finishedAt: now,
      processingMs: 0,
    };
    setTimeout(() => {
      running.delete(`${a.taskId}#${a.attempt}`);
      stream.write({ reports: [{ result }] });
    }, 100);
  });
}

process.on('SIGTERM', () => {
  client.publish(topic('status'), JSON.stringify({ state: 'offline', id, reason: 'shutdown' }), {
    qos: 1,
    retain: true,
  });
  client.end(false, () => process.exit(0));
});
