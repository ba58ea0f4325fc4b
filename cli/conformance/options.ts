/**
 * `flota conformance` options, with their defaults, validated once. A bad
 * value is reported with the option's name, as the rest of the CLI does.
 */
import { z } from 'zod';
import { workerIdSchema } from '../../proto/src/schemas/worker.ts';

/** How the kit meets a worker its author starts (`--attach`), with the defaults of its flags. */
export interface AttachOptions {
  /** Where the worker's environment is also written (mode 0600, atomically); unset: printed only. */
  writeEnv?: string;
  /** How long the kit waits for the worker to come online (`--attach-timeout-s`). */
  timeoutS: number;
  /** A local process the checks may signal (`--pid`); unset: the checks that signal it are skipped. */
  pid?: number;
  /** Where the kit's broker and gRPC relay listen, and so what the worker dials (`--host`). */
  host: string;
}

export const ATTACH_DEFAULTS = { timeoutS: 300, host: '127.0.0.1' } as const;

/** The flags that only mean something with `--attach`, by their names in the schema. */
const ATTACH_FLAGS = {
  writeEnv: '--write-env',
  attachTimeoutS: '--attach-timeout-s',
  pid: '--pid',
  host: '--host',
} as const;

export const conformanceOptionsSchema = z
  .object({
    /** The worker command and its arguments (after `--`); none with `--attach`. */
    command: z.array(z.string().min(1)).default([]),
    /** Test a worker its author starts with the environment the kit prints, instead of a command. */
    attach: z.boolean().default(false),
    writeEnv: z.string().min(1, '--write-env: give a path').optional(),
    attachTimeoutS: z.coerce
      .number()
      .int()
      .min(1, '--attach-timeout-s must be at least 1')
      .max(86_400, '--attach-timeout-s must be at most 86400 (a day)')
      .optional(),
    pid: z.coerce.number().int().min(2, '--pid: give the process id of the worker').optional(),
    host: z
      .string()
      .regex(/^[A-Za-z0-9.:-]+$/, '--host: give an address or host name of this machine')
      .refine(
        (h) => h !== '0.0.0.0' && h !== '::',
        '--host: give the address the worker dials (one of this machine), not a wildcard',
      )
      .optional(),
    /** The id the worker under test runs as. */
    workerId: workerIdSchema.default('conformance-1'),
    /** QUEUE_URL of the kit's master; unset: a local redis-server, else the embedded PostgreSQL. */
    queueUrl: z
      .string()
      .regex(
        /^(redis|rediss|postgres|postgresql):\/\/\S+$/,
        '--queue-url: expected redis:// or postgres://',
      )
      .optional(),
    /** SLOTS the worker gets; the slot check needs at least 2. */
    slots: z.coerce.number().int().min(2, '--slots must be at least 2').max(16).default(2),
    /** HEARTBEAT_MS the worker gets. */
    heartbeatMs: z.coerce
      .number()
      .int()
      .min(50, '--heartbeat-ms must be at least 50')
      .max(1_000, '--heartbeat-ms must be at most 1000 (the checks wait a few heartbeats each)')
      .default(300),
    /** SHUTDOWN_GRACE_MS the worker gets. */
    shutdownGraceMs: z.coerce.number().int().min(0).max(60_000).default(5_000),
    /** Only these check ids (or groups, e.g. `registration`); unset: every check. */
    checks: z.array(z.string().min(1)).optional(),
    json: z.boolean().default(false),
  })
  .superRefine((o, ctx) => {
    if (o.attach && o.command.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['--attach'],
        message:
          'give either a worker command after -- (the kit starts it) or --attach (you start it), not both',
      });
    }
    if (!o.attach && o.command.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['command'],
        message:
          'give the worker command after --, e.g. -- node bin/flota.mjs worker, or --attach to start the worker yourself',
      });
    }
    if (o.attach) return;
    for (const [name, flag] of Object.entries(ATTACH_FLAGS)) {
      if (o[name as keyof typeof ATTACH_FLAGS] === undefined) continue;
      ctx.addIssue({ code: 'custom', path: [flag], message: 'only with --attach' });
    }
  })
  .transform(({ attach, writeEnv, attachTimeoutS, pid, host, ...rest }) => {
    if (!attach) return { ...rest, attach: undefined };
    const options: AttachOptions = {
      ...ATTACH_DEFAULTS,
      ...(writeEnv !== undefined ? { writeEnv } : {}),
      ...(attachTimeoutS !== undefined ? { timeoutS: attachTimeoutS } : {}),
      ...(pid !== undefined ? { pid } : {}),
      ...(host !== undefined ? { host } : {}),
    };
    return { ...rest, attach: options };
  });
export type ConformanceOptions = z.output<typeof conformanceOptionsSchema>;
