/**
 * Bodies of the admin-only REST routes that manage the fleet's credentials
 * (an admin API token is required; see docs for the roles).
 */
import { z } from 'zod';
import { workerIdSchema } from './worker.ts';

/** The start of a worker id a join token admits: `cpu-`, `gpu-node7-`, or empty for any id. */
export const joinPrefixSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9._:-]{0,64}$/,
    'prefix: up to 64 of A-Z a-z 0-9 . _ : - (empty: any worker id)',
  );

/** `POST /api/workers/join-tokens` body. */
export const joinTokenRequestSchema = z.object({ prefix: joinPrefixSchema }).strict();
export type JoinTokenRequest = z.infer<typeof joinTokenRequestSchema>;

/** `POST /api/workers/join-tokens` → 201. */
export const joinTokenResponseSchema = z.object({
  prefix: joinPrefixSchema,
  joinToken: z.string(),
});
export type JoinTokenResponse = z.infer<typeof joinTokenResponseSchema>;

/** `POST /api/workers/:id/credential` → 201: the worker's own credential (WORKER_TOKEN). */
export const credentialResponseSchema = z.object({
  workerId: workerIdSchema,
  credential: z.string(),
});
export type CredentialResponse = z.infer<typeof credentialResponseSchema>;

/** `POST /api/workers/:id/revoke` → 200: the credential no longer works anywhere. */
export const revokeResponseSchema = z.object({
  workerId: workerIdSchema,
  revokedAt: z.number().int().nonnegative(),
});
export type RevokeResponse = z.infer<typeof revokeResponseSchema>;

/** These routes take no body, or an empty object. */
export const emptyBodySchema = z.object({}).strict().optional();
