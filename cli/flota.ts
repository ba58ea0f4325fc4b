/** `flota` — one CLI for every role: up (all-in-one), master, worker, submit, workers. */
import { Command } from 'commander';
import { FlotaError } from '../common/errors.ts';
import { runMasterFromEnv } from '../master/src/main.ts';
import { runWorkerFromEnv } from '../worker/src/main.ts';
import { clientCommands } from './client-commands.ts';
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
    '\nConfigured by environment variables: PORT, GRPC_PORT, MQTT_PORT, WORKERS, ... (see README).',
  )
  .action(async () => {
    await runUp();
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

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof FlotaError) console.error(`flota: ${err.message}`);
  else console.error(err);
  process.exit(1);
}
