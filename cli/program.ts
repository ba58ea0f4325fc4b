/** Every command of the `flota` CLI, with its help (cli/flota.ts starts a bare role without it). */
import { Command } from 'commander';
import { autoscaleFlagFromNpm } from '../autoscaler/src/config.ts';
import { clientCommands } from './client-commands.ts';
import { environment } from './config.ts';
import { conformanceCommand } from './conformance/command.ts';
import { doctorCommand } from './doctor.ts';
import { auditCommand, fleetCommand, workerSubcommands } from './fleet-commands.ts';
import { tasksCommand, usageCommand } from './history-commands.ts';
import { ROLES } from './roles.ts';
import { issueWorkerCredential, tokenCommand } from './token.ts';

// Each role loads only its own code when it runs: a worker never loads the
// master's HTTP, Socket.IO and store stack.

const program = new Command()
  .name('flota')
  .description(
    'A master–worker AI task system: durable queue, MQTT dispatch, gRPC results, chat UI.',
  )
  .showHelpAfterError()
  // `flota workers drain ID --json`: options after a subcommand are that subcommand's.
  .enablePositionalOptions();

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
    const { runUp } = await import('./up.ts');
    await runUp(env, { autoscale });
  });

program
  .command('autoscale')
  .description(
    "run the autoscaler: AUTOSCALE_DRIVER=swarm scales a stack's worker services, local starts worker processes",
  )
  .action(async () => {
    const { runAutoscalerFromEnv } = await import('../autoscaler/src/main.ts');
    await runAutoscalerFromEnv(environment(), issueWorkerCredential);
  });

program
  .command('master')
  .description('run the master (HTTP + Socket.IO, queue dispatcher, gRPC callback server)')
  .action(ROLES.master);

program
  .command('worker')
  .description(
    'run one worker (MQTT_URL, MASTER_GRPC, WORKER_ID, WORKER_KIND, SLOTS, PROVIDER, MODELS, ...)',
  )
  .action(ROLES.worker);

for (const command of clientCommands()) {
  if (command.name() === 'workers') {
    for (const sub of workerSubcommands()) command.addCommand(sub);
  }
  program.addCommand(command);
}
program.addCommand(fleetCommand());
program.addCommand(auditCommand());
program.addCommand(tasksCommand());
program.addCommand(usageCommand());
program.addCommand(tokenCommand());
program.addCommand(doctorCommand(environment));
program.addCommand(conformanceCommand());

export async function runProgram(argv: string[]): Promise<void> {
  await program.parseAsync(argv);
}
