/**
 * The scale scenario: many simulated workers heartbeating while tasks flow
 * to the real echo workers. Reports the master's resident memory (sampled
 * from /proc), the throughput next to the run without them, what the sims
 * cost the master while nothing else happens, whether it keeps up with their
 * heartbeats, and what its worker listings cost with all of them online.
 */
import { waitFor } from '../tests/helpers/wait-for.ts';
import type { Cleanup } from './cleanup.ts';
import { type CpuGroups, perTaskMs, startCpuMeter } from './cpu.ts';
import { round2, runThroughput, type ThroughputResult } from './drive.ts';
import {
  type HeartbeatWindow,
  heartbeatWindow,
  keptUp,
  readHeartbeatCounters,
} from './heartbeat-lag.ts';
import type { LoadClient } from './load.ts';
import { rssMb } from './processes.ts';
import type { Progress } from './progress.ts';
import { simIds, startSwarm } from './swarm.ts';
import { masterHeapMb, workerCredentials, workerStates } from './system.ts';

export interface ScaleOptions {
  /** Names the progress bars (`1000 sims`, `10000 sims`). */
  label?: string;
  baseUrl: string;
  mqttUrl: string;
  masterPid: number;
  /** The components to meter; the sims are added. */
  cpuGroups: CpuGroups;
  workers: number;
  connectPerSec: number;
  heartbeatMs: number;
  /** How long tasks flow once every sim is online (or until `maxTasks` finished). */
  seconds: number;
  maxTasks: number;
  inflight: number;
  stallMs: number;
  /** Seconds of no tasks, before and after the sims connect, that price their heartbeats. */
  idleSeconds: number;
}

/** What the sims cost the master with no task flowing: CPU next to the same idle time without them. */
export interface IdleCost {
  seconds: number;
  /** Master CPU ms per second, idle, before the sims connected… */
  masterCpuMsPerSecBefore: number;
  /** …and with every sim online and heartbeating. */
  masterCpuMsPerSecWithSims: number;
  /** The difference per heartbeat applied meanwhile, µs: what one heartbeat costs the master. */
  masterCpuUsPerHeartbeat: number;
  /** The sims' own CPU ms per second (all their processes), for scale. */
  simsCpuMsPerSec: number;
  heartbeats: HeartbeatWindow;
}

/** One GET with every sim online: how long it took and how big it was. */
export interface ListingCost {
  ms: number;
  kb: number;
}

export interface ScaleResult {
  workers: number;
  /** Simulated workers the master listed online when the flow ended. */
  workersOnlineAtEnd: number;
  /** Peak master RSS while the sims were up. */
  masterRssMb: number;
  masterRssBeforeMb: number;
  /** The master's V8 heap in use before the sims connected, and after tasks flowed with them. */
  masterHeapBeforeMb?: number;
  masterHeapWithSimsMb?: number;
  connectSeconds: number;
  flowSeconds: number;
  flowTasks: number;
  /** CPU ms per task of each component while tasks flowed with the sims up… */
  cpuMsPerTask: Record<string, number>;
  /** …and in the baseline flow just before. */
  baselineCpuMsPerTask: Record<string, number>;
  /** Tasks flowing the same way for the same time just before the sims connected. */
  baselineTasksPerSec: number;
  throughputTasksPerSec: number;
  /** Throughput lost next to that baseline (negative: it went up; the machine is noisy). */
  throughputDropPct: number;
  heartbeatsSent: number;
  simReconnects: number;
  /** Processes the sims ran in. */
  simProcesses?: number;
  idle?: IdleCost;
  /** Heartbeats while tasks flowed with the sims up. */
  heartbeats?: HeartbeatWindow;
  /** Applied about all that were sent, 99 % within one heartbeat period (idle and flowing). */
  keptUp?: boolean;
  /** `GET /api/workers` and `GET /metrics` with every sim online. */
  listing?: { workers: ListingCost; metrics: ListingCost };
}

