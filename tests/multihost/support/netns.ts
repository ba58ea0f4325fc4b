/**
 * A small network of Linux network namespaces for one run: a "switch"
 * namespace holding a bridge, and one namespace per machine, each wired to
 * the bridge by a veth pair ("the cable") and given its own address in a
 * private /24. The test process joins the bridge with a veth of its own, so
 * it reaches the machines over the same wire they use and nothing else of the
 * host's network changes.
 *
 * Every namespace name carries the run's id and the pid of the test process
 * that owns it: a later run removes what an earlier, crashed one left behind
 * (owner gone) and leaves a run in progress alone.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const PREFIX = 'flmh';
const NAME = /^flmh-([0-9a-f]{6})-(\d+)-([a-z0-9]+)$/;
const ROOT_LINK = /^\d+: (flmh[0-9a-f]{6})[@:]/gm;
/** Private range of the run's /24; the third octet is drawn per run. */
const SUBNET_BASE = '10.213';
const BRIDGE = 'br0';
/** The test process's own address; machines count up from MACHINE_HOST_BASE. */
const CLIENT_HOST = 1;
const MACHINE_HOST_BASE = 10;

function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || (err as Error).message}`);
  }
}

/** Runs `ip`, ignoring failure: cleanup of something that may be gone already. */
function ipQuiet(args: string[]): void {
  try {
    ip(args);
  } catch {
    // already gone, or never made
  }
}

function listNamespaces(): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

/** Pids of the processes inside `netns` (seen from this pid namespace). */
export function pidsIn(netns: string): number[] {
  try {
    return ip(['netns', 'pids', netns])
      .split('\n')
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 0);
  } catch {
    return [];
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}

/** Why this process cannot build the network, or undefined when it can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root (ip netns add)';
  const probe = `${PREFIX}-probe-${process.pid}`;
  try {
    ip(['netns', 'add', probe]);
  } catch (err) {
    return `cannot create a network namespace: ${(err as Error).message}`;
  } finally {
    ipQuiet(['netns', 'del', probe]);
  }
  return undefined;
}

/**
 * Removes namespaces (and the test's veth) of earlier runs whose test process
 * is gone, killing whatever still runs inside them. Returns the run ids removed.
 */
export function sweepLeftovers(): string[] {
  const runs = new Map<string, { owner: number; namespaces: string[] }>();
  for (const name of listNamespaces()) {
    const match = NAME.exec(name);
    if (!match) continue;
    const id = match[1] as string;
    const run = runs.get(id) ?? { owner: Number(match[2]), namespaces: [] };
    run.namespaces.push(name);
    runs.set(id, run);
  }
  const removed: string[] = [];
  for (const [id, run] of runs) {
    if (run.owner !== process.pid && pidAlive(run.owner)) continue;
    for (const netns of run.namespaces) killAll(pidsIn(netns));
    ipQuiet(['link', 'del', `${PREFIX}${id}`]);
    for (const netns of run.namespaces) ipQuiet(['netns', 'del', netns]);
    removed.push(id);
  }
  // A test veth whose switch is already gone (its peer went with the namespace).
  for (const [, link] of ip(['-o', 'link', 'show']).matchAll(ROOT_LINK)) {
    if (!runs.has((link as string).slice(PREFIX.length))) ipQuiet(['link', 'del', link as string]);
  }
  return removed;
}

export interface Machine {
  /** Short name, e.g. "hosta"; also the switch port's suffix. */
  readonly name: string;
  readonly netns: string;
  readonly address: string;
}

export interface Lab {
  readonly id: string;
  /** The test process's address on the bridge. */
  readonly clientAddress: string;
  readonly machines: readonly Machine[];
  addMachine(name: string): Machine;
  /** Pulls the machine's cable: its switch port goes down, nothing is closed. */
  cut(machine: Machine): void;
  /** Plugs it back in. */
  restore(machine: Machine): void;
  /** Kills every process left in the run's namespaces and deletes them. Idempotent, synchronous. */
  destroy(): void;
}

function pickSubnet(): string {
  const routes = ip(['-4', 'route', 'show', 'table', 'all']);
  for (let tries = 0; tries < 50; tries++) {
    const subnet = `${SUBNET_BASE}.${randomBytes(1)[0]}`;
    if (!routes.includes(`${subnet}.`)) return subnet;
  }
  throw new Error(`no free /24 under ${SUBNET_BASE}.0.0/16 on this host`);
}

export function createLab(): Lab {
  const id = randomBytes(3).toString('hex');
  const nsName = (role: string) => `${PREFIX}-${id}-${process.pid}-${role}`;
  const subnet = pickSubnet();
  const switchNs = nsName('sw');
  const rootLink = `${PREFIX}${id}`;
  const namespaces: string[] = [];
  const machines: Machine[] = [];
  let destroyed = false;

  const addNamespace = (netns: string) => {
    ip(['netns', 'add', netns]);
    namespaces.push(netns);
    ip(['-n', netns, 'link', 'set', 'lo', 'up']);
  };
  const plugIn = (port: string) => {
    ip(['-n', switchNs, 'link', 'set', port, 'master', BRIDGE]);
    ip(['-n', switchNs, 'link', 'set', port, 'up']);
  };

  const lab: Lab = {
    id,
    clientAddress: `${subnet}.${CLIENT_HOST}`,
    machines,
    addMachine(name) {
      if (!/^[a-z0-9]{1,10}$/.test(name)) throw new Error(`machine name ${name}: 1-10 of a-z 0-9`);
      const netns = nsName(name);
      addNamespace(netns);
      ip([
        '-n',
        switchNs,
        'link',
        'add',
        `p-${name}`,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        netns,
      ]);
      plugIn(`p-${name}`);
      const address = `${subnet}.${MACHINE_HOST_BASE + machines.length}`;
      ip(['-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
      const machine = { name, netns, address };
      machines.push(machine);
      return machine;
    },
    cut: (machine) => ip(['-n', switchNs, 'link', 'set', `p-${machine.name}`, 'down']),
    restore: (machine) => ip(['-n', switchNs, 'link', 'set', `p-${machine.name}`, 'up']),
    destroy() {
      if (destroyed) return;
      destroyed = true;
      for (const netns of namespaces) killAll(pidsIn(netns));
      // Deleting a namespace frees its veths only later, asynchronously: delete ours now.
      ipQuiet(['link', 'del', rootLink]);
      for (const netns of namespaces) ipQuiet(['netns', 'del', netns]);
    },
  };

  try {
    addNamespace(switchNs);
    ip(['-n', switchNs, 'link', 'add', BRIDGE, 'type', 'bridge']);
    ip(['-n', switchNs, 'link', 'set', BRIDGE, 'up']);
    ip(['link', 'add', rootLink, 'type', 'veth', 'peer', 'name', 'p-client', 'netns', switchNs]);
    plugIn('p-client');
    ip(['addr', 'add', `${lab.clientAddress}/24`, 'dev', rootLink]);
    ip(['link', 'set', rootLink, 'up']);
  } catch (err) {
    lab.destroy();
    throw err;
  }
  return lab;
}

/** Namespaces of this run still present (after destroy(): none, once the kernel caught up). */
export function namespacesOf(lab: Lab): string[] {
  return listNamespaces().filter((name) => name.startsWith(`${PREFIX}-${lab.id}-`));
}
