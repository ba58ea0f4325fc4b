/**
 * The scenarios of the Swarm test, against a stack that scripts/swarm-test.sh
 * built and deployed on a real Docker engine. Each step prints its time;
 * the first failure ends the run (exit 1), and the shell script cleans up.
 *
 *   node --import tsx tests/swarm/run.ts     (only through scripts/swarm-test.sh)
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Api, Session, sleep, until } from './client.ts';
import { readConfig } from './config.ts';
import { Docker } from './docker.ts';

const config = readConfig();
const docker = new Docker(config);
const secret = (name: string) => readFileSync(join(config.SECRETS_DIR, name), 'utf8').trim();
const token = (secret('api_tokens').split('\n')[0] ?? '').split(':')[1] ?? '';
const api = new Api(`https://127.0.0.1:${config.HTTP_PORT}`, token);
const network = `${config.STACK}_flota`;

function say(message: string) {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} swarm-test:   ${message}\n`);
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/** A prompt whose echo takes about `seconds` (ECHO_DELAY_MS 400 per 16 characters). */
function slowPrompt(label: string, seconds: number) {
  const body = `${label} ${Date.now()} `;
  return body.padEnd(Math.max(body.length, Math.round((seconds / 0.4) * 16) - 6), '.');
}

async function expectCompleted(ids: string[], prompts: Map<string, string>, timeoutMs: number) {
  const views = await api.finished(ids, timeoutMs);
  for (const [id, view] of views) {
    check(view.state === 'completed', `task ${id} ended ${view.state}`);
    check(view.result === `echo: ${prompts.get(id)}`, `task ${id} has a wrong result`);
  }
  return views;
}

// --- the steps ----------------------------------------------------------------

async function secrets() {
  // API tokens: none, a wrong one, the right one.
  check(
    (await api.request('/api/workers', {}, null)).status === 401,
    'the API answered without a token',
  );
  check(
    (await api.request('/api/workers', {}, 'not-a-token')).status === 401,
    'the API took a wrong token',
  );
  check(
    (await api.request('/api/workers')).status === 200,
    'the API refused the token of api_tokens',
  );
  say('ok: the API refuses requests without a listed token');

  // Mounted where the stack says, and never in a service's spec.
  const mounted: Record<string, string[]> = {
    master: [
      'api_tokens',
      'flota_secret',
      'mqtt_master_password',
      'queue_url',
      'tls_cert',
      'tls_key',
    ],
    'worker-cpu': ['tls_ca', 'worker_join_cpu'],
    mosquitto: ['mqtt_master_password', 'mqtt_observer_password'],
    redis: ['redis_acl', 'redis_password'],
  };
  for (const [service, names] of Object.entries(mounted)) {
    const [container] = await docker.containers(service);
    check(container !== undefined, `no running container of ${service}`);
    const listed = (await docker.cli(['exec', container.id, 'ls', '/run/secrets'])).split('\n');
    for (const name of names) check(listed.includes(name), `${service} lacks /run/secrets/${name}`);
    const spec = await docker.cli(['service', 'inspect', docker.service(service)]);
    for (const name of names) {
      const value = secret(name);
      if (value.length >= 12) check(!spec.includes(value), `docker service inspect shows ${name}`);
    }
  }
  say('ok: secrets mounted as files, none visible in docker service inspect');

  // MQTT passwords: anonymous refused, the observer's password accepted.
  const sub = (login: string[]) =>
    docker.raw([
      'run',
      '--rm',
      '--network',
      network,
      'eclipse-mosquitto:2.0',
      'mosquitto_sub',
      '-h',
      'mosquitto',
      '-t',
      'flota/v1/logs/#',
      '-C',
      '1',
      '-W',
      '3',
      ...login,
    ]);
  const anonymous = await sub([]);
  check(
    anonymous.code !== 0 && /not authori[sz]ed|refused/i.test(anonymous.stderr + anonymous.stdout),
    `Mosquitto let an anonymous client in (exit ${anonymous.code}: ${anonymous.stderr.trim()})`,
  );
  const observer = await sub([
    '-u',
    '_observer',
    '-P',
    secret('mqtt_observer_password'),
    '-i',
    'flota-observer',
  ]);
  // 27: connected, and the -W wait ran out; 0: a log line came.
  check(
    observer.code === 0 || observer.code === 27,
    `Mosquitto refused _observer (exit ${observer.code}: ${observer.stderr.trim()})`,
  );
  say('ok: Mosquitto refuses anonymous clients and takes mqtt_observer_password');

  // A worker without a credential of this installation is refused.
  const ca = join(config.SWARM_WORK, 'tls_ca.pem');
  copyFileSync(join(config.SECRETS_DIR, 'tls_ca'), ca);
  chmodSync(ca, 0o644);
  const forged = `fjt1.cpu-.${Date.now().toString(36)}.${'A'.repeat(43)}`;
  const intruder = await docker.raw(
    [
      'run',
      '--rm',
      '--network',
      network,
      '-v',
      `${ca}:/ca.pem:ro`,
      '-e',
      'WORKER_ID=cpu-77',
      '-e',
      `WORKER_JOIN_TOKEN=${forged}`,
      '-e',
      'MQTT_URL=mqtt://mosquitto:1883',
      '-e',
      'MASTER_GRPC=master:50051',
      '-e',
      'GRPC_TLS=true',
      '-e',
      'TLS_CA=/ca.pem',
      `${config.REGISTRY}/flota-worker:${config.TAG}`,
      'worker',
    ],
    60_000,
  );
  check(intruder.code !== 0, 'a worker with a forged join token kept running');
  check(
    !(await api.onlineWorkers()).includes('cpu-77'),
    'a worker with a forged join token came online',
  );
  const why = (intruder.stderr + intruder.stdout)
    .split('\n')
    .find((line) => /refus|denied|invalid|unauth/i.test(line));
  say(
    `ok: a worker with a forged join token is refused (exit ${intruder.code}: ${(why ?? '').slice(0, 160)})`,
  );
}

