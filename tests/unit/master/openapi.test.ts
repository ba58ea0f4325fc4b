/**
 * The OpenAPI document: valid OpenAPI 3.1, every $ref resolves, and it
 * describes exactly the /api and /v1 routes the master's Express app
 * registers (a route added without a description fails here).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import type { Express } from 'express';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createHttpApp, type HttpAppDeps } from '../../../master/src/http/app.ts';
import { ApiAuth } from '../../../master/src/http/auth.ts';
import { buildOpenApiDocument } from '../../../proto/src/openapi.ts';

const doc = buildOpenApiDocument() as {
  openapi: string;
  paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
};

/** Every `$ref` in the document, anywhere. */
function refsIn(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) refsIn(item, found);
  else if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$ref' && typeof inner === 'string') found.push(inner);
      else refsIn(inner, found);
    }
  }
  return found;
}

/** Follows a local JSON pointer (`#/components/schemas/TaskView`) in the document. */
function resolve(pointer: string): unknown {
  return pointer
    .slice(2)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>(
      (node, part) =>
        node !== null && typeof node === 'object'
          ? (node as Record<string, unknown>)[part]
          : undefined,
      doc,
    );
}

interface Layer {
  rawPath?: string;
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

/** `METHOD /path` of every route the app registers, mounted routers included, in OpenAPI's `{param}` form. */
function registeredRoutes(app: Express): string[] {
  const routes: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const path = `${prefix}${layer.route.path}`.replace(/\/$/, '').replace(/:(\w+)/g, '{$1}');
        for (const method of Object.keys(layer.route.methods)) {
          if (method !== '_all') routes.push(`${method} ${path}`);
        }
      } else if (layer.handle.stack && typeof layer.rawPath === 'string') {
        walk(layer.handle.stack, `${prefix}${layer.rawPath}`);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return routes.sort();
}

/** An app to walk: its routes are registered at creation; no request reaches the stubs. */
function appForWalking(): Express {
  const deps = {
    auth: new ApiAuth([]),
    corsOrigins: [],
    log: pino({ level: 'silent' }),
  } as Partial<HttpAppDeps>;
  return createHttpApp(deps as HttpAppDeps);
}

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    const result = await new Validator().validate(structuredClone(doc));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  it('gives every operation its responses', () => {
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(Object.keys(operation.responses ?? {}).length, `${method} ${path}`).toBeGreaterThan(
          0,
        );
      }
    }
  });

  it('resolves every $ref', () => {
    const refs = refsIn(doc);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref.startsWith('#/'), ref).toBe(true);
      expect(resolve(ref), ref).toBeDefined();
    }
  });

  it('describes exactly the /api and /v1 routes the master registers', () => {
    const registered = registeredRoutes(appForWalking()).filter((r) => /^\w+ \/(api|v1)\//.test(r));
    const described = Object.entries(doc.paths)
      .flatMap(([path, operations]) => Object.keys(operations).map((m) => `${m} ${path}`))
      .sort();
    expect(registered.length).toBeGreaterThan(20);
    expect(described).toEqual(registered);
  });
});
