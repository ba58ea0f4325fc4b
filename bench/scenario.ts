/**
 * One broker phase of the benchmark: a fresh master (Redis store, the given
 * broker), registration, K echo workers, then throughput, latency at half the
 * measured maximum, and the scale scenario. Every process it starts is
 * stopped before it returns, on failure too (and by the cleanup on Ctrl-C).
 */
import { randomBytes } from 'node:crypto';
import type { Cleanup } from './cleanup.ts';
import { type CpuGroups, childPids, perTaskMs, startCpuMeter } from './cpu.ts';
import { type LatencyResult, round2, runFixedRate, runSolo, runThroughput } from './drive.ts';
import { LoadClient } from './load.ts';
import { deadReason, rssMb } from './processes.ts';
import type { Progress } from './progress.ts';
import { countRedisCommands } from './redis-stats.ts';
import { median, probeRegistration } from './registration.ts';
import { runScale, type ScaleResult } from './scale.ts';
import { runStreams, type StreamParams, type StreamsResult } from './streams.ts';
import {
  type BrokerKind,
  masterHeapMb,
  spawnWorker,
  startMasterProcess,
  startMosquittoServer,
  tempDir,
  waitForOnline,
  workerCredentials,
} from './system.ts';

export interface BenchParams {
  tasks: number;
  latencyTasks: number;
  /** Tasks sent one at a time (each after the previous answer), for the latency of a task alone. */
  soloTasks: number;
  /** Fixed offered rate for the latency run; default half the measured maximum. */
  latencyRate?: number;
  warmupTasks: number;
  workers: number;
  slots: number;
  sessions: number;
  inflight: number;
  restShare: number;
  /** REST submissions of a session in one turn go as one batch of up to this many (1: one each). */
  restBatch: number;
  registrationSamples: number;
  simWorkers: number;
  simConnectRate: number;
  simSeconds: number;
  simHeartbeatMs: number;
  /** A second, larger scale step (e.g. 10,000 sims) after the first; 0 skips it. */
  simWorkersLarge: number;
  /** Seconds with no task flowing, before and with the sims, that price their heartbeats. */
  simIdleSeconds: number;
  /** The streaming scenario (bench/streams.ts). */
  stream: StreamParams;
  rawJobs: number;
  rawBatch: number;
  rawRuns: number;
  rawConcurrency: number;
  logLevel: string;
  dispatchPolicy?: string;
  stallMs: number;
  /** Directory for the master's --cpu-prof output; unset = no profiling. */
  cpuProf?: string;
}

export interface BrokerResult {
  broker: BrokerKind;
  throughputTasksPerSec: number;
  throughputSeconds: number;
  /** CPU ms per task of each component in the throughput run (`other`: the rest of the machine). */
  cpuMsPerTask: Record<string, number>;
  /** Commands Redis ran per task: in the throughput run, and with one task at a time. */
  redisCommandsPerTask: { throughput: number; solo: number };
  /** Socket.IO messages with task events, and the events in them, per task (throughput run). */
  socketPerTask: { messages: number; events: number };
  failed: number;
  /** With profiling: the processes that wrote a CPU profile, by pid. */
  profiled?: Array<{ pid: number; name: string }>;
  /** Client-side submit → result at the fixed offered load. */
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  latency: LatencyResult;
  /** One task at a time: the latency of a task alone. */
  solo: LatencyResult;
  registrationMs: number;
  registrationFromConnectMs?: number;
  /** Spawning all K workers at once → all listed online. */
  fleetReadyMs: number;
  /** Master RSS once the echo workers registered, before any task. */
  masterRssStartMb: number;
  /** The master's V8 heap in use at the same moment (from /metrics). */
  masterHeapStartMb?: number;
  scale: ScaleResult;
  /** The `--sim-workers-large` step, when it ran. */
  scaleLarge?: ScaleResult;
  /** Tokens streamed to the sessions; undefined with --streams 0. */
  streams?: StreamsResult;
}

const idPart = () => randomBytes(4).toString('hex');

