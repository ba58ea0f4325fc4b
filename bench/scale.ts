/**
 * The scale scenario: many simulated workers heartbeating while tasks flow
 * to the real echo workers. Reports the master's resident memory (sampled
 * from /proc) and the throughput next to the run without them.
 */
import { waitFor } from '../tests/helpers/wait-for.ts';
import type { Cleanup } from './cleanup.ts';
import { type CpuGroups, perTaskMs, startCpuMeter } from './cpu.ts';
import { round2, runThroughput, type ThroughputResult } from './drive.ts';
import type { LoadClient } from './load.ts';
import { rssMb } from './processes.ts';
import type { Progress } from './progress.ts';
import { simIds, startSwarm } from './swarm.ts';
import { masterHeapMb, workerCredentials, workerStates } from './system.ts';

export interface ScaleOptions {
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
  const baseBar = progress.bar('tasks flowing, no sims (s)', Math.ceil(opts.seconds));
  const baseCpu = await startCpuMeter(opts.cpuGroups);
  const baseline = await flowFor(client, opts, (s, done) => baseBar.update(s, `${done} tasks`));
  const baselineCpuMsPerTask = perTaskMs(await baseCpu(), baseline.tasks);
  baseBar.finish(`${Math.round(baseline.tasksPerSec)} tasks/s`);
  const before = (await rssMb(opts.masterPid)) ?? 0;
  const heapBefore = await masterHeapMb(opts.baseUrl);
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
    const bar = progress.bar(`${opts.workers} sim workers online`, opts.workers);
    await waitFor(
      async () => {
        const online = await onlineSims(opts.baseUrl);
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
    const connectSeconds = (performance.now() - connectStart) / 1000;

    const flowBar = progress.bar('tasks flowing with sims (s)', Math.ceil(opts.seconds));
    const cpuUsed = await startCpuMeter({ ...opts.cpuGroups, sims: [swarm.pid] });
    const flow = await flowFor(client, opts, (s, done) => flowBar.update(s, `${done} tasks`));
    flowBar.finish(`${Math.round(flow.tasksPerSec)} tasks/s over ${flow.seconds.toFixed(1)} s`);

    const cpuMsPerTask = perTaskMs(await cpuUsed(), flow.tasks);
    const heapAfter = await masterHeapMb(opts.baseUrl);
    const online = await onlineSims(opts.baseUrl);
    const stats = swarm.stats();
    return {
      workers: opts.workers,
      workersOnlineAtEnd: online,
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
    };
  } finally {
    rss.stop();
    await swarm.stop();
  }
}
