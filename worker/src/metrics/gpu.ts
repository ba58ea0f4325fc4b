/**
 * GPU figures from `nvidia-smi`, when the machine has it. The command runs in
 * the background and its last answer is cached, so a slow or hung driver never
 * delays a heartbeat. Without nvidia-smi the list is simply empty.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../../../common/logger.ts';
import type { GpuMetrics } from '../../../proto/src/schemas/worker.ts';

export const NVIDIA_SMI_ARGS = [
  '--query-gpu=index,name,utilization.gpu,memory.used,memory.total',
  '--format=csv,noheader,nounits',
];

function toNumber(field: string | undefined): number | undefined {
  if (field === undefined) return undefined;
  const n = Number(field.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** Parses `index, name, util, memUsed, memTotal` lines; unreadable lines are skipped. */
export function parseNvidiaSmi(output: string): GpuMetrics[] {
  const gpus: GpuMetrics[] = [];
  for (const line of output.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const fields = line.split(',');
    if (fields.length < 5) continue;
    // Names may contain commas: the first field is the index, the last three are numbers.
    const index = toNumber(fields[0]);
    const [util, used, total] = fields.slice(-3).map(toNumber);
    const name = fields.slice(1, -3).join(',').trim();
    if (index === undefined || used === undefined || total === undefined) continue;
    gpus.push({
      index,
      name,
      // "[N/A]" utilisation (some virtual GPUs) reads as 0 rather than dropping the GPU.
      utilPct: Math.min(100, Math.max(0, util ?? 0)),
      memUsedMb: Math.max(0, used),
      memTotalMb: Math.max(0, total),
    });
  }
  return gpus;
}

export type CommandRunner = (file: string, args: string[]) => Promise<string>;

export const execCommand: CommandRunner = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 5_000, windowsHide: true }, (error, stdout) => {
      if (error) reject(error);
      else resolve(stdout);
    });
  });

export interface GpuSampler {
  /** The latest known GPUs; starts a background refresh when the cache is stale. */
  current(): GpuMetrics[];
}

export function createGpuSampler(options: {
  log: Logger;
  refreshMs?: number;
  /**
   * No probe before this much time has passed (default 1 s): starting
   * nvidia-smi costs the worker CPU while it connects and registers.
   */
  firstProbeAfterMs?: number;
  run?: CommandRunner;
}): GpuSampler {
  const run = options.run ?? execCommand;
  const refreshMs = options.refreshMs ?? 5_000;
  let cache: GpuMetrics[] = [];
  let fetchedAt = Date.now() - refreshMs + (options.firstProbeAfterMs ?? 1_000);
  let inFlight = false;
  let absent = false;

  const refresh = () => {
    inFlight = true;
    fetchedAt = Date.now();
    run('nvidia-smi', NVIDIA_SMI_ARGS)
      .then((out) => {
        cache = parseNvidiaSmi(out);
      })
      .catch((error: NodeJS.ErrnoException) => {
        cache = [];
        if (error.code === 'ENOENT') {
          absent = true;
          options.log.debug('nvidia-smi not found: reporting no GPUs');
        } else {
          options.log.warn({ err: error.message }, 'nvidia-smi failed');
        }
      })
      .finally(() => {
        inFlight = false;
      });
  };

  return {
    current() {
      if (!absent && !inFlight && Date.now() - fetchedAt >= refreshMs) refresh();
      return cache;
    },
  };
}
