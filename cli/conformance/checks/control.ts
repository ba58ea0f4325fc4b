/**
 * Live settings: a `config` control, sent as the master's fleet control
 * sends it (`PATCH /api/workers/{id}/config`), applied whole and
 * acknowledged in the online record; an invalid one dropped.
 */
import { randomUUID } from 'node:crypto';
import type { LiveConfig, TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerOnline } from '../../../proto/src/schemas/worker.ts';
import { type Check, expectThat } from '../check.ts';
import type { ConformanceContext } from '../context.ts';
import { KIT_MODEL } from '../worker-env.ts';
import { heartbeatsSince, promptLasting, waitHeartbeats } from './support.ts';

const finished = (t: TaskView) => t.state !== 'queued' && t.state !== 'running';

const lastOnline = (ctx: ConformanceContext) =>
  ctx.probe
    .statusesOf(ctx.workerId)
    .filter((s) => s.value?.state === 'online')
    .at(-1) as { at: number; value: WorkerOnline } | undefined;

const sameLabels = (a: Record<string, string>, b: Record<string, string>) =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

/** Sends `config` through the master and expects it applied: acknowledged, then in the online record. */
async function expectApplied(ctx: ConformanceContext, config: Required<LiveConfig>) {
  const sent = Date.now();
  const answer = await ctx.rest.configure(ctx.workerId, config);
  expectThat(
    answer.status !== 504,
    'the master got no ack within 5 s: publish the online record again at once with ack: { id, ok: true }',
  );
  expectThat(
    answer.status !== 422,
    `the worker refused a config it can apply (${answer.message ?? 'no reason'}): only models its provider cannot serve are a reason`,
  );
  expectThat(answer.status === 200, `the config was answered ${answer.status}`);
  // The master heard the acknowledgement; the kit's probe hears it on its own connection.
  const record = await ctx.probe.until(
    () =>
      ctx.probe
        .statusesOf(ctx.workerId)
        .find((s) => s.at >= sent && s.value?.state === 'online' && s.value.ack !== undefined),
    2_000,
  );
  expectThat(record?.value?.state === 'online', 'the kit saw no online record with an ack');
  const { value } = record;
  expectThat(
    value.ack?.ok === true,
    `the acknowledging online record carries ack ${JSON.stringify(value.ack)}`,
  );
  expectThat(
    value.slots === config.slots &&
      value.weight === config.weight &&
      JSON.stringify(value.models) === JSON.stringify(config.models) &&
      sameLabels(value.labels, config.labels),
    `the acknowledging online record says slots ${value.slots}, weight ${value.weight}, models ${JSON.stringify(value.models)}, labels ${JSON.stringify(value.labels)}; the config set ${JSON.stringify(config)}`,
  );
}

export const config: Check = {
  id: 'control.config',
  title: 'applies a live config whole and acknowledges it; drops an invalid one',
  section: 'MQTT › workers/{id}/control',
  timeoutMs: 30_000,
  async run(ctx) {
    const { options, probe, workerId } = ctx;
    const before = lastOnline(ctx)?.value;
    expectThat(before, 'no online record of the worker');
    const original: Required<LiveConfig> = {
      slots: before.slots,
      models: before.models,
      weight: before.weight,
      labels: before.labels,
    };
    const raised = options.slots + 1;
    try {
      await expectApplied(ctx, {
        slots: raised,
        models: [KIT_MODEL],
        weight: before.weight === 3 ? 4 : 3,
        labels: { ...before.labels, conformance: 'config' },
      });
      // Applied, not only acknowledged: the extra slot takes a task at once.
      const since = Date.now();
      const prompt = promptLasting(1_000);
      const ids = await Promise.all(
        Array.from({ length: raised }, () => ctx.rest.submit({ prompt, model: KIT_MODEL })),
      );
      const all = await probe.until(
        () => heartbeatsSince(ctx, since).some((h) => h.active.length >= raised),
        5_000,
      );
      const tasks = await Promise.all(ids.map((id) => ctx.rest.waitTask(id, finished, 10_000)));
      expectThat(
        all,
        `no heartbeat listed ${raised} running attempts after slots was raised to ${raised}`,
      );
      const refused = tasks.filter((t) => t.state !== 'completed');
      expectThat(
        refused.length === 0,
        `${refused.length} of ${raised} tasks did not complete after slots was raised to ${raised}: ${refused.map((t) => t.error ?? t.state).join('; ')}`,
      );
      // Invalid (slots 0): dropped, neither applied nor acknowledged.
      const bad = randomUUID();
      const published = Date.now();
      await probe.publish(workerId, 'control', { type: 'config', id: bad, config: { slots: 0 } });
      await waitHeartbeats(ctx, published, 3, 6 * options.heartbeatMs);
      const answered = probe
        .statusesOf(workerId)
        .find((s) => s.at >= published && s.value?.state === 'online' && s.value.ack?.id === bad);
      expectThat(
        !answered,
        'the worker acknowledged a config with slots 0: drop an invalid control',
      );
      expectThat(
        lastOnline(ctx)?.value.slots === raised,
        'a config with slots 0 changed the slots: drop an invalid control',
      );
    } finally {
      // The checks after this one count on the settings the worker started with.
      const now = lastOnline(ctx)?.value;
      const changed =
        now?.slots !== original.slots ||
        now.weight !== original.weight ||
        JSON.stringify(now.models) !== JSON.stringify(original.models) ||
        !sameLabels(now.labels, original.labels);
      if (changed) await ctx.rest.configure(workerId, original).catch(() => undefined);
    }
  },
};
