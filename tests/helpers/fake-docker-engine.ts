/**
 * A Docker Engine on a unix socket (in its own temp dir) that speaks just the
 * part of the Engine API the swarm driver uses, in the Engine's own shapes:
 * GET /services/{id} and POST /services/{id}/update?version=N, with or
 * without an API version prefix (/v1.45/services/…, as docker-modem sends it
 * when given a version). Like the Engine, it finds a service by ID, name or
 * ID prefix, answers 404 for an unknown one, refuses an update quoting a stale
 * version with HTTP 500 "update out of sequence", and bumps the version on
 * every update. Every request is recorded for assertions.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeService {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
  Spec: { Name: string; Mode: Record<string, unknown>; [key: string]: unknown };
  PreviousSpec?: FakeService['Spec'];
}

export interface EngineRequest {
  method: string;
  /** Without the API version prefix, without the query. */
  path: string;
  /** `v1.45` when the path carried one. */
  apiVersion?: string;
  query: Record<string, string>;
  body: unknown;
}

export interface AddServiceOptions {
  /** Replicas of a replicated service; ignored with `global`. Default 1. */
  replicas?: number;
  global?: boolean;
}

export interface FakeDockerEngine {
  socketPath: string;
  requests: EngineRequest[];
  /** Creates a service with a realistic spec (as `docker stack deploy` would) and returns it. */
  addService(name: string, options?: AddServiceOptions): FakeService;
  /** The service by name, as the Engine holds it now. */
  service(name: string): FakeService | undefined;
  /**
   * Another client updates the service on the next `times` update requests,
   * just before they arrive (its change: `change`), so they quote a stale version.
   */
  interfere(times: number, change: (spec: FakeService['Spec']) => void): void;
  /** Answers every request as a node that is not a swarm manager (HTTP 503). */
  notManager: boolean;
  /** Accepts requests and never answers them. */
  stall: boolean;
  close(): Promise<void>;
}

const VERSIONED = /^\/(v\d+\.\d+)(\/.*)$/;

/** The spec `docker stack deploy` gives a replicated worker service, trimmed. */
function stackSpec(name: string, mode: Record<string, unknown>): FakeService['Spec'] {
  const stack = name.includes('_') ? name.slice(0, name.indexOf('_')) : undefined;
  return {
    Name: name,
    Labels: stack
      ? { 'com.docker.stack.image': 'reg/flota-worker:1', 'com.docker.stack.namespace': stack }
      : {},
    TaskTemplate: {
      ContainerSpec: {
        Image: 'reg/flota-worker:1@sha256:0123456789abcdef',
        Env: ['WORKER_ID=cpu-{{.Task.Slot}}', 'WORKER_KIND=cpu'],
        Hostname: 'cpu-{{.Task.Slot}}',
        StopGracePeriod: 35_000_000_000,
        Secrets: [
          {
            File: { Name: 'worker_token', UID: '0', GID: '0', Mode: 292 },
            SecretID: 'x1',
            SecretName: 'flota_worker_token',
          },
        ],
      },
      Resources: { Limits: { NanoCPUs: 1_000_000_000, MemoryBytes: 536_870_912 } },
      RestartPolicy: { Condition: 'any', Delay: 2_000_000_000, MaxAttempts: 0 },
      Placement: {},
      ForceUpdate: 0,
      Runtime: 'container',
    },
    Mode: mode,
    UpdateConfig: {
      Parallelism: 1,
      Delay: 5_000_000_000,
      FailureAction: 'rollback',
      Order: 'stop-first',
    },
    EndpointSpec: { Mode: 'vip' },
  };
}

export async function startFakeDockerEngine(): Promise<FakeDockerEngine> {
  const dir = mkdtempSync(join(tmpdir(), 'flota-engine-'));
  const services = new Map<string, FakeService>();
  const interference: Array<(spec: FakeService['Spec']) => void> = [];
  let clock = Date.parse('2025-01-01T00:00:00Z');
  let index = 10;
  const stamp = () => {
    clock += 1000;
    return new Date(clock).toISOString();
  };
  /** Raft indexes only grow, and not by one per change. */
  const nextIndex = (step: number) => {
    index += step;
    return index;
  };

  const engine: FakeDockerEngine = {
    socketPath: join(dir, 'docker.sock'),
    requests: [],
    notManager: false,
    stall: false,
    addService(name, options = {}) {
      const mode = options.global
        ? { Global: {} }
        : { Replicated: { Replicas: options.replicas ?? 1 } };
      const at = stamp();
      const service: FakeService = {
        ID: randomBytes(13).toString('hex').slice(0, 25),
        Version: { Index: nextIndex(7) },
        CreatedAt: at,
        UpdatedAt: at,
        Spec: stackSpec(name, mode),
      };
      services.set(name, service);
      return service;
    },
    service: (name) => services.get(name),
    interfere(times, change) {
      for (let i = 0; i < times; i++) interference.push(change);
    },
    close: async () => {},
  };

  /** By ID, then name, then unique ID prefix: the Engine's order. */
  const find = (id: string): FakeService | undefined => {
    const all = [...services.values()];
    const byId = all.find((s) => s.ID === id) ?? services.get(id);
    if (byId) return byId;
    const prefixed = all.filter((s) => s.ID.startsWith(id));
    return prefixed.length === 1 ? prefixed[0] : undefined;
  };

  const update = (service: FakeService, spec: FakeService['Spec']) => {
    service.PreviousSpec = service.Spec;
    service.Spec = spec;
    service.Version = { Index: nextIndex(3) };
    service.UpdatedAt = stamp();
  };

  const answer = (req: EngineRequest): [number, unknown] => {
    if (engine.notManager) {
      return [
        503,
        {
          message:
            'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
        },
      ];
    }
    const route = /^\/services\/([^/]+)(\/update)?$/.exec(req.path);
    const id = route ? decodeURIComponent(route[1] ?? '') : '';
    const service = route ? find(id) : undefined;
    if (!route) return [404, { message: 'page not found' }];
    if (!service) return [404, { message: `service ${id} not found` }];
    if (req.method === 'GET' && !route[2]) return [200, service];
    if (req.method !== 'POST' || !route[2]) return [405, { message: 'method not allowed' }];
    const change = interference.shift();
    if (change) {
      const spec = structuredClone(service.Spec);
      change(spec);
      update(service, spec);
    }
    const version = Number(req.query.version);
    if (!/^\d+$/.test(req.query.version ?? '')) {
      return [400, { message: `invalid service version '${req.query.version ?? ''}'` }];
    }
    if (version !== service.Version.Index) {
      return [500, { message: 'rpc error: code = Unknown desc = update out of sequence' }];
    }
    update(service, req.body as FakeService['Spec']);
    return [200, {}];
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://docker');
      const versioned = VERSIONED.exec(url.pathname);
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      const request: EngineRequest = {
        method: req.method ?? 'GET',
        path: versioned ? (versioned[2] ?? '') : url.pathname,
        ...(versioned && { apiVersion: versioned[1] }),
        query: Object.fromEntries(url.searchParams),
        body,
      };
      engine.requests.push(request);
      if (engine.stall) return;
      const [status, reply] =
        typeof body === 'string' ? [400, { message: 'invalid JSON body' }] : answer(request);
      res.writeHead(status, { 'content-type': 'application/json', 'api-version': '1.45' });
      res.end(`${JSON.stringify(reply)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(engine.socketPath, resolve);
  });
  let closing: Promise<void> | undefined;
  engine.close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }).finally(() => rmSync(dir, { recursive: true, force: true }));
    return closing;
  };
  return engine;
}
