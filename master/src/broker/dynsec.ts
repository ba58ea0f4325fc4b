/**
 * Worker logins on a Mosquitto that loads the dynamic-security plugin
 * (MQTT_DYNSEC=true; the master's MQTT_USERNAME must be a dynsec admin, as
 * `mosquitto_ctrl dynsec init` creates one).
 *
 * The same rules as the embedded broker, written as dynsec roles:
 * - `flota-master` (added to the master's own login): publish and subscribe
 *   anywhere under the topic prefix;
 * - `flota-worker-<id>`, one per worker: publish its own status, heartbeat
 *   and log topics; subscribe to its own tasks and control topics;
 * - `flota-observer` in the group `flota-observers`: subscribe to
 *   `<prefix>/logs/#` only. The group is also the anonymous group, for a
 *   broker that allows anonymous logins; the stack does not (an anonymous
 *   client could take a worker's client id) and gives log followers the
 *   `_observer` login, bound to its own client id, in that group.
 * Each issued credential becomes the password of a dynsec client named after
 * the worker id, bound to its client id; revoking a worker disables that
 * client, which also disconnects it.
 *
 * Mosquitto's own control topics are named here, not in proto/: they are
 * Mosquitto's wire contract, not flota's.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { z } from 'zod';
import { FlotaError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { parseMqttJson } from '../../../common/mqtt.ts';
import { withTimeout } from '../../../common/timeout.ts';
import { type Topics, workerClientId } from '../../../proto/src/topics.ts';
import type { WorkerCredentials } from '../security/worker-credentials.ts';

export const DYNSEC_CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
export const DYNSEC_RESPONSE_TOPIC = `${DYNSEC_CONTROL_TOPIC}/response`;
export const MASTER_ROLE = 'flota-master';
export const OBSERVER_ROLE = 'flota-observer';
export const OBSERVER_GROUP = 'flota-observers';
export const workerRole = (workerId: string) => `flota-worker-${workerId}`;

/** Longest wait for the plugin's answer to one batch of commands. */
const ANSWER_TIMEOUT_MS = 10_000;

/** The dynamic-security plugin refused a command, or never answered. */
export class DynsecError extends FlotaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('dynsec_failed', message, options);
  }
}

export type AclType =
  | 'publishClientSend'
  | 'publishClientReceive'
  | 'subscribeLiteral'
  | 'subscribePattern'
  | 'unsubscribeLiteral'
  | 'unsubscribePattern';

export interface Acl {
  acltype: AclType;
  topic: string;
  allow: boolean;
  priority?: number;
}

export type DynsecCommand = { command: string } & Record<string, unknown>;

const responsesSchema = z.object({
  responses: z.array(
    z.object({
      command: z.string(),
      error: z.string().optional(),
      correlationData: z.string().optional(),
      data: z.unknown().optional(),
    }),
  ),
});

/** The part of a getClient answer looked at: the roles the client holds. */
const clientDataSchema = z.object({
  client: z.object({ roles: z.array(z.object({ rolename: z.string() })).optional() }),
});

interface Answer {
  error?: string;
  data?: unknown;
}

/** Answers that mean "already as wanted": creating what exists, adding an ACL already there. */
const ALREADY = /already exists|is already in/;

const allow = (acltype: AclType, topic: string): Acl => ({ acltype, topic, allow: true });

export function masterAcls(topics: Topics): Acl[] {
  const all = `${topics.prefix}/#`;
  return [
    allow('publishClientSend', all),
    allow('publishClientReceive', all),
    allow('subscribePattern', all),
  ];
}

export function observerAcls(topics: Topics): Acl[] {
  return [allow('subscribePattern', `${topics.prefix}/logs/#`)];
}

export function workerAcls(topics: Topics, workerId: string): Acl[] {
  return [
    allow('publishClientSend', topics.status(workerId)),
    allow('publishClientSend', topics.heartbeat(workerId)),
    allow('publishClientSend', topics.log(workerId)),
    allow('subscribePattern', topics.tasks(workerId)),
    allow('subscribePattern', topics.control(workerId)),
  ];
}

/**
 * createRole; a role that exists is left as it is. (Editing a role's ACLs
 * would make Mosquitto disconnect every client holding it, the master too.)
 */
