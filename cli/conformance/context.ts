/**
 * The kit's own installation and the worker under test, as the checks see
 * them: the kit's servers (kit-servers.ts), and the worker either as a child
 * process of the command with the environment docs/PROTOCOL.md §
 * Conformance lists, or, with `--attach`, a worker its author starts with
 * that environment (attach.ts).
 */

import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { FlotaLogger } from '../../common/logger.ts';
import type { MqttRefusal } from '../../master/src/broker/embedded-broker.ts';
import type { WorkerOnline } from '../../proto/src/schemas/worker.ts';
import { environment } from '../config.ts';
import { attachedSide } from './attach.ts';
import { type KitServers, startKitServers } from './kit-servers.ts';
import type { MasterRest } from './master-rest.ts';
import { ATTACH_DEFAULTS, type ConformanceOptions } from './options.ts';
import type { Probe, Seen } from './probe.ts';
import type { ReportTap } from './report-tap.ts';
import { kitWorkerSettings, workerEnv } from './worker-env.ts';
import { type WorkerHandle, type WorkerNeed, WorkerNotOnlineError } from './worker-handle.ts';
import { WorkerProcess } from './worker-process.ts';

/** How long the worker may take from spawn to its first online record. */
const ONLINE_MS = 20_000;

export interface ConformanceContext {
  readonly options: ConformanceOptions;
  readonly workerId: string;
  readonly rest: MasterRest;
  readonly probe: Probe;
  /** Every chunk and result the worker sent, as it sent them. */
  readonly tap: ReportTap;
  readonly log: Logger;
  /** Refused broker logins, in order. */
  readonly refusals: MqttRefusal[];
  /** The worker under test now (a check may restart it). */
  worker(): WorkerHandle;
  /** Starts another process of the command with `workerId` and `token` (the bad-credential check). */
  spawnExtra(workerId: string, token: string): WorkerProcess;
  credentialFor(workerId: string): string;
  /** Starts the worker again after a check stopped it, and waits for its online record. */
  restartWorker(): Promise<void>;
  /** Why a check that needs `needs` cannot run against this worker; undefined when it can. */
  lacks(needs: readonly WorkerNeed[] | undefined): string | undefined;
  /** The first online record of `workerId` after `since`, or undefined after `ms`. */
  waitOnline(workerId: string, since: number, ms: number): Promise<Seen<WorkerOnline> | undefined>;
  /**
   * Stops the kit's master and starts a new one on the same store, broker,
   * data directory and ports (its lease table starts empty); resolves once
   * the new one serves.
   */
  restartMaster(): Promise<void>;
  /**
   * Closes the kit's broker (every connection drops, its retained records and
   * sessions are gone) and starts a new one on the same port; resolves once
   * the kit's probe has logged in again.
   */
  restartBroker(): Promise<void>;
}

export interface Installation extends ConformanceContext {
  /** The first start of the worker: resolves once it published its online record. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** How the worker under test is started, reached and started again: by its command, or attached. */
type WorkerSide = Pick<Installation, 'worker' | 'spawnExtra' | 'restartWorker' | 'lacks' | 'start'>;

/**
 * The worker as a child process of `options.command`; `isClosed` says the
 * run is over: a check that ran past its timeout must not start a worker the
 * run no longer stops.
 */
function spawnedSide(
  options: ConformanceOptions,
  servers: KitServers,
  log: Logger,
  processes: WorkerProcess[],
  isClosed: () => boolean,
): WorkerSide {
  const { brokerUrl, relayAddress, credentials, probe } = servers;
  const spawnWorker = (workerId: string, token: string) => {
    if (isClosed()) throw new WorkerNotOnlineError('the run is over');
    const child = new WorkerProcess(
      options.command,
      workerEnv(
        environment(),
        kitWorkerSettings(options, {
          mqttUrl: brokerUrl,
          grpcAddress: relayAddress,
          workerId,
          token,
        }),
      ),
      log,
    );
    processes.push(child);
    return child;
  };
  const workerId = options.workerId;
  let current: WorkerProcess | undefined;
  const startCurrent = async () => {
    const since = Date.now();
    current = spawnWorker(workerId, credentials.issue(workerId));
    const online = await Promise.race([
      waitOnline(probe, workerId, since, ONLINE_MS),
      current.exited.then(() => undefined),
    ]);
    if (!online) {
      const why = current.exit
        ? `it exited (${current.exit.signal ?? `code ${current.exit.code}`})`
        : `no online record within ${ONLINE_MS} ms`;
      throw new WorkerNotOnlineError(
        `the worker under test never came online: ${why}${current.output() ? `. Its last output:\n${current.output()}` : ''}`,
      );
    }
  };
  return {
    worker: () => {
      if (!current) throw new Error('the worker under test was not started');
      return current;
    },
    spawnExtra: spawnWorker,
    restartWorker: startCurrent,
    lacks: () => undefined,
    start: startCurrent,
  };
}

/** The first online record of `workerId` after `since`, or undefined after `ms`. */
const waitOnline = (probe: Probe, workerId: string, since: number, ms: number) =>
  probe.until(
    () =>
      probe.statusesOf(workerId).find((s) => s.at >= since && s.value?.state === 'online') as
        | Seen<WorkerOnline>
        | undefined,
    ms,
  );

export async function openInstallation(
  options: ConformanceOptions,
  logger: FlotaLogger,
  notice: (text: string) => void,
): Promise<Installation> {
  const log = logger.logger;
  const closers: Array<() => Promise<void>> = [];
  const processes: WorkerProcess[] = [];
  let closed = false;
  const close = async () => {
    closed = true;
    await Promise.all(processes.map((p) => p.stop()));
    for (const step of closers.reverse()) await step().catch(() => undefined);
  };
  try {
    const { attach } = options;
    const writeEnv = attach?.writeEnv;
    if (writeEnv) {
      // A script waiting for the file must not read the last run's: its credential is dead.
      await rm(writeEnv, { force: true });
      closers.push(() => rm(writeEnv, { force: true }));
    }
    const host = attach?.host ?? ATTACH_DEFAULTS.host;
    const servers = await startKitServers(options, host, logger, closers);
    const { credentials, refusals, probe, tap, rest } = servers;
    const side: WorkerSide = attach
      ? attachedSide(options, attach, servers, log, notice)
      : spawnedSide(options, servers, log, processes, () => closed);
    return {
      options,
      workerId: options.workerId,
      rest,
      probe,
      tap,
      log,
      refusals,
      ...side,
      credentialFor: (id) => credentials.issue(id),
      waitOnline: (workerId, since, ms) => waitOnline(probe, workerId, since, ms),
      restartMaster: servers.restartMaster,
      restartBroker: servers.restartBroker,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
