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
import { median, probeRegistration } from './registration.ts';
import { runScale, type ScaleResult } from './scale.ts';
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
  registrationSamples: number;
  simWorkers: number;
  simConnectRate: number;
  simSeconds: number;
  simHeartbeatMs: number;
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
      env: params.dispatchPolicy ? { DISPATCH_POLICY: params.dispatchPolicy } : {},
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
    const throughput = await runThroughput(load, {
      tasks: params.tasks,
      inflight: params.inflight,
      label: 'throughput',
      stallMs,
      onProgress: (d) => tpBar.update(d),
    });
    const cpuMsPerTask = perTaskMs(await cpuUsed(), throughput.tasks);
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
    const solo = await runSolo(load, {
      tasks: params.soloTasks,
      label: 'solo',
      stallMs,
      onProgress: (d) => soloBar.update(d),
    });
    soloBar.finish(`p50 ${solo.latencyMs.p50} ms, p99 ${solo.latencyMs.p99} ms`);

    const scale =
      params.simWorkers > 0
        ? await runScale(cleanup, load, progress, {
            baseUrl,
            mqttUrl,
            masterPid: master.proc.pid,
            cpuGroups,
            workers: params.simWorkers,
            connectPerSec: params.simConnectRate,
            heartbeatMs: params.simHeartbeatMs,
            seconds: params.simSeconds,
            maxTasks: Math.max(params.tasks, 100_000),
            inflight: params.inflight,
            stallMs,
          })
        : noScale(throughput.tasksPerSec);

    return {
      broker,
      throughputTasksPerSec: round2(throughput.tasksPerSec),
      throughputSeconds: round2(throughput.seconds),
      cpuMsPerTask,
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