export function ensureRoleCommands(rolename: string, acls: Acl[]): DynsecCommand[] {
  return [{ command: 'createRole', rolename, acls }];
}

/** A new worker's role and dynsec client: its credential as password, bound to its client id. */
export function createWorkerCommands(
  topics: Topics,
  workerId: string,
  credential: string,
): DynsecCommand[] {
  const rolename = workerRole(workerId);
  return [
    ...ensureRoleCommands(rolename, workerAcls(topics, workerId)),
    {
      command: 'createClient',
      username: workerId,
      password: credential,
      clientid: workerClientId(workerId),
      roles: [{ rolename }],
    },
  ];
}

/**
 * The dynsec client existed (an earlier credential, maybe disabled by a
 * revocation): a new password, its client id and role, enabled again. The
 * role is added only when missing: Mosquitto 2.0 answers "Internal error" to
 * adding a role a client already holds.
 */
export function updateWorkerCommands(
  workerId: string,
  credential: string,
  hasRole: boolean,
): DynsecCommand[] {
  return [
    { command: 'setClientPassword', username: workerId, password: credential },
    { command: 'setClientId', username: workerId, clientid: workerClientId(workerId) },
    ...(hasRole
      ? []
      : [{ command: 'addClientRole', username: workerId, rolename: workerRole(workerId) }]),
    { command: 'enableClient', username: workerId },
  ];
}

export interface DynsecProvisioner {
  /** Makes `credential` the broker login of `workerId`. */
  provision(workerId: string, credential: string): Promise<void>;
  close(): Promise<void>;
}

export interface DynsecProvisionerOptions {
  /** The master's client, logged in as a dynsec admin. */
  mqtt: MqttClient;
  topics: Topics;
  credentials: WorkerCredentials;
  log: Logger;
  answerTimeoutMs?: number;
}

interface Pending {
  resolve(answer: Answer): void;
}

