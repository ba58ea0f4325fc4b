/**
 * The audit trail: who did what to the fleet, when and from where, kept
 * append-only in the queue's store. `GET /api/audit` (admin only) reads it.
 */
import { z } from 'zod';

/** Every action the trail records. */
export const AUDIT_ACTIONS = [
  'worker.drain',
  'worker.resume',
  'worker.stop',
  'worker.restart',
  'worker.config',
  'workers.cordon',
  'workers.uncordon',
  'fleet.stop',
  'fleet.resume',
  'credential.issue',
  'join-token.issue',
  'worker.revoke',
  /** A request refused for its token or origin (HTTP 401/403). */
  'auth.refused',
  /** Refusals beyond the first few from one address in a minute, counted in one record. */
  'auth.refused.more',
] as const;
export const auditActionSchema = z.enum(AUDIT_ACTIONS);
export type AuditAction = z.infer<typeof auditActionSchema>;

/**
 * `ok`: done (and acknowledged by the worker where one was asked);
 * `refused`: the worker or the master said no; `timeout`: the worker did
 * not acknowledge in time; `failed`: anything else went wrong.
 */
export const auditResultSchema = z.enum(['ok', 'refused', 'timeout', 'failed']);
export type AuditResult = z.infer<typeof auditResultSchema>;

/** One record as it is appended: never the token itself, only whose it is. */
export const auditEntrySchema = z.object({
  /** Unix ms. */
  at: z.number().int().nonnegative(),
  /** The token's tenant; absent when no valid token was shown. */
  actor: z.string().max(256).optional(),
  role: z.enum(['user', 'admin']).optional(),
  action: auditActionSchema,
  /** A worker id, a selector, a path: what the action was aimed at. */
  target: z.string().max(512).optional(),
  result: auditResultSchema,
  /** The client's address as the master saw it. */
  from: z.string().max(128).optional(),
  /** Why it failed, or what it changed, in a few words. */
  detail: z.string().max(1_000).optional(),
  /** `auth.refused.more`: how many refusals the record stands for. */
  count: z.number().int().positive().optional(),
});
export type AuditEntry = z.infer<typeof auditEntrySchema>;

/** A stored record: the entry and its place in the trail (newest has the greatest). */
export const auditRecordSchema = auditEntrySchema.extend({ id: z.string().min(1).max(64) });
export type AuditRecord = z.infer<typeof auditRecordSchema>;

/** Unix ms, or an ISO 8601 date (`2026-01-31T12:00:00Z`), as a query string gives it. */
export const instantSchema = z
  .preprocess(
    (value) =>
      typeof value === 'string' && !/^\d+$/.test(value) ? Date.parse(value) : Number(value),
    z
      .number({ error: 'expected Unix ms or an ISO 8601 date' })
      .int('expected Unix ms or an ISO 8601 date')
      .nonnegative(),
  )
  .meta({ description: 'Unix ms, or an ISO 8601 date (2026-01-31T12:00:00Z)' });

/** Most records one page holds. */
export const MAX_AUDIT_PAGE = 500;

/** `GET /api/audit` query: newest first, from `cursor` (a page's `nextCursor`) on. */
export const auditQuerySchema = z
  .object({
    /** Only records at or after this instant. */
    since: instantSchema.optional(),
    /** Only records at or before this instant. */
    until: instantSchema.optional(),
    action: auditActionSchema.optional(),
    limit: z.coerce.number().int().min(1).max(MAX_AUDIT_PAGE).default(100),
    cursor: z
      .string()
      .regex(/^[0-9]+(-[0-9]+)?$/, 'cursor: pass a nextCursor as it came')
      .optional(),
  })
  .strict();
export type AuditQuery = z.infer<typeof auditQuerySchema>;

/** `GET /api/audit` → 200. `nextCursor`: older records remain; absent at the trail's start. */
export const auditPageSchema = z.object({
  records: z.array(auditRecordSchema),
  nextCursor: z.string().optional(),
});
export type AuditPage = z.infer<typeof auditPageSchema>;
