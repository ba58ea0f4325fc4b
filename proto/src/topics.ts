/**
 * MQTT topic builders: the only place a topic string is spelled out.
 * Every topic lives under a prefix (default `flota/v1`) so several flota
 * installations can share one broker.
 */
export const DEFAULT_TOPIC_PREFIX = 'flota/v1';

/** Worker and log-source ids become topic levels: no wildcards, separators or control chars. */
export const TOPIC_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export type WorkerTopicKind = 'status' | 'heartbeat' | 'tasks' | 'control';

export interface Topics {
  readonly prefix: string;
  /** Retained online record; the Last Will overwrites it with an offline record. */
  status(workerId: string): string;
  heartbeat(workerId: string): string;
  /** Master → worker assignments (QoS 1). */
  tasks(workerId: string): string;
  /** Master → worker control messages (cancel, drain, resume, shutdown). */
  control(workerId: string): string;
  log(source: string): string;
  /** Subscriptions used by the master. */
  allStatus(): string;
  allHeartbeats(): string;
  allLogs(): string;
  /** Splits a worker topic into its id and kind, or returns undefined if it is not one. */
  parseWorkerTopic(topic: string): { workerId: string; kind: WorkerTopicKind } | undefined;
}

const WORKER_KINDS: ReadonlySet<string> = new Set(['status', 'heartbeat', 'tasks', 'control']);

export function createTopics(prefix: string = DEFAULT_TOPIC_PREFIX): Topics {
  const base = prefix.replace(/\/+$/, '');
  const worker = (id: string, kind: WorkerTopicKind) => {
    if (!TOPIC_ID_PATTERN.test(id))
      throw new Error(`invalid worker id for a topic: ${JSON.stringify(id)}`);
    return `${base}/workers/${id}/${kind}`;
  };
  return {
    prefix: base,
    status: (id) => worker(id, 'status'),
    heartbeat: (id) => worker(id, 'heartbeat'),
    tasks: (id) => worker(id, 'tasks'),
    control: (id) => worker(id, 'control'),
    log: (source) => {
      if (!TOPIC_ID_PATTERN.test(source))
        throw new Error(`invalid log source: ${JSON.stringify(source)}`);
      return `${base}/logs/${source}`;
    },
    allStatus: () => `${base}/workers/+/status`,
    allHeartbeats: () => `${base}/workers/+/heartbeat`,
    allLogs: () => `${base}/logs/#`,
    parseWorkerTopic(topic) {
      const head = `${base}/workers/`;
      if (!topic.startsWith(head)) return undefined;
      const parts = topic.slice(head.length).split('/');
      const [workerId, kind] = parts;
      if (parts.length !== 2 || !workerId || !kind || !WORKER_KINDS.has(kind)) return undefined;
      return { workerId, kind: kind as WorkerTopicKind };
    },
  };
}

/**
 * MQTT usernames. A worker logs in with its worker id as username and its
 * worker credential as password; the master as `_master`; an observer (logs
 * only) anonymously or as `_observer`.
 */
export const MASTER_MQTT_USERNAME = '_master';
/** Where the embedded broker serves MQTT over WebSocket, on the master's HTTP(S) port. */
export const MQTT_WS_PATH = '/mqtt';
export const OBSERVER_MQTT_USERNAME = '_observer';

/**
 * The MQTT client id a worker connects with. Stable per worker id, so its
 * persistent session (clean: false) and the embedded broker's delivery rule
 * (a worker's tasks reach only that worker's client) both key on it.
 */
export function workerClientId(workerId: string): string {
  return `flota-worker-${workerId}`;
}
