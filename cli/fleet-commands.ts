/**
 * Fleet control and the audit trail from the command line, through the
 * master's REST API (an admin token): `flota workers list|drain|resume|
 * stop|restart|config|cordon|uncordon`, `flota fleet stop|resume|status`,
 * `flota audit`. Options are checked with the API's own schemas first.
 */
import { Command } from 'commander';
import type { z } from 'zod';
import { type AuditPage, auditPageSchema, auditQuerySchema } from '../proto/src/schemas/audit.ts';
import {
  type CordonResponse,
  cordonResponseSchema,
  type FleetState,
  fleetStateSchema,
  type WorkerCommandResponse,
  workerCommandResponseSchema,
  workerConfigRequestSchema,
  workerSelectorSchema,
} from '../proto/src/schemas/fleet.ts';
import { workerIdSchema } from '../proto/src/schemas/worker.ts';
import { integer, label, workersCommand } from './client-commands.ts';
import {
  api,
  baseOf,
  type ClientOptions,
  check,
  clientSchema,
  queryOf,
  tokenOption,
  urlOption,
} from './master-api.ts';

/** A new client command with --url, --token and --json. */
export function clientCommand(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .addOption(urlOption())
    .addOption(tokenOption())
    .option('--json', 'print JSON', false)
    .showHelpAfterError();
}

export async function call<T>(
  opts: ClientOptions,
  path: string,
  init: { method: string; body?: unknown },
  schema: z.ZodType<T>,
): Promise<T> {
  const { url, token } = check(clientSchema, opts);
  return api(
    `${baseOf(url)}${path}`,
    token,
    { method: init.method, body: init.body === undefined ? undefined : JSON.stringify(init.body) },
    schema,
  );
}

function printCommand(reply: WorkerCommandResponse, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(reply, null, 2));
    return;
  }
  const w = reply.worker;
  const state = w
    ? ` — ${w.state}${w.draining ? ', draining' : ''}, ${w.active}/${w.slots} slots, models ${w.models.join(',')}`
    : '';
  console.log(`${reply.command} ${reply.workerId}: acknowledged${state}`);
}

function printCordon(reply: CordonResponse, json: boolean, verb: string): number {
  if (json) console.log(JSON.stringify(reply, null, 2));
  else if (reply.workers.length === 0) console.log(`${verb}: no online worker matches (yet)`);
  else {
    for (const w of reply.workers) {
      console.log(`${verb} ${w.workerId}: ${w.ok ? 'acknowledged' : `failed — ${w.error}`}`);
    }
  }
  return reply.workers.every((w) => w.ok) ? 0 : 1;
}

function printFleet(state: FleetState, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(state, null, 2));
    return;
  }
  const stop = state.stopped;
  console.log(
    stop
      ? `dispatch: stopped since ${new Date(stop.at).toISOString()} by ${stop.by ?? '-'} (running tasks: ${stop.running}, ${stop.cancelled} cancelled)`
      : 'dispatch: running',
  );
  for (const d of state.drained) {
    console.log(`drained: ${d.workerId} since ${new Date(d.at).toISOString()} by ${d.by ?? '-'}`);
  }
  for (const c of state.cordons) {
    console.log(`cordon: ${JSON.stringify(c.selector)} by ${c.by ?? '-'}`);
  }
}

/** One worker command: `flota workers <name> <id>`. */
function workerCommand(
  name: 'drain' | 'resume' | 'stop' | 'restart',
  description: string,
): Command {
  return clientCommand(name, description)
    .argument('<id>', 'the worker id')
    .action(async (id: string, opts: ClientOptions) => {
      const workerId = check(workerIdSchema, id);
      const reply = await call(
        opts,
        `/api/workers/${encodeURIComponent(workerId)}/${name}`,
        { method: 'POST', body: {} },
        workerCommandResponseSchema,
      );
      printCommand(reply, opts.json);
    });
}

interface ConfigOptions extends ClientOptions {
  slots?: number;
  models?: string;
  weight?: number;
  label?: Record<string, string>;
}

interface SelectorOptions extends ClientOptions {
  kind?: string;
  label?: Record<string, string>;
}

function selectorCommand(name: 'cordon' | 'uncordon', description: string): Command {
  return clientCommand(name, description)
    .option('--kind <kind>', 'workers of this kind: cpu or gpu')
    .option('--label <key=value>', 'workers carrying this label; repeatable', label)
    .action(async (opts: SelectorOptions) => {
      const selector = check(workerSelectorSchema, { kind: opts.kind, labels: opts.label });
      const path = name === 'cordon' ? '/api/workers/drain' : '/api/workers/resume';
      const reply = await call(
        opts,
        path,
        { method: 'POST', body: selector },
        cordonResponseSchema,
      );
      process.exitCode = printCordon(reply, opts.json, name === 'cordon' ? 'drain' : 'resume');
    });
}

