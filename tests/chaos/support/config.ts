/** The only place the chaos suite reads the environment: knobs for local experiments. */

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name}: expected an integer ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export interface ChaosSettings {
  /** Tasks submitted per mode (CHAOS_TASKS, default 1000). */
  tasks: number;
  /** Worker processes (CHAOS_WORKERS, default 4; at least 2 so one always serves). */
  workers: number;
  /** Simulated browser sessions (CHAOS_SESSIONS, default 5). */
  sessions: number;
  /** Submissions and faults are spread over this window (CHAOS_WINDOW_MS, default 20 s). */
  windowMs: number;
  /** After the window, how long every task may take to reach a terminal state (CHAOS_DRAIN_MS). */
  drainMs: number;
  /** Slots per worker (CHAOS_SLOTS, default 8). */
  slots: number;
  /** Echo provider: per-chunk wait and its per-task jitter (CHAOS_ECHO_DELAY_MS / _JITTER_MS). */
  echoDelayMs: number;
  echoJitterMs: number;
  /** Random seed for prompts, victims and timings (CHAOS_SEED; default: random, printed). */
  seed: number;
  /** FLOTA_TEST_LOGS=1: print every process's output at the end, not only on failure. */
  showLogs: boolean;
}

/** Streaming mode's settings: fewer, longer answers (CHAOS_STREAM_TASKS, default 250). */
export function streamingChaosSettings(): ChaosSettings {
  return { ...chaosSettings(), tasks: intFromEnv('CHAOS_STREAM_TASKS', 250, 1, 100_000) };
}

export function chaosSettings(): ChaosSettings {
  return {
    tasks: intFromEnv('CHAOS_TASKS', 1_000, 1, 100_000),
    workers: intFromEnv('CHAOS_WORKERS', 4, 2, 32),
    sessions: intFromEnv('CHAOS_SESSIONS', 5, 1, 100),
    windowMs: intFromEnv('CHAOS_WINDOW_MS', 20_000, 12_000, 600_000),
    drainMs: intFromEnv('CHAOS_DRAIN_MS', 30_000, 5_000, 600_000),
    slots: intFromEnv('CHAOS_SLOTS', 8, 1, 64),
    echoDelayMs: intFromEnv('CHAOS_ECHO_DELAY_MS', 15, 0, 10_000),
    echoJitterMs: intFromEnv('CHAOS_ECHO_JITTER_MS', 60, 0, 10_000),
    seed: intFromEnv('CHAOS_SEED', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31),
    showLogs: process.env.FLOTA_TEST_LOGS === '1',
  };
}
