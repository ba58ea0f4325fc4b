/**
 * The operator console's data: the task history (`GET /api/tasks`, a task's
 * timeline), usage per tenant (`GET /api/usage`), alerts (`GET /api/alerts`)
 * and the live series the console draws. Each shape is written once here;
 * the master parses and types with it, the OpenAPI document is made from it.
 */
import { z } from 'zod';
import { instantSchema } from './audit.ts';
import { modelSchema, taskIdSchema, taskStateSchema } from './task.ts';
import { workerIdSchema } from './worker.ts';

/** A tenant's name, as API_TOKENS gives it. */
export const tenantNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'tenant: 1-64 of A-Z a-z 0-9 _ . - ');

/** `csv` or `json` (the default). */
export const exportFormatSchema = z.enum(['json', 'csv']).default('json');

// ── Task history ────────────────────────────────────────────────────────────

/** Most tasks one page of `GET /api/tasks` holds. */
export const MAX_TASK_PAGE = 500;
/** Longest search text (`q`). */
export const MAX_TASK_SEARCH_CHARS = 200;
/** How much of a prompt a task summary carries. */
export const PROMPT_PREVIEW_CHARS = 200;

/**
 * `GET /api/tasks`: newest first (by submission), filtered; `cursor` is a
 * page's `nextCursor`. A user sees its own tenant's tasks whatever `tenant` says.
 */
export const taskListQuerySchema = z
  .object({
    state: taskStateSchema.optional(),
    tenant: tenantNameSchema.optional(),
    model: modelSchema.optional(),
    workerId: workerIdSchema.optional(),
    /** Submitted at or after. */
    from: instantSchema.optional(),
    /** Submitted at or before. */
    to: instantSchema.optional(),
    /** A task id (whole), or text the prompt contains (case-insensitive). */
    q: z.string().min(1).max(MAX_TASK_SEARCH_CHARS).optional(),
    limit: z.coerce.number().int().min(1).max(MAX_TASK_PAGE).default(50),
    cursor: z.string().min(1).max(200).optional(),
    format: exportFormatSchema,
  })
  .strict();
export type TaskListQuery = z.infer<typeof taskListQuerySchema>;

/** One task in a list: what a table row shows. */
export const taskSummarySchema = z.object({
  id: taskIdSchema,
  state: taskStateSchema,
  tenant: z.string(),
  model: modelSchema,
  priority: z.number().int(),
  /** Attempts started so far. */
  attempts: z.number().int().min(0),
  /** The worker of the last attempt. */
  workerId: workerIdSchema.optional(),
  /** The first PROMPT_PREVIEW_CHARS characters of the prompt. */
  prompt: z.string(),
  submittedAt: z.number().int(),
  finishedAt: z.number().int().optional(),
  /** Submission → result (or end). */
  totalMs: z.number().optional(),
  /** Submission → first streamed chunk. */
  ttftMs: z.number().optional(),
  inputTokens: z.number().int().optional(),
  outputTokens: z.number().int().optional(),
  /** The answer came from the result cache. */
  cached: z.boolean().optional(),
  error: z.string().optional(),
});
export type TaskSummary = z.infer<typeof taskSummarySchema>;

/** `GET /api/tasks` → 200 (json). `nextCursor`: older tasks remain. */
export const taskPageSchema = z.object({
  tasks: z.array(taskSummarySchema),
  nextCursor: z.string().optional(),
});
export type TaskPage = z.infer<typeof taskPageSchema>;

/** What happened to a task, in order. */
export const TIMELINE_KINDS = [
  'queued',
  'assigned',
  'retrying',
  'reprioritized',
  'completed',
  'failed',
  'cancelled',
] as const;
export const timelineEventSchema = z.object({
  at: z.number().int(),
  kind: z.enum(TIMELINE_KINDS),
  attempt: z.number().int().optional(),
  workerId: workerIdSchema.optional(),
  /** Why an attempt ended or the task failed; the new priority for `reprioritized`. */
  detail: z.string().optional(),
});
export type TimelineEvent = z.infer<typeof timelineEventSchema>;

/** `GET /api/tasks/{id}/timeline` → 200. */
export const taskTimelineSchema = z.object({
  task: taskSummarySchema,
  events: z.array(timelineEventSchema),
});
export type TaskTimeline = z.infer<typeof taskTimelineSchema>;

// ── Usage ───────────────────────────────────────────────────────────────────