async function publishedPort() {
  const prompt = `through the published port ${Date.now()}`;
  const id = await api.submit(prompt);
  const views = await expectCompleted([id], new Map([[id, prompt]]), 60_000);
  say(`ok: a task through 127.0.0.1:${config.HTTP_PORT} completed on ${views.get(id)?.workerId}`);
}

async function scaleTo4() {
  await docker.script('scale.sh', ['worker-cpu', '4']);
  const online = await until('4 online workers', 60_000, async () => {
    const workers = (await api.onlineWorkers()).filter((id) => id.startsWith('cpu-'));
    return workers.length === 4 && workers;
  });
  say(`ok: scale.sh worker-cpu 4: ${online.join(', ')} online`);
}

async function pythonWorker() {
  const scaled = Date.now();
  await docker.script('scale.sh', ['worker-python', '1']);
  const worker = await until('py-1 online', 90_000, async () =>
    (await api.workers()).find((w) => w.id === 'py-1' && w.state === 'online'),
  );
  check(
    worker.version.endsWith('-python'),
    `py-1 runs version ${worker.version}, not the Python worker`,
  );
  check(worker.labels.runtime === 'python', `py-1 lacks the label runtime=python`);
  const [container] = await docker.containers('worker-python');
  check(container !== undefined, 'no running container of worker-python');
  const listed = (await docker.cli(['exec', container.id, 'ls', '/run/secrets'])).split('\n');
  check(
    listed.includes('worker_join_python') && listed.includes('tls_ca') && listed.length <= 3,
    `worker-python mounts ${listed.join(' ')}, not worker_join_python and tls_ca alone`,
  );
  const readOnly = await docker.cli([
    'inspect',
    '--format',
    '{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}',
    container.id,
  ]);
  check(
    readOnly.trim() === 'true flota',
    `worker-python runs with ${readOnly.trim()} (read-only, user)`,
  );
  // scale.sh returns once the task has run for the service's update monitor period (20 s).
  say(
    `ok: scale.sh worker-python 1 (${((Date.now() - scaled) / 1000).toFixed(1)} s): py-1 (${worker.version}) online, read-only, as user flota`,
  );

  const prompt = `on the Python worker ${Date.now()}`;
  const id = await api.submit(prompt, { requires: { labels: { runtime: 'python' } } });
  const views = await expectCompleted([id], new Map([[id, prompt]]), 60_000);
  check(views.get(id)?.workerId === 'py-1', `the task ran on ${views.get(id)?.workerId}, not py-1`);
  say(`ok: a task that requires runtime=python completed on py-1`);

  // worker_join_python admits ids py-* only.
  const ca = join(config.SWARM_WORK, 'tls_ca.pem');
  copyFileSync(join(config.SECRETS_DIR, 'tls_ca'), ca);
  chmodSync(ca, 0o644);
  const outside = await docker.raw(
    [
      'run',
      '--rm',
      '--network',
      network,
      '-v',
      `${ca}:/ca.pem:ro`,
      '-e',
      'WORKER_ID=cpu-88',
      '-e',
      `WORKER_JOIN_TOKEN=${secret('worker_join_python')}`,
      '-e',
      'MQTT_URL=mqtt://mosquitto:1883',
      '-e',
      'MASTER_GRPC=master:50051',
      '-e',
      'GRPC_TLS=true',
      '-e',
      'TLS_CA=/ca.pem',
      `${config.REGISTRY}/flota-worker-python:${config.TAG}`,
    ],
    60_000,
  );
  const refusal = (outside.stderr + outside.stdout).split('\n').find((l) => l.includes('py-'));
  check(
    outside.code !== 0 && refusal !== undefined,
    `a Python worker with worker_join_python enrolled as cpu-88 (exit ${outside.code}: ${outside.stderr.trim().slice(0, 300)})`,
  );
  check(
    !(await api.onlineWorkers()).includes('cpu-88'),
    'cpu-88 came online with the py- join token',
  );
  say(
    `ok: worker_join_python does not enroll cpu-88 (exit ${outside.code}: ${refusal.trim().slice(0, 160)})`,
  );

  await docker.script('scale.sh', ['worker-python', '0']);
  await until('py-1 offline', 30_000, async () => !(await api.onlineWorkers()).includes('py-1'));
  say('ok: scale.sh worker-python 0: py-1 went offline');
}