export async function runBroker(
  broker: BrokerKind,
  redisUrl: string,
  params: BenchParams,
  cleanup: Cleanup,
  progress: Progress,
): Promise<BrokerResult> {
  let stopBroker: (() => Promise<void>) | undefined;
  let stopMaster: (() => Promise<void>) | undefined;
  const stopWorkers: Array<() => Promise<void>> = [];
  let client: LoadClient | undefined;
  try {
    let externalMqtt: string | undefined;
    if (broker === 'mosquitto') {
      progress.note(`${broker}: starting mosquitto`);
      const mosquitto = await startMosquittoServer(cleanup);
      stopBroker = mosquitto.stop;
      externalMqtt = mosquitto.url;
    }
    progress.note(`${broker}: starting flota master (Redis store)`);
    const profileArgs = params.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${params.cpuProf}`] : [];
    const master = await startMasterProcess(cleanup, {
      redisUrl,
      mqttUrl: externalMqtt,
      namespace: `bench_${broker}_${idPart()}`,
      dataDir: await tempDir(cleanup, 'flota-bench-data-'),
      logLevel: params.logLevel,
      env: {
        ...(params.dispatchPolicy ? { DISPATCH_POLICY: params.dispatchPolicy } : {}),
        // The embedded broker keeps one retained status per worker: room for every sim.
        ...(retainedNeeded(params) > 20_000
          ? { MQTT_MAX_RETAINED: String(retainedNeeded(params)) }
          : {}),
      },
      nodeArgs: profileArgs,
    });
    stopMaster = master.stop;
    const { baseUrl, mqttUrl, grpcPort } = master;

    const samples = [];
    const regBar = progress.bar('worker registration', params.registrationSamples);
    for (let i = 0; i < params.registrationSamples; i++) {
      samples.push(
        await probeRegistration(cleanup, {
          id: `probe-${i + 1}`,
          baseUrl,
          mqttUrl,
          grpcPort,
          slots: params.slots,
        }),
      );
      regBar.update(i + 1);
    }
    const registrationMs = median(samples.map((s) => s.fromSpawnMs));
    const fromConnect = samples.flatMap((s) =>
      s.fromConnectMs === undefined ? [] : [s.fromConnectMs],
    );
    regBar.finish(`${Math.round(registrationMs)} ms from spawn`);

    const fleetBar = progress.bar(`${params.workers} echo workers`, params.workers);
    const fleetIds = Array.from({ length: params.workers }, (_, i) => `echo-${i + 1}`);
    // Issued before the clock starts: fleetReadyMs times the workers, not the issuing.
    const fleetCredentials = await workerCredentials(master, fleetIds);
    const fleetStart = performance.now();
    const fleet = fleetIds.map((id) =>
      spawnWorker(cleanup, {
        id,
        credential: fleetCredentials.get(id) as string,
        mqttUrl,
        grpcPort,
        slots: params.slots,
        logLevel: params.logLevel,
        nodeArgs: profileArgs,
      }),
    );
    for (const w of fleet) stopWorkers.push(w.stop);
    await waitForOnline(baseUrl, (id) => id.startsWith('echo-'), params.workers, {
      timeoutMs: 90_000,
      intervalMs: 10,
      alive: () => fleet.map((w) => deadReason(w.proc)).find((why) => why !== undefined),
    });
    const fleetReadyMs = performance.now() - fleetStart;
    const masterRssStartMb = (await rssMb(master.proc.pid)) ?? 0;
    const masterHeapStartMb = await masterHeapMb(baseUrl);
    const profiled = params.cpuProf
      ? [
          { pid: master.proc.pid, name: `${broker}: master` },
          ...fleet.map((w, i) => ({ pid: w.proc.pid, name: `${broker}: worker ${fleetIds[i]}` })),
        ]
      : undefined;
    if (params.cpuProf) {
      const pids = fleet.map((w) => w.proc.pid).join(', ');
      progress.note(
        `${broker}: profiles in ${params.cpuProf}: master ${master.proc.pid}, workers ${pids}`,
      );
    }
    fleetBar.finish(`${Math.round(fleetReadyMs)} ms`);

    client = await LoadClient.open({
      baseUrl,
      sessions: params.sessions,
      restShare: params.restShare,
      restBatch: params.restBatch,
      model: 'echo',
      tag: `bench-${broker}-${idPart()}`,
    });
    const load = client;
    const stallMs = params.stallMs;

    const warmBar = progress.bar('warm-up', params.warmupTasks);
    await runThroughput(load, {
      tasks: params.warmupTasks,
      inflight: Math.min(params.inflight, 32),
      label: 'warm-up',
      stallMs,
      onProgress: (d) => warmBar.update(d),
    });
    warmBar.finish();

    const cpuGroups: CpuGroups = {
      master: [master.proc.pid],
      workers: fleet.map((w) => w.proc.pid),
      redis: await childPids('redis-server'),
      ...(broker === 'mosquitto' ? { broker: await childPids('mosquitto') } : {}),
    };
    const tpBar = progress.bar('throughput', params.tasks);
    const cpuUsed = await startCpuMeter(cpuGroups);
    const receivedBefore = load.received();
    const { result: throughput, commands: tpCommands } = await countRedisCommands(redisUrl, () =>
      runThroughput(load, {
        tasks: params.tasks,
        inflight: params.inflight,
        label: 'throughput',
        stallMs,
        onProgress: (d) => tpBar.update(d),
      }),
    );
    const cpuMsPerTask = perTaskMs(await cpuUsed(), throughput.tasks);
    const receivedAfter = load.received();
    const perTask = (n: number) => round2(n / Math.max(1, throughput.tasks));
    const socketPerTask = {
      messages: perTask(receivedAfter.messages - receivedBefore.messages),
      events: perTask(receivedAfter.events - receivedBefore.events),
    };
    tpBar.finish(`${Math.round(throughput.tasksPerSec)} tasks/s`);

    const rate = params.latencyRate ?? throughput.tasksPerSec / 2;
    const latBar = progress.bar(`latency @ ${Math.round(rate)}/s`, params.latencyTasks);
    const latency = await runFixedRate(load, {
      tasks: params.latencyTasks,
      ratePerSec: rate,
      label: 'latency',
      stallMs,
      onProgress: (d) => latBar.update(d),
    });
    latBar.finish(`p50 ${latency.latencyMs.p50} ms, p99 ${latency.latencyMs.p99} ms`);

    const soloBar = progress.bar('one task at a time', params.soloTasks);
    const { result: solo, commands: soloCommands } = await countRedisCommands(redisUrl, () =>
      runSolo(load, {
        tasks: params.soloTasks,
        label: 'solo',
        stallMs,
        onProgress: (d) => soloBar.update(d),
      }),
    );
    soloBar.finish(`p50 ${solo.latencyMs.p50} ms, p99 ${solo.latencyMs.p99} ms`);

    const streams =
      params.stream.streams > 0
        ? await runStreams(
            cleanup,
            progress,
            {
              baseUrl,
              mqttUrl,
              grpcPort,
              masterPid: master.proc.pid,
              logLevel: params.logLevel,
              nodeArgs: profileArgs,
              stallMs,
              onWorkers: (ws) =>
                profiled?.push(
                  ...ws.map((w) => ({ pid: w.pid, name: `${broker}: worker ${w.id}` })),
                ),
            },
            params.stream,
          )
        : undefined;

    const scaleStep = (workers: number, through: LoadClient) =>
      runScale(cleanup, through, progress, {
        label: `${workers} sims`,
        baseUrl,
        mqttUrl,
        masterPid: master.proc.pid,
        cpuGroups,
        workers,
        connectPerSec: params.simConnectRate,
        heartbeatMs: params.simHeartbeatMs,
        seconds: params.simSeconds,
        maxTasks: Math.max(params.tasks, 100_000),
        inflight: params.inflight,
        stallMs,
        idleSeconds: params.simIdleSeconds,
      });
    const scale =
      params.simWorkers > 0
        ? await scaleStep(params.simWorkers, load)
        : noScale(throughput.tasksPerSec);
    let scaleLarge: ScaleResult | undefined;
    if (params.simWorkersLarge > 0) {
      // One browser session, not --sessions: today every session gets the whole worker
      // list twice a second while workers come online (workers:update), 3–4 MB each with
      // 10,000, which would measure the load client's JSON parsing instead of the master.
      load.close();
      client = await LoadClient.open({
        baseUrl,
        sessions: 1,
        restShare: params.restShare,
        model: 'echo',
        tag: `bench-${broker}-large-${idPart()}`,
      });
      scaleLarge = await scaleStep(params.simWorkersLarge, client);
    }

    return {
      broker,
      throughputTasksPerSec: round2(throughput.tasksPerSec),
      throughputSeconds: round2(throughput.seconds),
      cpuMsPerTask,
      socketPerTask,
      redisCommandsPerTask: {
        throughput: round2(tpCommands / Math.max(1, throughput.tasks)),
        solo: round2(soloCommands / Math.max(1, params.soloTasks)),
      },
      failed: throughput.failed + latency.failed + solo.failed,
      latencyMs: latency.latencyMs,
      latency,
      solo,
      registrationMs: round2(registrationMs),
      registrationFromConnectMs: fromConnect.length > 0 ? round2(median(fromConnect)) : undefined,
      fleetReadyMs: round2(fleetReadyMs),
      masterRssStartMb: round2(masterRssStartMb),
      masterHeapStartMb,
      scale,
      scaleLarge,
      streams,
      profiled,
    };
  } finally {
    client?.close();
    progress.note(`${broker}: stopping`);
    // Workers first (they report what they run), then the master, then the broker.
    await Promise.all(stopWorkers.map((stop) => stop()));
    await stopMaster?.();
    await stopBroker?.();
  }
}

/** Retained statuses the embedded broker must keep: every sim, the echo workers, the probes, spare. */
function retainedNeeded(params: BenchParams): number {
  const sims = Math.max(params.simWorkers, params.simWorkersLarge);
  return sims + params.workers + params.registrationSamples + 100;
}

function noScale(tasksPerSec: number): ScaleResult {
  return {
    workers: 0,
    workersOnlineAtEnd: 0,
    masterRssMb: 0,
    masterRssBeforeMb: 0,
    connectSeconds: 0,
    flowSeconds: 0,
    flowTasks: 0,
    cpuMsPerTask: {},
    baselineCpuMsPerTask: {},
    baselineTasksPerSec: round2(tasksPerSec),
    throughputTasksPerSec: round2(tasksPerSec),
    throughputDropPct: 0,
    heartbeatsSent: 0,
    simReconnects: 0,
  };
}
