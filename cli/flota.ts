/** `flota` — one CLI for every role: up (all-in-one), master, worker, autoscale, submit, workers, token. */
import { Command } from 'commander';
import { autoscaleFlagFromNpm } from '../autoscaler/src/config.ts';
import { runAutoscalerFromEnv } from '../autoscaler/src/main.ts';
import { describeError, exitCodeOf, FlotaError } from '../common/errors.ts';
import { runMasterFromEnv } from '../master/src/main.ts';
import { runWorkerFromEnv } from '../worker/src/main.ts';
import { clientCommands } from './client-commands.ts';
import { environment } from './config.ts';
import { doctorCommand } from './doctor.ts';
import { issueWorkerCredential, tokenCommand } from './token.ts';
import { runUp } from './up.ts';

const program = new Command()
  .name('flota')
  .description(
    'A master–worker AI task system: durable queue, MQTT dispatch, gRPC results, chat UI.',
  )
  .showHelpAfterError();

program
  .command('up')
  .description(
    'run everything on this machine: master, embedded broker and store, and $WORKERS local workers',
  )
  .addHelpText(
    'after',
    '\nConfigured by environment variables: PORT, GRPC_PORT, MQTT_PORT, WORKERS, ... (see docs/CONFIGURATION.md).',
  )
  .option(
    '--autoscale',
    'size the local workers to the load, between AUTOSCALE_MIN and AUTOSCALE_MAX (see docs/OPERATIONS.md)',
  )
  .action(async (options: { autoscale?: boolean }) => {
    const env = environment();
    const autoscale = options.autoscale === true || autoscaleFlagFromNpm(env);
    await runUp(env, { autoscale });
  });

program
  .command('autoscale')
  .description(
    "run the autoscaler: AUTOSCALE_DRIVER=swarm scales a stack's worker services, local starts worker processes",
  )
  .action(async () => {
    await runAutoscalerFromEnv(environment(), issueWorkerCredential);
  });

program
  .command('master')
  .description('run the master (HTTP + Socket.IO, queue dispatcher, gRPC callback server)')
  .action(async () => {
    await runMasterFromEnv();
  });

program
  .command('worker')
  .description(
    'run one worker (MQTT_URL, MASTER_GRPC, WORKER_ID, WORKER_KIND, SLOTS, PROVIDER, MODELS, ...)',
  )
  .action(async () => {
    await runWorkerFromEnv();
  });

for (const command of clientCommands()) program.addCommand(command);
program.addCommand(tokenCommand());
program.addCommand(doctorCommand(environment));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // A FlotaError is for a person to act on: its text, no stack. Anything else is a bug: all of it.
  if (err instanceof FlotaError) console.error(describeError(err));
  else console.error(err);
  process.exit(exitCodeOf(err));
}
