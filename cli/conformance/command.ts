/**
 * `flota conformance -- <worker command…>`: starts a master of its own,
 * runs the worker command against it, and holds the worker to
 * docs/PROTOCOL.md, check by check (docs/PROTOCOL.md § Conformance). With
 * `--attach` it tests a worker its author starts instead.
 */
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { createLogger } from '../../common/logger.ts';
import { formatZodError } from '../../common/zod-error.ts';
import { ATTACH_DEFAULTS, conformanceOptionsSchema } from './options.ts';

interface RawOptions {
  attach?: boolean;
  writeEnv?: string;
  attachTimeoutS?: string;
  pid?: string;
  host?: string;
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
  return (
    new Command('conformance')
      .description(
        'hold a worker to the wire protocol: start a master of its own, run the worker command against it (or attach to a worker you start), report each check',
      )
      .argument('[command...]', 'the worker command, after --, e.g. -- node bin/flota.mjs worker')
      .option(
        '--attach',
        'no command: print the environment, wait for a worker you start with it, and test that',
      )
      // Not --env-file: node itself reads that flag even after the script name, and exits when its file is missing.
      .option('--write-env <path>', 'with --attach: also write the environment there (mode 0600)')
      .option(
        '--attach-timeout-s <s>',
        `with --attach: how long to wait for the worker to come online (default: ${ATTACH_DEFAULTS.timeoutS})`,
      )
      .option(
        '--pid <pid>',
        "with --attach: the worker's local process, so the checks that signal it run too",
      )
      .option(
        '--host <host>',
        `with --attach: where the kit's broker and relay listen, the address the worker dials (default: ${ATTACH_DEFAULTS.host})`,
      )
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
          attach: raw.attach ?? false,
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
        const options = parsed.data;
        const { runConformance } = await import('./run.ts');
        const { formatSkipped, formatTable, selectChecks, UnknownCheckError } = await import(
          './runner.ts'
        );
        try {
          selectChecks(options.checks);
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
        const report = await runConformance(options, logger, (text) => console.error(text));
        // Attached, some checks may not apply: say which at once, where the table's reader looks.
        const skippedLine = options.attach ? formatSkipped(report.checks) : undefined;
        if (options.json) {
          console.log(JSON.stringify(report, null, 2));
          if (skippedLine) console.error(skippedLine);
        } else {
          const subject = options.attach
            ? `the attached worker${options.attach.pid ? ` (pid ${options.attach.pid})` : ''}`
            : report.command.join(' ');
          console.log(`flota conformance: ${subject} as ${report.workerId}\n`);
          if (report.error) console.log(`could not run the checks: ${report.error}`);
          else console.log(formatTable(report.checks));
          if (skippedLine) console.log(skippedLine);
        }
        process.exitCode = report.ok ? 0 : 1;
      })
  );
}
