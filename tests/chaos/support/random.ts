/** A small seeded generator (mulberry32), so a failing run can be replayed with CHAOS_SEED. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
}

export function seededRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[Math.floor(next() * items.length)] as (typeof items)[number];
    },
  };
}

const WORDS = [
  'queue',
  'lease',
  'worker',
  'broker',
  'fence',
  'attempt',
  'outbox',
  'epoch',
  'replay',
  'stream',
  'chunk',
  'master',
  'redis',
  'heartbeat',
  'grpc',
  'retry',
];

/** A prompt of 2..14 words after `head`, so echo answers take one to several chunks. */
export function chaosPrompt(rng: Rng, head: string): string {
  const words = Array.from({ length: rng.int(2, 14) }, () => rng.pick(WORDS));
  return `${head} ${words.join(' ')}`;
}

/** A prompt of 40..90 words after `head`: an answer streams for about a second. */
export function longChaosPrompt(rng: Rng, head: string): string {
  const words = Array.from({ length: rng.int(40, 90) }, () => rng.pick(WORDS));
  return `${head} ${words.join(' ')}`;
}