async function killWorker() {
  const prompts = new Map<string, string>();
  for (let i = 0; i < 6; i++) {
    const prompt = slowPrompt(`kill ${i}`, 8);
    prompts.set(await api.submit(prompt), prompt);
  }
  const ids = [...prompts.keys()];
  const victim = await until('a task running on a worker', 30_000, async () => {
    for (const id of ids) {
      const view = await api.task(id);
      if (view?.state === 'running' && view.workerId) return { id, worker: view.workerId };
    }
    return undefined;
  });
  const slot = Number(victim.worker.replace('cpu-', ''));
  const before = (await docker.containers('worker-cpu')).find((c) => c.slot === slot);
  check(before !== undefined, `no container for ${victim.worker}`);
  await docker.cli(['kill', before.id]);
  say(`killed ${victim.worker} (container ${before.id}) while it ran ${victim.id}`);
  const views = await expectCompleted(ids, prompts, 120_000);
  const moved = views.get(victim.id);
  check(
    (moved?.attempt ?? 0) >= 2,
    `task ${victim.id} finished in attempt ${moved?.attempt}, not on another attempt`,
  );
  say(
    `ok: all 6 tasks completed; ${victim.id} finished on ${moved?.workerId} (attempt ${moved?.attempt})`,
  );
  const replaced = await until(`Swarm to replace ${victim.worker}`, 60_000, async () => {
    const now = (await docker.containers('worker-cpu')).find((c) => c.slot === slot);
    return now && now.id !== before.id && now.id;
  });
  await until(`${victim.worker} online again`, 60_000, async () =>
    (await api.onlineWorkers()).includes(victim.worker),
  );
  say(`ok: Swarm replaced it (container ${replaced}), ${victim.worker} registered again`);
}

