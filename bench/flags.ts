/** Command-line flags of the benchmark entries (run.ts, autoscale.ts). */
import type { Command } from 'commander';
import type { z } from 'zod';

/** Parses the command line, then its options with `schema`; on a bad flag prints `--flag: problem` and exits 2. */
export function parseFlags<S extends z.ZodType>(program: Command, schema: S): z.infer<S> {
  const parsed = schema.safeParse(program.parse().opts());
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      console.error(`--${issue.path.join('.')}: ${issue.message}`);
    }
    process.exit(2);
  }
  return parsed.data;
}
