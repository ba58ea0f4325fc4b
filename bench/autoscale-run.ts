/**
 * One run of the autoscaling benchmark on a fresh master and queue
 * namespace: a fleet (fixed at min, fixed at max, or autoscaled from min),
 * a burst of echo tasks submitted at once over REST, results awaited on the
 * sessions' sockets, the master's worker list sampled all along. An
 * autoscaled run is then watched until its pool is back at min. Every
 * process it starts is stopped before it returns, on failure too.
 */
import { randomBytes } from 'node:crypto';
import type { LogLevel } from '../common/logger.ts';
import type { PoolStatus } from '../proto/src/schemas/autoscaler.ts';
import {
  type AutoscaleSpec,
  type Fleet,
  startAutoscaledFleet,
  startFixedFleet,
} from './autoscale-fleet.ts';
import { FleetSampler, firstSample, type Sample, workerSeconds } from './autoscale-sample.ts';
import type { Cleanup } from './cleanup.ts';
import { guarded, type Percentiles, percentiles, round2 } from './drive.ts';
import { LoadClient, type Outcome } from './load.ts';
import type { Progress } from './progress.ts';
import { type MasterProcess, startMasterProcess, tempDir } from './system.ts';

export const RUN_KINDS = ['fixed-min', 'fixed-max', 'autoscaled'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

export interface AutoscaleParams extends AutoscaleSpec {
  tasks: number;
  taskMs: number;
  slots: number;
  /** Socket.IO sessions the burst's results arrive on (the tasks go over REST). */
  sessions: number;
  sampleMs: number;
  scaleDownTimeoutMs: number;
  stallMs: number;
  logLevel: LogLevel;
}

export interface AutoscaleFigures {
  /** First submit → the autoscaler's first scale-up. */
  firstScaleUpMs: number | null;
  /** First submit → max workers listed online (to the sampling period). */
  maxOnlineMs: number | null;
  reachedMax: boolean;
  /** Last completion → the pool back at min: min replicas, at most min online. */
  backToMinMs: number | null;
  reachedMin: boolean;
  /** ∫ online workers from the first submit until back at min (or the end of watching). */
  workerSecondsUntilMin: number;
  /** Every scaling applied, `atMs` after the first submit. */
  scalings: Array<{ atMs: number; from: number; to: number }>;
  /** The autoscaler's /status at the end. */
  status: PoolStatus | null;
}

export interface RunResult {
  run: RunKind;
  workersAtStart: number;
  /** Master ready → the starting workers listed online (before the burst). */
  fleetReadyMs: number;
  tasks: number;
  completed: number;
  failed: number;
  /** First submit → last completion. */
  makespanMs: number;
  tasksPerSec: number;
  /** The master's submitted → committed, completed tasks. */
  taskTotalMs: Percentiles;
  /** The master's submitted → assigned, completed tasks. */
  queueMs: Percentiles;
  /** ∫ online workers from the first submit to the last completion. */
  workerSeconds: number;
  meanOnline: number;
  peakOnline: number;
  samples: number;
  sampleMisses: number;
  autoscale: AutoscaleFigures | null;
}

type Done = Outcome & { doneAt: number };

const idPart = () => randomBytes(4).toString('hex');

/** Every task submitted at once; resolves when all have finished. */
async function burst(
  client: LoadClient,
  label: string,
  params: AutoscaleParams,
  onDone: (done: number) => void,
): Promise<Done[]> {
  let done = 0;
  const all = Array.from({ length: params.tasks }, (_, i) =>
    client.task(`${label} ${i}`).then((outcome) => {
      done++;
      onDone(done);
      return { ...outcome, doneAt: performance.now() };
    }),
  );
  return guarded(Promise.all(all), () => done, params.stallMs);
}

function startFleet(
  kind: RunKind,
  cleanup: Cleanup,
  master: MasterProcess,
  params: AutoscaleParams,
): Promise<Fleet> {
  const spec = { slots: params.slots, taskMs: params.taskMs, logLevel: params.logLevel };
  if (kind === 'autoscaled') return startAutoscaledFleet(cleanup, master, spec, params);
  return startFixedFleet(cleanup, master, spec, kind === 'fixed-min' ? params.min : params.max);
}

export async function runOnce(
  kind: RunKind,
  redisUrl: string,
  params: AutoscaleParams,
  cleanup: Cleanup,
  progress: Progress,
): Promise<RunResult> {
  let master: MasterProcess | undefined;
  let fleet: Fleet | undefined;
  let client: LoadClient | undefined;
  let sampler: FleetSampler | undefined;
  try {
    progress.note(`${kind}: starting flota master (Redis store, embedded broker)`);
    master = await startMasterProcess(cleanup, {
      redisUrl,
      namespace: `autoscale_${kind.replace('-', '_')}_${idPart()}`,
      dataDir: await tempDir(cleanup, 'flota-bench-autoscale-'),
      logLevel: params.logLevel,
    });
    const readyAt = performance.now();
    fleet = await startFleet(kind, cleanup, master, params);
    const fleetReadyMs = performance.now() - readyAt;
    client = await LoadClient.open({
      baseUrl: master.baseUrl,
      sessions: params.sessions,
      restShare: 1,
      model: 'echo',
      tag: `autoscale-${kind}-${idPart()}`,
    });
    const watch = new FleetSampler(master.baseUrl, params.sampleMs);
    sampler = watch;
    await watch.start();
    const workersAtStart = watch.latest()?.online ?? 0;

    const bar = progress.bar(`${kind}: burst`, params.tasks);
    const t0 = performance.now();
    const outcomes = await burst(client, kind, params, (done) =>
      bar.update(done, `${watch.latest()?.online ?? '?'} workers online`),
    );
    const tEnd = Math.max(...outcomes.map((o) => o.doneAt));
    const makespanMs = tEnd - t0;
    bar.finish(`${(makespanMs / 1000).toFixed(1)} s`);

    let autoscale: AutoscaleFigures | null = null;
    if (kind === 'autoscaled') {
      const scaled = fleet;
      progress.note(`${kind}: waiting for the pool to shrink back to ${params.min}`);
      const backAt = await watch.waitFor(
        async (s) => s.online <= params.min && (await scaled.replicas()) === params.min,
        params.scaleDownTimeoutMs,
      );
      autoscale = autoscaleFigures(watch.samples, t0, tEnd, backAt, scaled, params);
      autoscale.status = (await scaled.status().catch(() => undefined)) ?? null;
      progress.note(
        backAt
          ? `${kind}: back at ${params.min} after ${((backAt.at - tEnd) / 1000).toFixed(1)} s`
          : `${kind}: not back at ${params.min} within ${params.scaleDownTimeoutMs} ms`,
      );
    }
    await watch.stop();
    return summarise(kind, params, outcomes, watch, {
      t0,
      tEnd,
      workersAtStart,
      fleetReadyMs,
      autoscale,
    });
  } finally {
    client?.close();
    await sampler?.stop();
    progress.note(`${kind}: stopping`);
    // Workers first (they drain and report), then the master.
    await fleet?.stop();
    await master?.stop();
  }
}

function autoscaleFigures(
  samples: readonly Sample[],
  t0: number,
  tEnd: number,
  backAt: Sample | undefined,
  fleet: Fleet,
  params: AutoscaleParams,
): AutoscaleFigures {
  const ups = fleet.scalings.filter((s) => s.at >= t0 && s.to > s.from);
  const maxAt = firstSample(samples, t0, (s) => s.online >= params.max);
  const until = backAt?.at ?? samples.at(-1)?.at ?? tEnd;
  return {
    firstScaleUpMs: ups[0] ? round2(ups[0].at - t0) : null,
    maxOnlineMs: maxAt ? round2(maxAt.at - t0) : null,
    reachedMax: maxAt !== undefined,
    backToMinMs: backAt ? round2(Math.max(0, backAt.at - tEnd)) : null,
    reachedMin: backAt !== undefined,
    workerSecondsUntilMin: round2(workerSeconds(samples, t0, until)),
    scalings: fleet.scalings
      .filter((s) => s.at >= t0)
      .map((s) => ({ atMs: round2(s.at - t0), from: s.from, to: s.to })),
    status: null,
  };
}

function summarise(
  kind: RunKind,
  params: AutoscaleParams,
  outcomes: Done[],
  sampler: FleetSampler,
  at: {
    t0: number;
    tEnd: number;
    workersAtStart: number;
    fleetReadyMs: number;
    autoscale: AutoscaleFigures | null;
  },
): RunResult {
  const completed = outcomes.filter((o) => o.completed);
  const makespanMs = at.tEnd - at.t0;
  const inRun = sampler.samples.filter((s) => s.at >= at.t0 && s.at <= at.tEnd);
  const ws = workerSeconds(sampler.samples, at.t0, at.tEnd);
  return {
    run: kind,
    workersAtStart: at.workersAtStart,
    fleetReadyMs: round2(at.fleetReadyMs),
    tasks: params.tasks,
    completed: completed.length,
    failed: outcomes.length - completed.length,
    makespanMs: round2(makespanMs),
    tasksPerSec: round2(outcomes.length / (makespanMs / 1000)),
    taskTotalMs: percentiles(completed.flatMap((o) => o.serverTotalMs ?? [])),
    queueMs: percentiles(completed.flatMap((o) => o.stages?.queue ?? [])),
    workerSeconds: round2(ws),
    meanOnline: round2(ws / (makespanMs / 1000)),
    peakOnline: Math.max(at.workersAtStart, ...inRun.map((s) => s.online)),
    samples: sampler.samples.length,
    sampleMisses: sampler.misses,
    autoscale: at.autoscale,
  };
}