async function rollingUpdate() {
  const session = new Session(api.url, token);
  try {
    await session.connected();
    const prompts = new Map<string, string>();
    const submit = async (label: string) => {
      const prompt = slowPrompt(label, 5);
      const id = await api.submit(prompt, { session: session.id });
      session.expect(id);
      prompts.set(id, prompt);
    };
    for (let i = 0; i < 8; i++) await submit(`update before ${i}`);
    await until('tasks in flight', 20_000, async () => {
      const views = await Promise.all([...prompts.keys()].map((id) => api.task(id)));
      return views.some((view) => view?.state === 'running');
    });
    const image = `${config.REGISTRY}/flota-master:${config.NEXT_TAG}`;
    say(`updating the master to ${image} with ${prompts.size} tasks in flight`);
    const update = docker.cli(
      [
        'service',
        'update',
        '--detach=false',
        '--quiet',
        '--image',
        image,
        docker.service('master'),
      ],
      240_000,
    );
    // Submissions go on during the update (retried while the master is away).
    for (let i = 0; i < 8; i++) {
      await submit(`update during ${i}`);
      await sleep(1_000);
    }
    await update;
    const running = await docker.cli([
      'service',
      'inspect',
      '--format',
      '{{.Spec.TaskTemplate.ContainerSpec.Image}}',
      docker.service('master'),
    ]);
    check(running.startsWith(image), `the master runs ${running.trim()}, not ${image}`);
    const ids = [...prompts.keys()];
    await expectCompleted(ids, prompts, 180_000);
    await until(
      'a terminal event for every task at the client',
      30_000,
      () => session.pending.size === 0,
    ).catch((err: Error) => {
      const missing = [...session.pending];
      say(`the client has no terminal event for ${missing.join(', ')}; what it saw:`);
      for (const line of session.history.filter(
        (l) =>
          l.includes('hello') || l.includes('disconnected') || missing.some((id) => l.includes(id)),
      )) {
        say(`    ${line}`);
      }
      throw err;
    });
    const twice = [...session.terminal].filter(([, n]) => n > 1);
    check(
      twice.length === 0,
      `tasks delivered twice at the client: ${twice.map(([id]) => id).join(', ')}`,
    );
    check(
      session.terminal.size === ids.length,
      `the client got ${session.terminal.size} of ${ids.length} tasks`,
    );
    // A report that waited behind a dial to the old master's address, which
    // never ended, and went out on a new channel (worker/src/grpc-link.ts).
    const workerLogs = await docker.cli(['service', 'logs', '--raw', docker.service('worker-cpu')]);
    const redials = workerLogs
      .split('\n')
      .filter((l) => l.includes('did not answer a dial')).length;
    say(
      `ok: master updated to ${config.NEXT_TAG}; ${ids.length} tasks, each completed and delivered once (${session.reconnects - 1} reconnects; workers that dialled again: ${redials})`,
    );
  } finally {
    session.close();
  }
}

async function autoscaler() {
  await docker.script('scale.sh', ['autoscaler', '1']);
  const before = await docker.replicas('worker-cpu');
  say(`autoscaler on (pool worker-cpu:cpu:1-6), worker-cpu at ${before}`);
  const prompts = new Map<string, string>();
  for (let i = 0; i < 16; i++) {
    const prompt = slowPrompt(`backlog ${i}`, 6);
    prompts.set(await api.submit(prompt), prompt);
  }
  const from = await docker.replicas('worker-cpu');
  const up = await until('the autoscaler to scale worker-cpu up', 90_000, async () => {
    const n = await docker.replicas('worker-cpu');
    return n > from && n;
  });
  say(`ok: on a backlog of 16 tasks the autoscaler scaled worker-cpu from ${from} up to ${up}`);
  await expectCompleted([...prompts.keys()], prompts, 180_000);
  await until(
    'the autoscaler to scale worker-cpu back down to 1',
    150_000,
    async () => (await docker.replicas('worker-cpu')) === 1,
  );
  const logs = await docker.cli(['service', 'logs', '--raw', docker.service('autoscaler')]);
  check(
    /scaled worker-cpu up/.test(logs) && /scaled worker-cpu down/.test(logs),
    'the autoscaler logged no scaling',
  );
  say('ok: idle again, it scaled worker-cpu back down to 1 (through the Docker socket)');
  await docker.script('scale.sh', ['autoscaler', '0']);
}

