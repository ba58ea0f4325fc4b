/**
 * Registration: the worker's online record, its heartbeats, its login, and
 * the Last Will the broker publishes when it dies.
 */
import type { WorkerOnline } from '../../../proto/src/schemas/worker.ts';
import { type Check, expectThat } from '../check.ts';
import { KIT_MODEL } from '../worker-env.ts';
import { heartbeatsSince } from './support.ts';

/** Heartbeats the heartbeat check watches. */
const HEARTBEATS_WATCHED = 7;

export const onlineStatus: Check = {
  id: 'registration.online-status',
  title: 'publishes a retained online record with the documented fields',
  section: 'MQTT › workers/{id}/status: online record',
  timeoutMs: 10_000,
  async run(ctx) {
    const { probe, workerId, options } = ctx;
    const bad = probe.statusesOf(workerId).find((s) => s.value === undefined);
    expectThat(!bad, `a status record failed the schema: ${bad?.problem}`);
    const since = Date.now();
    await probe.refreshRetained(workerId);
    const retained = await probe.until(
      () => probe.statusesOf(workerId).find((s) => s.at >= since && s.retained),
      3_000,
    );
    expectThat(
      retained,
      'no retained record on workers/{id}/status (publish it with retain: true)',
    );
    const record = retained.value as WorkerOnline | undefined;
    expectThat(record?.state === 'online', `the retained record is ${record?.state}, not online`);
    expectThat(
      record.slots === options.slots,
      `slots is ${record.slots}, but the worker was started with SLOTS=${options.slots}`,
    );
    expectThat(
      record.heartbeatMs === options.heartbeatMs,
      `heartbeatMs is ${record.heartbeatMs}, but the worker was started with HEARTBEAT_MS=${options.heartbeatMs}`,
    );
    expectThat(
      record.models.includes(KIT_MODEL),
      `models ${JSON.stringify(record.models)} lacks ${KIT_MODEL} (MODELS=${KIT_MODEL})`,
    );
    expectThat(
      Math.abs(record.startedAt - Date.now()) < 3_600_000,
      `startedAt ${record.startedAt} is not the time the process started (Unix ms)`,
    );
    const listed = (await ctx.rest.workers()).find((w) => w.id === workerId);
    expectThat(
      listed?.state === 'online',
      `the master lists the worker as ${listed?.state ?? 'unknown'}`,
    );
  },
};

export const heartbeat: Check = {
  id: 'registration.heartbeat',
  title: 'heartbeats every heartbeatMs with the documented fields',
  section: 'MQTT › workers/{id}/heartbeat',
  timeoutMs: 15_000,
  async run(ctx) {
    const { probe, workerId, options } = ctx;
    const every = options.heartbeatMs;
    const since = Date.now();
    const window = (HEARTBEATS_WATCHED + 3) * every;
    await probe.until(() => heartbeatsSince(ctx, since).length >= HEARTBEATS_WATCHED, window);
    const seen = probe.heartbeatsOf(workerId).filter((h) => h.at >= since);
    const bad = seen.find((h) => h.value === undefined);
    expectThat(!bad, `a heartbeat failed the schema: ${bad?.problem}`);
    expectThat(
      seen.length > 0,
      `no heartbeat within ${window} ms (the online record says heartbeatMs ${every})`,
    );
    expectThat(
      seen.length >= HEARTBEATS_WATCHED,
      `${seen.length} heartbeats within ${window} ms, expected one every ${every} ms`,
    );
    const gaps = seen.slice(1).map((h, i) => h.at - (seen[i]?.at ?? h.at));
    const longest = Math.max(...gaps);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    expectThat(
      longest < 3 * every,
      `a gap of ${longest} ms between heartbeats: past 3 × heartbeatMs (${3 * every} ms) the master declares the worker dead`,
    );
    expectThat(
      mean > every / 2 && mean < every * 1.5,
      `heartbeats come every ${Math.round(mean)} ms on average, not every heartbeatMs (${every} ms)`,
    );
    for (const h of heartbeatsSince(ctx, since)) {
      expectThat(
        h.freeSlots <= options.slots,
        `freeSlots ${h.freeSlots} is more than the worker's ${options.slots} slots`,
      );
      expectThat(h.active.length === 0, `an idle worker lists ${h.active.length} active attempts`);
      expectThat(!h.draining, 'an idle worker that was never drained says draining: true');
    }
  },
};

export const login: Check = {
  id: 'registration.login',
  title: 'logs in as flota-worker-{id} / {id} / WORKER_TOKEN; a bad credential is refused',
  section: 'MQTT › Logins and rights',
  timeoutMs: 25_000,
  needs: ['command'],
  async run(ctx) {
    const badId = `${ctx.workerId}-badcred`.slice(0, 128);
    const since = ctx.refusals.length;
    const extra = ctx.spawnExtra(badId, ctx.credentialFor(`${ctx.workerId}-other`));
    try {
      const refusal = await ctx.probe.until(
        () =>
          ctx.refusals.slice(since).find((r) => r.username === badId || r.clientId.endsWith(badId)),
        20_000,
      );
      expectThat(
        refusal,
        `a worker started with WORKER_ID=${badId} and another id's credential made no login the broker refused within 20 s${extra.running ? '' : ` (it exited with code ${extra.exit?.code})`}`,
      );
      expectThat(
        refusal.clientId === `flota-worker-${badId}` && refusal.username === badId,
        `it logged in with client id ${JSON.stringify(refusal.clientId)} and username ${JSON.stringify(refusal.username)}; expected flota-worker-${badId} and ${badId}`,
      );
      const online = ctx.probe.statusesOf(badId).some((s) => s.value?.state === 'online');
      expectThat(!online, 'a worker with a bad credential published an online record');
    } finally {
      await extra.stop();
    }
  },
};

export const lastWill: Check = {
  id: 'registration.last-will',
  title: 'killed abruptly, its Last Will marks it offline (reason lost), retained',
  section: 'MQTT › Connection',
  timeoutMs: 30_000,
  needs: ['signals', 'restart'],
  async run(ctx) {
    const { probe, workerId } = ctx;
    const since = Date.now();
    ctx.worker().signal('SIGKILL');
    const will = await probe.until(
      () => probe.statusesOf(workerId).find((s) => s.at >= since && s.value?.state === 'offline'),
      5_000,
    );
    expectThat(will, 'no offline record within 5 s of SIGKILL: connect with a Last Will');
    expectThat(
      will.value?.state === 'offline' && will.value.reason === 'lost',
      `the Last Will says reason ${JSON.stringify(will.value?.state === 'offline' ? will.value.reason : undefined)}, expected "lost"`,
    );
    const refreshed = Date.now();
    await probe.refreshRetained(workerId);
    const retained = await probe.until(
      () => probe.statusesOf(workerId).find((s) => s.at >= refreshed && s.retained),
      3_000,
    );
    expectThat(
      retained?.value?.state === 'offline',
      'the Last Will was not retained (will: { retain: true })',
    );
    await ctx.worker().exited;
    await ctx.restartWorker();
  },
};