export const USAGE_GROUPS = ['tenant', 'model', 'worker', 'hour', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

/**
 * `GET /api/usage`: finished tasks between `from` and `to` (default: the
 * last 24 hours), summed per group. `groupBy` is a comma list of
 * USAGE_GROUPS (default `tenant`). A user sees its own tenant only.
 */
export const usageQuerySchema = z
  .object({
    from: instantSchema.optional(),
    to: instantSchema.optional(),
    groupBy: z
      .string()
      .default('tenant')
      .transform((s, ctx) => {
        const parts = [...new Set(s.split(',').map((p) => p.trim()))].filter(Boolean);
        for (const p of parts) {
          if (!(USAGE_GROUPS as readonly string[]).includes(p)) {
            ctx.addIssue({
              code: 'custom',
              message: `groupBy: ${p} is not one of ${USAGE_GROUPS.join(', ')}`,
            });
            return z.NEVER;
          }
        }
        return parts as UsageGroup[];
      }),
    tenant: tenantNameSchema.optional(),
    format: exportFormatSchema,
  })
  .strict();
export type UsageQuery = z.infer<typeof usageQuerySchema>;

/** One group's sums; the group's keys are present as `groupBy` asked. */
export const usageRowSchema = z.object({
  tenant: z.string().optional(),
  model: z.string().optional(),
  workerId: z.string().optional(),
  /** The hour's or day's start (Unix ms, UTC) for `hour` / `day`. */
  period: z.number().int().optional(),
  /** Tasks finished (completed, failed or cancelled). */
  requests: z.number().int(),
  completed: z.number().int(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  /** Seconds workers spent on the tasks' answers. */
  computeSeconds: z.number(),
  cacheHits: z.number().int(),
});
export type UsageRow = z.infer<typeof usageRowSchema>;

/** `GET /api/usage` → 200 (json). */
export const usageReportSchema = z.object({
  from: z.number().int(),
  to: z.number().int(),
  groupBy: z.array(z.enum(USAGE_GROUPS)),
  rows: z.array(usageRowSchema),
});
export type UsageReport = z.infer<typeof usageReportSchema>;

// ── Alerts ──────────────────────────────────────────────────────────────────

export const ALERT_RULES = [
  /** A worker that was online went offline (and has not come back). */
  'worker_down',
  /** More than N tasks queued for M seconds. */
  'backlog',
  /** The share of tasks failing over the window is above a bound. */
  'error_rate',
  /** p95 submission → result over the window is above a bound. */
  'latency_p95',
  /** Tasks wait for a model no online worker serves. */
  'no_worker_for_model',
] as const;
export const alertRuleSchema = z.enum(ALERT_RULES);
export type AlertRule = z.infer<typeof alertRuleSchema>;

/** One alert: a rule firing for a subject (a worker, a queue, a model, or the fleet). */
export const alertSchema = z.object({
  /** `rule:subject`, stable while it fires. */
  id: z.string(),
  rule: alertRuleSchema,
  subject: z.string(),
  state: z.enum(['firing', 'resolved']),
  severity: z.enum(['warning', 'critical']),
  /** One sentence for a person. */
  message: z.string(),
  /** The measured value that made it fire (tasks, ratio, ms…). */
  value: z.number().optional(),
  firedAt: z.number().int(),
  resolvedAt: z.number().int().optional(),
});
export type Alert = z.infer<typeof alertSchema>;

/** `GET /api/alerts` → 200: what fires now, and the latest that resolved. */
export const alertsResponseSchema = z.object({
  firing: z.array(alertSchema),
  recent: z.array(alertSchema),
});
export type AlertsResponse = z.infer<typeof alertsResponseSchema>;

// ── Live series ─────────────────────────────────────────────────────────────

/** One second of the fleet, as the master measured it. */
export const seriesPointSchema = z.object({
  /** The second's start, Unix ms. */
  at: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  retried: z.number().int(),
  /** Over the tasks that finished in the last 10 seconds (absent when none did). */
  latencyP50Ms: z.number().optional(),
  latencyP95Ms: z.number().optional(),
  ttftP50Ms: z.number().optional(),
  /** Waiting tasks per queue name. */
  queued: z.record(z.string(), z.number().int()),
  slots: z.number().int(),
  busy: z.number().int(),
  workersOnline: z.number().int(),
  /**
   * Seconds the point covers when it is coarser than one (an older range read
   * from Prometheus): its counts are sums over them. Absent: one second.
   */
  seconds: z.number().int().positive().optional(),
});
export type SeriesPoint = z.infer<typeof seriesPointSchema>;

/** Seconds of fine series the master keeps in memory. */
export const SERIES_SECONDS = 3600;

/**
 * `GET /api/series`: the points between `from` and `to` (default: the last
 * SERIES_SECONDS). Older than the master's memory, points come from
 * Prometheus when PROMETHEUS_URL is set.
 */
export const seriesQuerySchema = z
  .object({
    from: instantSchema.optional(),
    to: instantSchema.optional(),
    format: exportFormatSchema,
  })
  .strict();
export type SeriesQuery = z.infer<typeof seriesQuerySchema>;

/** `GET /api/series` → 200 (json), oldest point first. */
export const seriesResponseSchema = z.object({
  from: z.number().int(),
  to: z.number().int(),
  points: z.array(seriesPointSchema),
  /** Why part of the range has no points (older than memory, Prometheus unset or unreachable). */
  gap: z.string().optional(),
});
export type SeriesResponse = z.infer<typeof seriesResponseSchema>;

// ── Alert webhook ───────────────────────────────────────────────────────────

/** Unix seconds of the delivery try; signed with the body. */
export const ALERT_TIMESTAMP_HEADER = 'X-Flota-Timestamp';
/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with ALERT_WEBHOOK_SECRET>`. */
export const ALERT_SIGNATURE_HEADER = 'X-Flota-Signature';

/** The JSON body POSTed to ALERT_WEBHOOK_URL on each firing or resolved change. */
export const alertWebhookBodySchema = z.object({
  alert: alertSchema,
  /** FLEET_NAME, or the master's id. */
  fleet: z.string(),
});
export type AlertWebhookBody = z.infer<typeof alertWebhookBodySchema>;
