/**
 * The REST and OpenAI-compatible APIs as an OpenAPI 3.1 document, built from
 * the zod schemas that the master parses requests with and types its answers
 * by: the schemas stay the one source of truth, this file only says which
 * route takes and gives which. The master serves it at OPENAPI_PATH.
 */
import { z } from 'zod';
import {
  API_ROUTES,
  apiError,
  openAiError,
  REQUEST_SCHEMAS,
  RESPONSE_SCHEMAS,
  type RequestName,
  type ResponseName,
  type Route,
} from './openapi-routes.ts';

type JsonSchema = Record<string, unknown>;

/**
 * JSON Schema 2020-12 (OpenAPI 3.1's dialect) of one zod schema. Checks zod
 * cannot express (refinements, the audit query's date parsing) are left to
 * the master, which answers 400 with the reason.
 */
function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as JsonSchema;
  return rest;
}

const ref = (name: RequestName | ResponseName) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: RequestName | ResponseName) => ({ 'application/json': { schema: ref(name) } });

/** Answers every guarded route may give besides its own. */
function guardResponses(route: Route) {
  const error = route.path.startsWith('/v1/') ? openAiError : apiError;
  const common = {
    '403': error(
      'a browser origin not allowed (`origin_refused`), or a user token on an admin route (`forbidden`)',
    ),
    '429': error('too many requests this minute (`rate_limited`); wait Retry-After seconds'),
    '500': error('internal error'),
    '503': error('the queue store is unavailable; retry'),
  };
  if (route.auth === 'none') return { '403': common['403'] };
  return { '401': error('no token, or an unknown one (`unauthorized`)'), ...common };
}

function parametersOf(route: Route): JsonSchema[] {
  const parameters: JsonSchema[] = [];
  for (const [name, schema] of Object.entries(route.pathParams ?? {})) {
    parameters.push({ name, in: 'path', required: true, schema: jsonSchemaOf(schema, 'input') });
  }
  for (const [name, field] of Object.entries(route.query?.shape ?? {})) {
    const schema = field as z.ZodType;
    const required = !schema.safeParse(undefined).success;
    parameters.push({ name, in: 'query', required, schema: jsonSchemaOf(schema, 'input') });
  }
  for (const [name, { schema, description }] of Object.entries(route.headers ?? {})) {
    parameters.push({
      name,
      in: 'header',
      required: false,
      description,
      schema: jsonSchemaOf(schema, 'input'),
    });
  }
  return parameters;
}

function operationOf(route: Route): JsonSchema {
  const responses: Record<string, JsonSchema> = {};
  const all: Route['responses'] = { ...guardResponses(route), ...route.responses };
  for (const status of Object.keys(all).sort()) {
    const { description, body } = all[status] as Route['responses'][string];
    responses[status] = body
      ? { description, content: json(body) }
      : { description, content: { 'application/json': { schema: { type: 'object' } } } };
  }
  if (route.events) {
    responses['200'] = {
      ...responses['200'],
      content: {
        ...(responses['200']?.content as JsonSchema),
        'text/event-stream': {
          schema: {
            type: 'string',
            description: `With \`stream: true\`: server-sent events, each \`data:\` line a ${route.events} (#/components/schemas/${route.events}), the last \`data: [DONE]\`.`,
          },
        },
      },
    };
  }
  if (route.csv) {
    responses['200'] = {
      ...responses['200'],
      content: {
        ...(responses['200']?.content as JsonSchema),
        'text/csv': { schema: { type: 'string', description: route.csv } },
      },
    };
  }
  const parameters = parametersOf(route);
  return {
    operationId: `${route.method}${route.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    summary: route.summary,
    tags: [route.tag],
    ...(route.auth === 'none' && { security: [] }),
    ...(route.auth === 'admin' && { security: [{ bearerAuth: ['admin'] }] }),
    ...(parameters.length > 0 && { parameters }),
    ...(route.body && {
      requestBody: { required: route.body.required, content: json(route.body.name) },
    }),
    responses,
  };
}

/** The document; build it once and keep it (it depends on nothing at run time). */
export function buildOpenApiDocument(): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of API_ROUTES) {
    paths[route.path] = { ...paths[route.path], [route.method]: operationOf(route) };
  }
  const schemas: Record<string, JsonSchema> = {};
  for (const [name, schema] of Object.entries(REQUEST_SCHEMAS))
    schemas[name] = jsonSchemaOf(schema, 'input');
  for (const [name, schema] of Object.entries(RESPONSE_SCHEMAS))
    schemas[name] = jsonSchemaOf(schema, 'output');
  return {
    openapi: '3.1.1',
    info: {
      title: 'flota master API',
      // The API's version (as in /v1), not the release's.
      version: '1',
      description:
        'The REST API (/api) and the OpenAI-compatible API (/v1), generated from the zod schemas in proto/. ' +
        'With API tokens configured every route needs `Authorization: Bearer <token>` (security role `admin`: an admin token); ' +
        'a master without tokens (loopback only) checks none. Errors on /api are ApiError, on /v1 OpenAiError.',
    },
    security: [{ bearerAuth: [] }],
    tags: [...new Set(API_ROUTES.map((r) => r.tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'an API token (API_TOKENS)' },
      },
      schemas,
    },
  };
}
