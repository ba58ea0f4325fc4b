/**
 * Simulated workers: many MQTT clients in this one process, each behaving on
 * the broker like a real worker (its client id, a persistent session, a Last
 * Will, the retained online record, its task and control subscriptions, a
 * heartbeat every `heartbeatMs`), but serving a model nobody submits, so the
 * real echo workers keep all the tasks. Each logs in as a worker does: its id
 * as username, its own credential as password. Connects them gradually.
 *
 * Run as a child of the benchmark (see swarm.ts): settings on the command
 * line, the sims and their credentials, progress and stats over the IPC
 * channel; exits when told to stop or when the parent goes away.
 */
import { hostname } from 'node:os';
import { Command } from 'commander';
import type { MqttClient } from 'mqtt';
import { connectMqtt } from '../common/mqtt.ts';
import {
  type Heartbeat,
  heartbeatSchema,
  type WorkerOffline,
  type WorkerOnline,
  workerOnlineSchema,
} from '../proto/src/schemas/worker.ts';
import { createTopics, workerClientId } from '../proto/src/topics.ts';
import { type SwarmMessage, swarmCommandSchema } from './swarm.ts';

const TICK_MS = 20;

const opts = new Command()
  .requiredOption('--url <url>', 'broker')
  .requiredOption('--rate <n>', 'connections per second', Number)
  .option('--prefix <prefix>', 'topic prefix', 'flota/v1')
  .option('--model <model>', 'the model they claim to serve', 'sim-model')
  .option('--heartbeat-ms <ms>', 'heartbeat period', Number, 1000)
  .parse()
  .opts<{
    url: string;
    rate: number;
    prefix: string;
    model: string;
    heartbeatMs: number;
  }>();

const topics = createTopics(opts.prefix);
const host = hostname().slice(0, 256);
const startedAt = Date.now();
const send = (message: SwarmMessage) => process.send?.(message);

interface Sim {
  id: string;
  client: MqttClient;
  online: boolean;
}
const sims: Sim[] = [];
const stats = { connected: 0, heartbeats: 0, reconnects: 0, errors: 0 };

const onlineRecord = (id: string): WorkerOnline => ({
  state: 'online',
  id,
  kind: 'cpu',
  models: [opts.model],
  providers: ['echo'],
  slots: 1,
  labels: { sim: 'true' },
  weight: 1,
  version: 'sim',
  host,
  heartbeatMs: opts.heartbeatMs,
  startedAt,
});
const heartbeat = (id: string): Heartbeat => ({
  id,
  ts: Date.now(),
  cpuPct: 1,
  mem: { usedPct: 10, totalMb: 1024, rssMb: 50 },
  gpus: [],
  freeSlots: 1,
  active: [],
  draining: false,
});
// Fail at once, not with 1,000 silently dropped records, if the wire contract moved.
workerOnlineSchema.parse(onlineRecord('sim-check'));
heartbeatSchema.parse(heartbeat('sim-check'));

function startSim({ id, credential }: { id: string; credential: string }): void {
  const status = topics.status(id);
  const lastWill: WorkerOffline = { state: 'offline', id, reason: 'lost' };
  const client = connectMqtt(opts.url, {
    clientId: workerClientId(id),
    username: id,
    password: credential,
    clean: false,
    reconnectPeriod: 1_000,
    will: { topic: status, payload: Buffer.from(JSON.stringify(lastWill)), qos: 1, retain: true },
  });
  const sim: Sim = { id, client, online: false };
  sims.push(sim);
  client.on('connect', () => {
    if (sim.online) stats.reconnects++;
    client.publish(status, JSON.stringify(onlineRecord(id)), { qos: 1, retain: true });
    client.subscribe({ [topics.tasks(id)]: { qos: 1 }, [topics.control(id)]: { qos: 1 } }, () => {
      if (!sim.online) stats.connected++;
      sim.online = true;
    });
  });
  client.on('error', () => {
    stats.errors++;
  });
}

// Connect gradually, and beat: each sim in its own TICK_MS slot of the period.
let timer: NodeJS.Timeout | undefined;
function run(roster: Array<{ id: string; credential: string }>): void {
  let started = 0;
  let tick = 0;
  const connectStart = performance.now();
  const ticksPerBeat = Math.max(1, Math.round(opts.heartbeatMs / TICK_MS));
  timer = setInterval(() => {
    const due = Math.min(
      roster.length,
      Math.floor(((performance.now() - connectStart) / 1000) * opts.rate) + 1,
    );
    while (started < due) startSim(roster[started++] as { id: string; credential: string });
    const slot = tick++ % ticksPerBeat;
    for (let i = slot; i < sims.length; i += ticksPerBeat) {
      const sim = sims[i] as Sim;
      if (!sim.online || !sim.client.connected) continue;
      sim.client.publish(topics.heartbeat(sim.id), JSON.stringify(heartbeat(sim.id)), { qos: 0 });
      stats.heartbeats++;
    }
  }, TICK_MS);
}
// Often enough that a few seconds' count of heartbeats sent is right to a few percent.
const reporter = setInterval(() => send({ type: 'stats', ...stats }), 50);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  clearInterval(reporter);
  await Promise.all(
    sims.map(async ({ id, client }) => {
      const offline: WorkerOffline = { state: 'offline', id, reason: 'shutdown' };
      if (client.connected) {
        await client
          .publishAsync(topics.status(id), JSON.stringify(offline), { qos: 1, retain: true })
          .catch(() => undefined);
      }
      await client.endAsync(true).catch(() => undefined);
    }),
  );
  send({ type: 'stopped', ...stats });
  process.exit(0);
}

process.on('message', (raw: unknown) => {
  const command = swarmCommandSchema.safeParse(raw);
  if (!command.success) return;
  if (command.data.type === 'stop') void stop();
  else if (!timer && !stopping) run(command.data.sims);
});
process.on('disconnect', () => void stop());
// Ctrl-C reaches the whole foreground group; the parent decides when this stops.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => void stop());
