/**
 * Commands Redis ran, from `INFO commandstats`: the store round trips a phase
 * of the benchmark cost, counted by the server (no sampling, no noise from
 * other processes on the machine).
 */
import { Redis } from 'ioredis';

/** Total calls of every command since the server started (or its stats were reset). */
export async function redisCommandCount(url: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const info = await redis.info('commandstats');
    let calls = 0;
    for (const match of info.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) calls += Number(match[1]);
    // This connection's own INFO is counted too; take it back out.
    return calls - 1;
  } finally {
    redis.disconnect();
  }
}

/** Counts the commands `phase` makes Redis run. */
export async function countRedisCommands<T>(
  url: string,
  phase: () => Promise<T>,
): Promise<{ result: T; commands: number }> {
  const before = await redisCommandCount(url);
  const result = await phase();
  const after = await redisCommandCount(url);
  // The INFO of the `before` reading lands in `after`.
  return { result, commands: after - before - 1 };
}
