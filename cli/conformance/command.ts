/**
 * `flota conformance -- <worker command…>`: starts a master of its own,
 * runs the worker command against it, and holds the worker to
 * docs/PROTOCOL.md, check by check (docs/PROTOCOL.md § Conformance).
 */
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { createLogger } from '../../common/logger.ts';
import { formatZodError } from '../../common/zod-error.ts';
import { conformanceOptionsSchema } from './options.ts';

interface RawOptions {
  workerId?: string;
  queueUrl?: string;
  slots?: string;
  heartbeatMs?: string;
  shutdownGraceMs?: string;
  checks?: string;
  json?: boolean;
  verbose?: boolean;
}

export function conformanceCommand(): Command {
  return new Command('conformance')
    .description(
      'hold a worker to the wire protocol: start a master of its own, run the worker command against it, report each check',
    )
    .argument('<command...>', 'the worker command, after --, e.g. -- node bin/flota.mjs worker')
    .option('--worker-id <id>', 'the id the worker under test runs as', 'conformance-1')
    .option(
      '--queue-url <url>',
      "the master's QUEUE_URL (default: a local redis-server when one is installed, else the embedded PostgreSQL)",
    )
    .option('--slots <n>', 'SLOTS the worker gets (at least 2)', '2')
    .option('--heartbeat-ms <ms>', 'HEARTBEAT_MS the worker gets (50–1000)', '300')
    .option('--shutdown-grace-ms <ms>', 'SHUTDOWN_GRACE_MS the worker gets', '5000')
    .option('--checks <ids>', 'comma-separated check ids or groups to run (default: all)')
    .option('--json', 'print the results as JSON', false)
    .option('--verbose', "write the kit's and the master's logs to stderr", false)
    .showHelpAfterError()
    .action(async (command: string[], raw: RawOptions) => {
      const parsed = conformanceOptionsSchema.safeParse({
        ...raw,
        command,
        checks: raw.checks
          ?.split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      });
      if (!parsed.success) {
        console.error(`flota conformance: ${formatZodError(parsed.error)}`);
        process.exitCode = 2;
        return;
      }
      const { runConformance } = await import('./run.ts');
      const { formatTable, selectChecks, UnknownCheckError } = await import('./runner.ts');
      try {
        selectChecks(parsed.data.checks);
      } catch (err) {
        if (!(err instanceof UnknownCheckError)) throw err;
        console.error(`flota conformance: ${err.message}`);
        process.exitCode = 2;
        return;
      }
      const sink = raw.verbose
        ? process.stderr
        : new Writable({
            write(_chunk, _enc, done) {
              done();
            },
          });
      const logger = createLogger({ source: 'conformance', level: 'debug', destination: sink });
      const report = await runConformance(parsed.data, logger);
      if (parsed.data.json) console.log(JSON.stringify(report, null, 2));
      else {
        console.log(`flota conformance: ${report.command.join(' ')} as ${report.workerId}\n`);
        if (report.error) console.log(`could not run the checks: ${report.error}`);
        else console.log(formatTable(report.checks));
      }
      process.exitCode = report.ok ? 0 : 1;
    });
}
