/**
 * `flota conformance --attach`: the worker under test is one its author
 * starts (in a debugger, a container, on another machine) with the
 * environment the kit prints, instead of a command the kit spawns. The kit
 * waits for it to come online, then runs every check that needs nothing but
 * the wire; one that would signal the worker runs only with `--pid`, and one
 * that kills it and starts it again, or starts a second worker from its
 * command, is skipped (docs/PROTOCOL.md § Conformance).
 */
import type { Logger } from 'pino';
import { envLines, writeEnvFile } from './attach-env.ts';
import { AttachedWorker, cannotSignal, NEEDS_PROCESS } from './attached-worker.ts';
import { CheckSkipped } from './check-errors.ts';
import type { KitServers } from './kit-servers.ts';
import type { AttachOptions, ConformanceOptions } from './options.ts';
import { kitWorkerSettings } from './worker-env.ts';
import { type WorkerNeed, WorkerNotOnlineError } from './worker-handle.ts';

/** Why a check that kills the worker and starts it again is skipped: only a command can be started again. */
export const NEEDS_RESTART =
  'kills the worker and starts it again, which needs its command: run it as a command (flota conformance -- <command>)';
/** Why the check that starts a second worker (with another id's credential) is skipped. */
export const NEEDS_COMMAND =
  "starts a second worker from the worker's command: run it as a command (flota conformance -- <command>)";

/** How long a worker that went away mid-run may take to come back before the next check is skipped. */
const BACK_MS = 20_000;

export interface AttachedSide {
  worker(): AttachedWorker;
  /** There is no command to start a second worker from: throws CheckSkipped. */
  spawnExtra(): never;
  /** Resolves once it is online at the kit's master; tells its author how to start it first. */
  start(): Promise<void>;
  /** Waits for it to come back online (its author restarts it); the kit cannot start it. */
  restartWorker(): Promise<void>;
  /** Why a check with `needs` cannot run against it; undefined when it can. */
  lacks(needs: readonly WorkerNeed[] | undefined): string | undefined;
}

const isLoopback = (host: string) =>
  host === 'localhost' || host === '::1' || host.startsWith('127.');

export function attachedSide(
  options: ConformanceOptions,
  attach: AttachOptions,
  servers: KitServers,
  log: Logger,
  notice: (text: string) => void,
): AttachedSide {
  const { probe, credentials } = servers;
  const { workerId } = options;
  const { pid } = attach;
  const handle = new AttachedWorker(probe, workerId, options.heartbeatMs, pid);
  const heard = () => handle.heard() || undefined;

  const announce = async () => {
    const lines = envLines(
      kitWorkerSettings(options, {
        mqttUrl: servers.brokerUrl,
        grpcAddress: servers.relayAddress,
        workerId,
        token: credentials.issue(workerId),
      }),
    );
    if (attach.writeEnv) await writeEnvFile(attach.writeEnv, lines);
    const where = attach.writeEnv ? ` (also written to ${attach.writeEnv})` : '';
    const text = [
      `flota conformance: start the worker under test with this environment${where}; waiting up to ${attach.timeoutS} s for it to come online:`,
      ...lines,
    ];
    if (!isLoopback(attach.host)) {
      text.push(
        `(the kit's broker and gRPC relay listen on ${attach.host} without TLS; the credential above is good for this run only)`,
      );
    }
    notice(text.join('\n'));
  };

  return {
    worker: () => handle,
    spawnExtra() {
      throw new CheckSkipped(NEEDS_COMMAND);
    },
    async start() {
      const unreachable = pid === undefined ? undefined : cannotSignal(pid);
      if (unreachable) throw new WorkerNotOnlineError(`--pid ${pid}: ${unreachable}`);
      await announce();
      const ms = attach.timeoutS * 1000;
      const waits = [probe.until(heard, ms)];
      // A --pid process that exits while the kit waits ends the wait.
      if (pid !== undefined) waits.push(handle.exited.then(() => undefined));
      const online = await Promise.race(waits);
      if (!online) {
        const why =
          pid !== undefined && !handle.running
            ? `its process ${pid} exited first`
            : `it did not come online within ${attach.timeoutS} s`;
        throw new WorkerNotOnlineError(
          `the worker under test never came online at the kit's master: ${why}; start it with the environment printed above (WORKER_ID=${workerId})`,
        );
      }
      log.debug({ workerId, pid }, 'attached worker online');
    },
    async restartWorker() {
      if (pid !== undefined) {
        throw new WorkerNotOnlineError(
          `its process ${pid} has exited, and the kit cannot start it again (it did not start it)`,
        );
      }
      const back = await probe.until(heard, BACK_MS);
      if (!back) {
        throw new WorkerNotOnlineError(
          `it is no longer online at the kit's master and did not come back within ${BACK_MS / 1000} s`,
        );
      }
    },
    lacks(needs) {
      if (needs?.includes('command')) return NEEDS_COMMAND;
      if (needs?.includes('restart')) return NEEDS_RESTART;
      if (needs?.includes('signals') && pid === undefined) return NEEDS_PROCESS;
      return undefined;
    },
  };
}