export async function startDynsecProvisioner(
  options: DynsecProvisionerOptions,
): Promise<DynsecProvisioner> {
  const { mqtt, topics, credentials } = options;
  const log = options.log.child({ component: 'dynsec' });
  const timeoutMs = options.answerTimeoutMs ?? ANSWER_TIMEOUT_MS;
  const pending = new Map<string, Pending>();
  const batchId = randomUUID().slice(0, 8);
  let next = 0;
  let closed = false;

  const onMessage = (topic: string, payload: Buffer) => {
    if (topic !== DYNSEC_RESPONSE_TOPIC) return;
    const parsed = parseMqttJson(responsesSchema, payload, topic, log);
    for (const response of parsed?.responses ?? []) {
      const waiter = response.correlationData ? pending.get(response.correlationData) : undefined;
      if (!waiter || !response.correlationData) continue;
      pending.delete(response.correlationData);
      waiter.resolve({ error: response.error, data: response.data });
    }
  };
  mqtt.on('message', onMessage);

  /**
   * Sends commands in one message; resolves with each one's answer, or with
   * none once `until` settles first (the broker cut this client over them).
   */
  async function run(commands: DynsecCommand[], until?: Promise<unknown>): Promise<Answer[]> {
    if (closed) throw new DynsecError('the dynsec provisioner is closed');
    const ids = commands.map(() => `${batchId}-${next++}`);
    const answers = ids.map(
      (id) =>
        new Promise<Answer>((resolve) => {
          pending.set(id, { resolve });
        }),
    );
    try {
      const body = { commands: commands.map((c, i) => ({ ...c, correlationData: ids[i] })) };
      const sent = mqtt.publishAsync(DYNSEC_CONTROL_TOPIC, JSON.stringify(body), { qos: 1 });
      const cut = until?.then(() => commands.map(() => ({})));
      return await withTimeout(
        Promise.race([sent.then(() => Promise.all(answers)), ...(cut ? [cut] : [])]),
        timeoutMs,
        () =>
          new DynsecError(
            `no answer on ${DYNSEC_RESPONSE_TOPIC} within ${timeoutMs} ms: is Mosquitto's dynamic-security plugin loaded, and MQTT_USERNAME a dynsec admin?`,
          ),
      );
    } finally {
      for (const id of ids) pending.delete(id);
    }
  }

  /** Runs commands; a refusal other than "already so" is an error (never quoting a password). */
  async function apply(commands: DynsecCommand[], what: string): Promise<void> {
    const answers = await run(commands);
    const failed = answers
      .map(({ error }, i) => ({ error, command: commands[i]?.command }))
      .filter((r) => r.error !== undefined && !ALREADY.test(r.error));
    if (failed.length > 0) {
      throw new DynsecError(
        `dynamic security refused ${what}: ${failed.map((f) => `${f.command}: ${f.error}`).join('; ')}`,
      );
    }
  }

  async function rolesOf(username: string): Promise<string[]> {
    const [answer] = await run([{ command: 'getClient', username }]);
    if (answer?.error)
      throw new DynsecError(`dynamic security cannot read client ${username}: ${answer.error}`);
    const parsed = clientDataSchema.safeParse(answer?.data);
    return (parsed.data?.client.roles ?? []).map((r) => r.rolename);
  }

  await mqtt.subscribeAsync(DYNSEC_RESPONSE_TOPIC, { qos: 1 });
  const masterUsername = mqtt.options.username;
  if (!masterUsername) throw new DynsecError('MQTT_DYNSEC needs MQTT_USERNAME (a dynsec admin)');
  await apply(
    [
      ...ensureRoleCommands(MASTER_ROLE, masterAcls(topics)),
      ...ensureRoleCommands(OBSERVER_ROLE, observerAcls(topics)),
      { command: 'createGroup', groupname: OBSERVER_GROUP, roles: [{ rolename: OBSERVER_ROLE }] },
      { command: 'setAnonymousGroup', groupname: OBSERVER_GROUP },
    ],
    'the master and observer roles',
  );
  if (!(await rolesOf(masterUsername)).includes(MASTER_ROLE)) {
    // Mosquitto disconnects a client whose roles change, this one included:
    // the answer is lost with the connection, the reconnect is the answer.
    log.info(
      { username: masterUsername },
      `giving the master's login the ${MASTER_ROLE} role (it reconnects)`,
    );
    let onConnect: () => void = () => {};
    const reconnected = new Promise<void>((resolve) => {
      onConnect = resolve;
      mqtt.once('connect', onConnect);
    });
    try {
      const [answer] = await run(
        [{ command: 'addClientRole', username: masterUsername, rolename: MASTER_ROLE }],
        reconnected,
      );
      if (answer?.error)
        throw new DynsecError(`dynamic security refused the master role: ${answer.error}`);
    } finally {
      mqtt.off('connect', onConnect);
    }
  }
  log.info({ prefix: topics.prefix }, 'dynamic security roles in place');

  const onRevoked = (workerId: string) => {
    run([{ command: 'disableClient', username: workerId }])
      .then(([answer]) => {
        const error = answer?.error;
        if (error === undefined)
          log.warn({ workerId }, 'worker credential revoked: broker login disabled');
        else log.warn({ workerId, error }, 'could not disable the revoked worker on the broker');
      })
      .catch((err: Error) =>
        log.error(
          { workerId, err: err.message },
          'could not disable the revoked worker on the broker',
        ),
      );
  };
  credentials.on('revoked', onRevoked);

  return {
    async provision(workerId, credential) {
      const what = `worker ${workerId}`;
      const commands = createWorkerCommands(topics, workerId, credential);
      const created = await run(commands);
      const failed = created.find((a) => a.error !== undefined && !ALREADY.test(a.error));
      if (failed) throw new DynsecError(`dynamic security refused ${what}: ${failed.error}`);
      const existed = created.at(-1)?.error !== undefined;
      if (existed) {
        const roles = await rolesOf(workerId);
        await apply(
          updateWorkerCommands(workerId, credential, roles.includes(workerRole(workerId))),
          what,
        );
      }
      log.info({ workerId, existed }, 'worker login provisioned on the broker');
    },
    async close() {
      if (closed) return;
      closed = true;
      credentials.off('revoked', onRevoked);
      mqtt.off('message', onMessage);
      for (const waiter of pending.values()) waiter.resolve({ error: 'closed' });
      pending.clear();
      // The response subscription stays: it dies with the master's client, and
      // another provisioner on the same client may still read it.
    },
  };
}
