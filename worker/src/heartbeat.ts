/**
 * Periodic heartbeat. Every figure comes from a cheap synchronous read (GPU
 * data is cached by its sampler), so busy tasks cannot starve it.
 */
import type { GpuMetrics, Heartbeat, LoadedModel } from '../../proto/src/schemas/worker.ts';
import type { MemorySnapshot } from './metrics/system.ts';

export interface HeartbeatSources {
  workerId: string;
  cpuPct: () => number;
  memory: () => MemorySnapshot;
  gpus: () => GpuMetrics[];
  freeSlots: () => number;
  active: () => Array<{ taskId: string; attempt: number; lease?: string }>;
  draining: () => boolean;
  /** Local models in memory now; absent for providers that hold none. */
  loaded?: () => LoadedModel[];
}

export function buildHeartbeat(sources: HeartbeatSources): Heartbeat {
  return {
    id: sources.workerId,
    ts: Date.now(),
    cpuPct: sources.cpuPct(),
    mem: sources.memory(),
    gpus: sources.gpus(),
    freeSlots: sources.freeSlots(),
    active: sources.active(),
    draining: sources.draining(),
    ...(sources.loaded && { loaded: sources.loaded() }),
  };
}

export interface HeartbeatHandle {
  /** One beat now, out of turn (the state it reports changed: draining, slots). */
  beat(): void;
  stop(): void;
}

/** Starts beating at once, then every `intervalMs`. */
export function startHeartbeat(
  sources: HeartbeatSources,
  intervalMs: number,
  publish: (heartbeat: Heartbeat) => void,
): HeartbeatHandle {
  const beat = () => publish(buildHeartbeat(sources));
  beat();
  const timer = setInterval(beat, intervalMs);
  return { beat, stop: () => clearInterval(timer) };
}