async function redisBackup() {
  const beforePrompt = `before the backup ${Date.now()}`;
  const beforeId = await api.submit(beforePrompt);
  await expectCompleted([beforeId], new Map([[beforeId, beforePrompt]]), 60_000);
  // docs/DEPLOY.md, "Back up Redis", as written there.
  const backup = await docker.bash(`
R=$(docker ps -q -f name=${config.STACK}_redis)
rcli() { docker exec "$R" sh -c 'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" exec redis-cli "$@"' rcli "$@"; }
rcli BGREWRITEAOF
while rcli INFO persistence | grep -qE '^aof_rewrite_(in_progress|scheduled):1'; do sleep 1; done
rcli INFO persistence | grep -q '^aof_last_bgrewrite_status:ok' &&
  mkdir -p backup &&
  docker cp "$R:/data/appendonlydir" "backup/redis-aof-test"
ls backup/redis-aof-test`);
  check(backup.code === 0, `the backup failed: ${backup.stderr}`);
  say(
    `backed up ${backup.stdout
      .split('\n')
      .filter((line) => line.startsWith('appendonly'))
      .join(', ')}`,
  );
  const afterPrompt = `after the backup ${Date.now()}`;
  const afterId = await api.submit(afterPrompt);
  await expectCompleted([afterId], new Map([[afterId, afterPrompt]]), 60_000);
  const restore = await docker.bash(
    `
docker service scale ${config.STACK}_redis=0
docker run --rm -v ${config.STACK}_redis-data:/data \\
  -v "$PWD/backup/redis-aof-test:/backup:ro" alpine \\
  sh -c 'rm -rf /data/appendonlydir /data/dump.rdb && cp -r /backup /data/appendonlydir'
docker service scale ${config.STACK}_redis=1`,
    180_000,
  );
  check(restore.code === 0, `the restore failed: ${restore.stderr}`);
  const [before, after] = await until('the master to read the restored store', 90_000, async () => {
    const views = [await api.task(beforeId), await api.task(afterId)];
    return views.every((view) => view !== undefined) && views;
  });
  check(
    before?.state === 'completed',
    `the task from before the backup is ${before?.state} after the restore`,
  );
  check(
    after?.state === 'unknown',
    `the task from after the backup is ${after?.state} after the restore, not unknown`,
  );
  const prompt = `after the restore ${Date.now()}`;
  const id = await api.submit(prompt);
  await expectCompleted([id], new Map([[id, prompt]]), 60_000);
  say('ok: restored the backup: the earlier task is there, the later one gone, new tasks complete');
}

async function workersStopWithoutBroker() {
  // As in docker stack rm: broker, master and workers are told to stop at once.
  const workers = await docker.containers('worker-cpu');
  check(workers.length > 0, 'no worker to stop');
  // Each worker's log, followed to its end: what it did after SIGTERM, and when.
  const followed = workers.map((worker) => {
    const child = spawn('docker', ['logs', '-f', '-t', worker.id], { env: process.env });
    let text = '';
    child.stdout.on('data', (chunk) => (text += chunk));
    child.stderr.on('data', (chunk) => (text += chunk));
    const ended = new Promise<number>((resolve) => child.on('close', () => resolve(Date.now())));
    return { worker, ended, text: () => text };
  });
  await sleep(500);
  const started = Date.now();
  await docker.cli([
    'service',
    'rm',
    docker.service('mosquitto'),
    docker.service('master'),
    docker.service('worker-cpu'),
  ]);
  await until(
    'the workers to exit',
    60_000,
    async () => (await docker.containers('worker-cpu')).length === 0,
  );
  let slowest = 0;
  for (const { worker, ended, text } of followed) {
    const seconds = ((await ended) - started) / 1000;
    slowest = Math.max(slowest, seconds);
    const lines = text()
      .split('\n')
      .filter((line) => /SIGTERM|stopping|stopped|offline|closed/i.test(line))
      .map((line) => line.replace(/\s+/g, ' ').slice(0, 200));
    say(
      `worker slot ${worker.slot} exited ${seconds.toFixed(1)} s after the stop; its last words:`,
    );
    for (const line of lines.slice(-5)) say(`    ${line}`);
  }
  // SHUTDOWN_GRACE_MS in stack.yml; Swarm would kill it at stop_grace_period (35 s).
  check(
    slowest < 20,
    `a worker took ${slowest.toFixed(1)} s to exit with its broker and master gone`,
  );
  say(
    `ok: ${workers.length} worker(s) exited within ${slowest.toFixed(1)} s with broker and master stopped at the same moment`,
  );
}

const steps: [string, () => Promise<void>][] = [
  ['published-port', publishedPort],
  ['secrets', secrets],
  ['scale', scaleTo4],
  ['python-worker', pythonWorker],
  ['kill-worker', killWorker],
  ['rolling-update', rollingUpdate],
  ['autoscaler', autoscaler],
  ['redis-backup', redisBackup],
  ['stop-without-broker', workersStopWithoutBroker],
];

async function main() {
  const only = config.SWARM_STEPS?.split(',');
  for (const [name, step] of steps) {
    if (only && !only.includes(name)) continue;
    const started = Date.now();
    say(`step ${name}`);
    await step();
    process.stdout.write(`step-time ${name} ${((Date.now() - started) / 1000).toFixed(1)}\n`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    say(`FAILED: ${(err as Error).message}`);
    process.exit(1);
  },
);