/** Workers online, from `GET /api/metrics` (a count, where `GET /api/workers` lists every one). */
async function onlineCount(baseUrl: string): Promise<number> {
  const res = await fetch(`${baseUrl}/api/metrics`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { workers?: { online?: unknown } };
  return typeof body.workers?.online === 'number' ? body.workers.online : 0;
}

async function onlineSims(baseUrl: string): Promise<number> {
  let online = 0;
  for (const [id, state] of await workerStates(baseUrl)) {
    if (id.startsWith('sim-') && state === 'online') online++;
  }
  return online;
}

/** Tasks flowing for `opts.seconds` with `opts.inflight` outstanding. */
function flowFor(
  client: LoadClient,
  opts: ScaleOptions,
  onSecond: (elapsedSec: number, done: number) => void,
): Promise<ThroughputResult> {
  const started = performance.now();
  return runThroughput(client, {
    tasks: opts.maxTasks,
    maxSeconds: opts.seconds,
    inflight: opts.inflight,
    label: 'flow',
    stallMs: opts.stallMs,
    onProgress: (done) => onSecond(Math.floor((performance.now() - started) / 1000), done),
  });
}

async function timedGet(url: string): Promise<ListingCost> {
  const started = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  const body = await res.arrayBuffer();
  return { ms: round2(performance.now() - started), kb: round2(body.byteLength / 1024) };
}

/** Master CPU over `seconds` of no tasks: ms per second, and the heartbeats applied meanwhile. */
async function idleWindow(
  opts: ScaleOptions,
  sims: number[],
  sent: () => number,
): Promise<{ masterMsPerSec: number; simsMsPerSec: number; heartbeats: HeartbeatWindow }> {
  const counters = await readHeartbeatCounters(opts.baseUrl);
  const sentBefore = sent();
  const cpu = await startCpuMeter({ master: [opts.masterPid], sims });
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, opts.idleSeconds * 1000));
  const used = await cpu();
  const seconds = (performance.now() - started) / 1000;
  const after = await readHeartbeatCounters(opts.baseUrl);
  return {
    masterMsPerSec: round2(((used.master ?? 0) * 1000) / seconds),
    simsMsPerSec: round2(((used.sims ?? 0) * 1000) / seconds),
    heartbeats: heartbeatWindow(counters, after, sent() - sentBefore, seconds),
  };
}

/** Samples the master's RSS until stopped; returns the peak. */
function sampleRss(pid: number): { peak: () => number; stop: () => void } {
  let peak = 0;
  const timer = setInterval(async () => {
    const mb = await rssMb(pid);
    if (mb !== undefined) peak = Math.max(peak, mb);
  }, 200);
  return { peak: () => peak, stop: () => clearInterval(timer) };
}

