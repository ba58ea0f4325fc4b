/** CPU and memory figures for the heartbeat, from `os` only (no native modules). */
import os from 'node:os';

export interface CpuTimes {
  idle: number;
  total: number;
}

export function readCpuTimes(cpus: os.CpuInfo[] = os.cpus()): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const cpu of cpus) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** Busy share of the time between two samples, 0–100. */
export function cpuPercent(previous: CpuTimes, current: CpuTimes): number {
  const total = current.total - previous.total;
  if (total <= 0) return 0;
  const busy = total - (current.idle - previous.idle);
  return Math.min(100, Math.max(0, Math.round((busy / total) * 1000) / 10));
}

/** Each call returns the system CPU % since the previous call. */
export function createCpuSampler(read: () => CpuTimes = () => readCpuTimes()): () => number {
  let previous = read();
  return () => {
    const current = read();
    const pct = cpuPercent(previous, current);
    previous = current;
    return pct;
  };
}

export interface MemorySnapshot {
  usedPct: number;
  totalMb: number;
  rssMb: number;
}

export function memorySnapshot(): MemorySnapshot {
  const total = os.totalmem();
  const free = os.freemem();
  const mb = (bytes: number) => Math.round(bytes / 1_048_576);
  return {
    usedPct: total > 0 ? Math.round(((total - free) / total) * 1000) / 10 : 0,
    totalMb: mb(total),
    rssMb: mb(process.memoryUsage.rss()),
  };
}
