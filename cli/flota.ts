/** `flota` — one CLI for every role: up (all-in-one), master, worker, submit, workers. */
import { Command, Option } from 'commander';
import { FlotaError } from '../common/errors.ts';
import { runMasterFromEnv } from '../master/src/main.ts';
import { runWorkerFromEnv } from '../worker/src/main.ts';
import { submitCommand, workersCommand } from './client-commands.ts';
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

const urlOption = () =>
  new Option('--url <url>', 'master HTTP address')
    .env('FLOTA_URL')
    .default('http://127.0.0.1:8080');

program
  .command('submit')
  .description('submit a prompt through the REST API and wait for the answer')
  .argument('<prompt...>', 'the prompt text')
  .addOption(urlOption())
  .option('-m, --model <model>', 'model to use (default: the first one online)')
  .option('--gpu', 'require a GPU worker', false)
  .option('-p, --priority <n>', 'priority 0-1000, higher runs first', (v) => Number.parseInt(v, 10))
  .option('--no-wait', 'print the task id and return at once')
  .option('--json', 'print the final task as JSON', false)
  .action(async (words: string[], opts) => {
    process.exitCode = await submitCommand(words.join(' '), opts);
  });

program
  .command('workers')
  .description('list the workers the master knows')
  .addOption(urlOption())
  .option('--json', 'print JSON', false)
  .action(async (opts) => {
    process.exitCode = await workersCommand(opts);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof FlotaError) console.error(`flota: ${err.message}`);
  else console.error(err);
  process.exit(1);
}
