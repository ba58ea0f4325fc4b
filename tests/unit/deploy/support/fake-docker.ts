/**
 * A stand-in `docker` for the operator scripts (deploy.sh, scale.sh,
 * stop.sh), put first on PATH. It keeps its swarm in a directory: nodes with
 * their labels and advertised GPUs, secrets with their labels, services with
 * their replica counts, and the registry's images. It records what `docker
 * stack deploy`, `docker service scale` and `docker stack rm` were run with,
 * and with FAKE_HANG=1 those three never return, like a swarm that cannot
 * place a task.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, type RunResult, run } from './tools.ts';

const FAKE_DOCKER = `#!/bin/sh
# The swarm in $FAKE_SWARM:
#   nodes/<id>       "label <key>=<value>" lines; "resources <json>" as docker node
#                    inspect prints .Description.Resources.GenericResources
#   secrets/<name>   the secret's labels, one per line
#   services/<name>  its replica count
#   registry/<image> an image the registry has (/ and : as _)
set -eu
for last in "$@"; do :; done
waits() { [ "\${FAKE_HANG:-0}" = 0 ] || exec sleep 30; }
case "$1 $2" in
  "info --format") echo true ;;
  "node ls")
    label=$(printf '%s\\n' "$*" | sed -n 's/.*--filter node.label=\\([^ ]*\\).*/\\1/p')
    for node in "$FAKE_SWARM"/nodes/*; do
      [ -f "$node" ] || continue
      if [ -z "$label" ] || grep -qxF "label $label" "$node"; then basename "$node"; fi
    done ;;
  "node update") ;;
  "node inspect")
    shift 2
    [ "$1" = --format ] && shift 2
    for id in "$@"; do
      resources=$(sed -n 's/^resources //p' "$FAKE_SWARM/nodes/$id")
      echo "\${resources:-null}"
    done ;;
  "secret inspect")
    [ -f "$FAKE_SWARM/secrets/$last" ] || exit 1
    # --format '{{index .Spec.Labels "<key>"}}': that label's value, or nothing.
    key=$(printf '%s\\n' "$*" | sed -n 's/.*Labels "\\([^"]*\\)".*/\\1/p')
    [ -z "$key" ] || sed -n "s/^$key=//p" "$FAKE_SWARM/secrets/$last" ;;
  "secret create")
    shift 2
    labels=""
    while [ "$1" = --label ]; do labels="$labels$2
"; shift 2; done
    printf '%s' "$labels" >"$FAKE_SWARM/secrets/$1" ;;
  "secret rm") rm "$FAKE_SWARM/secrets/$3" ;;
  "service inspect")
    [ -f "$FAKE_SWARM/services/$last" ] || exit 1
    cat "$FAKE_SWARM/services/$last" ;;
  "service scale")
    echo "$*" >>"$FAKE_SWARM/calls"
    waits ;;
  "manifest inspect")
    echo "$*" >>"$FAKE_SWARM/calls"
    [ -f "$FAKE_SWARM/registry/$(echo "$last" | tr '/:' '__')" ] ||
      { echo "no such manifest: $last" >&2; exit 1; } ;;
  # A stack without services here: deploy.sh has nothing to wait for.
  "stack services") ;;
  "stack ls") if [ -f "$FAKE_SWARM/stack" ]; then cat "$FAKE_SWARM/stack"; fi ;;
  "stack rm")
    echo "$*" >>"$FAKE_SWARM/calls"
    waits
    rm -f "$FAKE_SWARM/stack" ;;
  "stack deploy")
    shift 2
    while [ $# -gt 1 ]; do
      if [ "$1" = -c ]; then
        [ -r "$2" ] || { echo "fake docker: cannot read compose file $2 from $PWD" >&2; exit 3; }
        echo "$2" >>"$FAKE_SWARM/compose-files"
      fi
      shift
    done
    waits
    env | grep -E '^(AUTOSCALER_REPLICAS|CPU_WORKERS|GPU_WORKERS|PYTHON_WORKERS|STACK)=' | sort >"$FAKE_SWARM/deployed" ;;
  *) echo "fake docker: unexpected $*" >&2; exit 2 ;;
esac
`;

export interface FakeSwarm {
  /** The directory the fake keeps its swarm in. */
  readonly dir: string;
  /** Adds a node with these labels ("flota.data=true") and generic resources. */
  addNode(id: string, labels: string[], resources?: unknown[]): void;
  /** Sets a service's replica count. */
  setService(name: string, replicas: number): void;
  /** Writes a secret with these labels ("flota.stack=flota"). */
  setSecret(name: string, labels: string[]): void;
  /** Makes the registry hold `image` (e.g. reg.example:5000/flota-master:1.0.0). */
  push(image: string): void;
  /** Marks a stack as deployed, for `docker stack ls`. */
  setStack(name: string): void;
  /** A secret's labels as the fake recorded them. */
  secretLabels(name: string): string;
  /** Docker commands recorded so far: scale, stack rm, manifest inspect. */
  calls(): string[];
  /** The compose files `docker stack deploy` got, in order. */
  composeFiles(): string[];
  /** The variables `docker stack deploy` ran with, or undefined if it never ran. */
  deployed(): Record<string, string> | undefined;
  /** Runs a script of the repository with the fake first on PATH. */
  run(script: string, args: string[], env?: Record<string, string>, cwd?: string): RunResult;
  remove(): void;
}

const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];

export function createFakeSwarm(): FakeSwarm {
  const dir = mkdtempSync(join(tmpdir(), 'flota-fake-swarm-'));
  const swarm = join(dir, 'swarm');
  for (const sub of ['nodes', 'secrets', 'services', 'registry']) {
    mkdirSync(join(swarm, sub), { recursive: true });
  }
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'docker'), FAKE_DOCKER);
  chmodSync(join(dir, 'bin', 'docker'), 0o755);
  return {
    dir,
    addNode(id, labels, resources) {
      const text = labels.map((l) => `label ${l}\n`).join('');
      const json = resources === undefined ? '' : `resources ${JSON.stringify(resources)}\n`;
      writeFileSync(join(swarm, 'nodes', id), text + json);
    },
    setService(name, replicas) {
      writeFileSync(join(swarm, 'services', name), `${replicas}\n`);
    },
    setSecret(name, labels) {
      writeFileSync(join(swarm, 'secrets', name), labels.map((l) => `${l}\n`).join(''));
    },
    push(image) {
      writeFileSync(join(swarm, 'registry', image.replaceAll(/[/:]/g, '_')), '');
    },
    setStack(name) {
      writeFileSync(join(swarm, 'stack'), `${name}\n`);
    },
    secretLabels: (name) => readFileSync(join(swarm, 'secrets', name), 'utf8'),
    calls: () => lines(join(swarm, 'calls')),
    composeFiles: () => lines(join(swarm, 'compose-files')),
    deployed() {
      const file = join(swarm, 'deployed');
      if (!existsSync(file)) return undefined;
      return Object.fromEntries(lines(file).map((line) => line.split('=') as [string, string]));
    },
    run(script, args, env = {}, cwd = ROOT) {
      return run(join(ROOT, script), args, {
        cwd,
        env: {
          PATH: `${join(dir, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
          FAKE_SWARM: swarm,
          SECRETS_DIR: join(dir, 'secrets'),
          ...env,
        },
      });
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