export async function runScale(
  cleanup: Cleanup,
  client: LoadClient,
  progress: Progress,
  opts: ScaleOptions,
): Promise<ScaleResult> {
  // Each sim logs in with its own credential, as a worker does; issued before anything is measured.
  const credentials = await workerCredentials({ baseUrl: opts.baseUrl }, simIds(opts.workers));
  const label = opts.label ?? `${opts.workers} sims`;
  const baseBar = progress.bar(`tasks flowing, no sims (s)`, Math.ceil(opts.seconds));
  const baseCpu = await startCpuMeter(opts.cpuGroups);
  const baseline = await flowFor(client, opts, (s, done) => baseBar.update(s, `${done} tasks`));
  const baselineCpuMsPerTask = perTaskMs(await baseCpu(), baseline.tasks);
  baseBar.finish(`${Math.round(baseline.tasksPerSec)} tasks/s`);
  const before = (await rssMb(opts.masterPid)) ?? 0;
  const heapBefore = await masterHeapMb(opts.baseUrl);
  const idleBefore = opts.idleSeconds > 0 ? await idleWindow(opts, [], () => 0) : undefined;
  // No sim is online before they connect: the previous run's said goodbye.
  const othersOnline = (await onlineCount(opts.baseUrl)) - (await onlineSims(opts.baseUrl));
  const rss = sampleRss(opts.masterPid);
  const swarm = startSwarm(cleanup, {
    mqttUrl: opts.mqttUrl,
    credentials,
    connectPerSec: opts.connectPerSec,
    heartbeatMs: opts.heartbeatMs,
    model: 'sim-model',
  });
  try {
    const connectStart = performance.now();
    const bar = progress.bar(`${label}: online`, opts.workers);
    let online = 0;
    try {
      await waitFor(
        async () => {
          online = (await onlineCount(opts.baseUrl)) - othersOnline;
          bar.update(online, `${swarm.stats().connected} connected`);
          return online >= opts.workers;
        },
        {
          timeoutMs: 30_000 + (opts.workers / opts.connectPerSec) * 2_000,
          intervalMs: 250,
          what: `${opts.workers} simulated workers listed online`,
        },
      );
      bar.finish();
    } catch (err) {
      // Measured all the same: a master that loses workers on the way is a finding, not a crash.
      const s = swarm.stats();
      const heard = await readHeartbeatCounters(opts.baseUrl).catch(() => undefined);
      bar.finish(
        `only ${online}/${opts.workers} online (${s.connected} connected, ${s.reconnects} reconnects, ${s.errors} errors; heartbeats received ${heard?.received}, applied ${heard?.applied}): ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const connectSeconds = (performance.now() - connectStart) / 1000;
    const listing = {
      workers: await timedGet(`${opts.baseUrl}/api/workers`),
      metrics: await timedGet(`${opts.baseUrl}/metrics`),
    };
    const sent = () => swarm.stats().heartbeats;
    let idle: IdleCost | undefined;
    if (idleBefore) {
      const idleBar = progress.bar(`${label}: idle, heartbeating (s)`, 1);
      const withSims = await idleWindow(opts, swarm.pids, sent);
      const extraMs = (withSims.masterMsPerSec - idleBefore.masterMsPerSec) * opts.idleSeconds;
      idle = {
        seconds: opts.idleSeconds,
        masterCpuMsPerSecBefore: idleBefore.masterMsPerSec,
        masterCpuMsPerSecWithSims: withSims.masterMsPerSec,
        masterCpuUsPerHeartbeat: round2(
          (extraMs * 1000) / Math.max(1, withSims.heartbeats.applied),
        ),
        simsCpuMsPerSec: withSims.simsMsPerSec,
        heartbeats: withSims.heartbeats,
      };
      idleBar.finish(
        `master ${withSims.masterMsPerSec} ms/s (${idleBefore.masterMsPerSec} without sims), lag p99 ≤ ${withSims.heartbeats.lagP99Ms} ms`,
      );
    }

    const flowBar = progress.bar(`${label}: tasks flowing (s)`, Math.ceil(opts.seconds));
    const cpuUsed = await startCpuMeter({ ...opts.cpuGroups, sims: swarm.pids });
    const countersBefore = await readHeartbeatCounters(opts.baseUrl);
    const sentBefore = sent();
    const flow = await flowFor(client, opts, (s, done) => flowBar.update(s, `${done} tasks`));
    const heartbeats = heartbeatWindow(
      countersBefore,
      await readHeartbeatCounters(opts.baseUrl),
      sent() - sentBefore,
      flow.seconds,
    );
    flowBar.finish(`${Math.round(flow.tasksPerSec)} tasks/s over ${flow.seconds.toFixed(1)} s`);

    const cpuMsPerTask = perTaskMs(await cpuUsed(), flow.tasks);
    const heapAfter = await masterHeapMb(opts.baseUrl);
    const onlineAtEnd = await onlineSims(opts.baseUrl);
    const stats = swarm.stats();
    return {
      workers: opts.workers,
      workersOnlineAtEnd: onlineAtEnd,
      masterRssMb: round2(rss.peak()),
      masterRssBeforeMb: round2(before),
      masterHeapBeforeMb: heapBefore,
      masterHeapWithSimsMb: heapAfter,
      connectSeconds: round2(connectSeconds),
      flowSeconds: round2(flow.seconds),
      flowTasks: flow.tasks,
      cpuMsPerTask,
      baselineCpuMsPerTask,
      throughputTasksPerSec: round2(flow.tasksPerSec),
      baselineTasksPerSec: round2(baseline.tasksPerSec),
      throughputDropPct: round2((1 - flow.tasksPerSec / baseline.tasksPerSec) * 100),
      heartbeatsSent: stats.heartbeats,
      simReconnects: stats.reconnects,
      simProcesses: swarm.pids.length,
      idle,
      heartbeats,
      keptUp:
        onlineAtEnd >= opts.workers &&
        keptUp(heartbeats, opts.heartbeatMs) &&
        (idle === undefined || keptUp(idle.heartbeats, opts.heartbeatMs)),
      listing,
    };
  } finally {
    rss.stop();
    await swarm.stop();
  }
}
