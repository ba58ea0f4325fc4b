import { z } from 'zod';

/** One line on `logs/{source}`: a pino JSON record, with the fields flota always sets. */
export const logLineSchema = z
  .object({
    ts: z.number(),
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
    source: z.string(),
    msg: z.string(),
  })
  .passthrough();
export type LogLine = z.infer<typeof logLineSchema>;