/** Subcommands of `flota workers`. */
export function workerSubcommands(): Command[] {
  const list = clientCommand('list', 'list the workers the master knows').action(
    async (opts: ClientOptions) => {
      process.exitCode = await workersCommand(opts);
    },
  );
  const config = clientCommand('config', 'change a worker’s slots, models, weight or labels live')
    .argument('<id>', 'the worker id')
    .option('--slots <n>', 'tasks it runs at once', integer)
    .option('--models <a,b>', 'the models it serves (comma-separated)')
    .option('--weight <n>', 'its share under weighted-round-robin', integer)
    .option('--label <key=value>', 'its labels, all of them; repeatable', label)
    .action(async (id: string, opts: ConfigOptions) => {
      const workerId = check(workerIdSchema, id);
      const body = check(workerConfigRequestSchema, {
        slots: opts.slots,
        models: opts.models?.split(',').map((m) => m.trim()),
        weight: opts.weight,
        labels: opts.label,
      });
      const reply = await call(
        opts,
        `/api/workers/${encodeURIComponent(workerId)}/config`,
        { method: 'PATCH', body },
        workerCommandResponseSchema,
      );
      printCommand(reply, opts.json);
    });
  return [
    list,
    workerCommand('drain', 'finish running tasks, take no new ones'),
    workerCommand('resume', 'take work again after a drain'),
    workerCommand('stop', 'stop gracefully: running tasks finish, then it leaves'),
    workerCommand('restart', 'stop gracefully, then exit for its supervisor to start it again'),
    config,
    selectorCommand('cordon', 'drain every worker of a kind or with labels, and any that joins'),
    selectorCommand('uncordon', 'lift a cordon and resume the workers it covers'),
  ];
}

/** `flota fleet stop|resume|status`. */
export function fleetCommand(): Command {
  const fleet = new Command('fleet').description('all dispatch at once (emergency stop)');
  fleet.addCommand(
    clientCommand('stop', 'stop all dispatch now: queued tasks stay queued')
      .option('--cancel-running', 'also cancel every running task (default: they finish)', false)
      .action(async (opts: ClientOptions & { cancelRunning: boolean }) => {
        const running = opts.cancelRunning ? 'cancel' : 'keep';
        const state = await call(
          opts,
          '/api/fleet/stop',
          { method: 'POST', body: { running } },
          fleetStateSchema,
        );
        printFleet(state, opts.json);
      }),
  );
  fleet.addCommand(
    clientCommand('resume', 'resume dispatch after a stop').action(async (opts: ClientOptions) => {
      const state = await call(
        opts,
        '/api/fleet/resume',
        { method: 'POST', body: {} },
        fleetStateSchema,
      );
      printFleet(state, opts.json);
    }),
  );
  fleet.addCommand(
    clientCommand('status', 'whether dispatch runs; drained workers and cordons').action(
      async (opts: ClientOptions) => {
        printFleet(await call(opts, '/api/fleet', { method: 'GET' }, fleetStateSchema), opts.json);
      },
    ),
  );
  return fleet;
}

interface AuditOptions extends ClientOptions {
  since?: string;
  until?: string;
  action?: string;
  limit?: number;
  cursor?: string;
}

/** `flota audit`: the trail, newest first. */
export function auditCommand(): Command {
  return clientCommand('audit', 'show the audit trail, newest first')
    .option('--since <when>', 'from this instant (Unix ms or ISO 8601)')
    .option('--until <when>', 'up to this instant (Unix ms or ISO 8601)')
    .option('--action <action>', 'only this action, e.g. worker.drain')
    .option('--limit <n>', 'records per page (1-500, default 100)', integer)
    .option('--cursor <cursor>', 'continue from a page’s next cursor')
    .action(async (opts: AuditOptions) => {
      const query = check(auditQuerySchema, {
        since: opts.since,
        until: opts.until,
        action: opts.action,
        limit: opts.limit,
        cursor: opts.cursor,
      });
      const page: AuditPage = await call(
        opts,
        `/api/audit?${queryOf(query)}`,
        { method: 'GET' },
        auditPageSchema,
      );
      if (opts.json) {
        console.log(JSON.stringify(page, null, 2));
        return;
      }
      if (page.records.length === 0) console.log('no audit records');
      else {
        console.table(
          page.records.map((r) => ({
            at: new Date(r.at).toISOString(),
            actor: r.actor ?? '-',
            action: r.action,
            target: r.target ?? '',
            result: r.result,
            from: r.from ?? '',
            detail: (r.detail ?? '') + (r.count ? ` (×${r.count})` : ''),
          })),
        );
      }
      if (page.nextCursor) console.log(`more: --cursor ${page.nextCursor}`);
    });
}
