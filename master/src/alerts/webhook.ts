/**
 * Alert changes POSTed to ALERT_WEBHOOK_URL, signed, in the order they
 * happened. One delivery at a time; a network error, a 5xx or a 429 is tried
 * again after a jittered, doubling wait, up to `tries` times (six tries take
 * about two minutes at most), then given up with a warning. The queue is
 * bounded: past `maxQueued` the oldest waiting delivery is dropped. `send`
 * never waits, so evaluation never does either.
 */
import { createHmac } from 'node:crypto';
import { FlotaError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { type BackoffOptions, backoffDelay } from '../../../common/retry.ts';
import {
  ALERT_SIGNATURE_HEADER,
  ALERT_TIMESTAMP_HEADER,
  type Alert,
  type AlertWebhookBody,
} from '../../../proto/src/schemas/console.ts';

export const WEBHOOK_OUTCOMES = ['delivered', 'failed', 'dropped'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

export interface AlertWebhookOptions {
  url: string;
  secret: string;
  /** What `fleet` says in each body. */
  fleet: string;
  log: Logger;
  /** Tries per delivery, the first included. Default 6. */
  tries?: number;
  /** Waits between tries. Default 4 s doubling to 60 s (full jitter). */
  backoff?: BackoffOptions;
  /** One try's limit. Default 10 s. */
  timeoutMs?: number;
  /** Deliveries waiting at most. Default 1,000. */
  maxQueued?: number;
}

/** `sha256=<hex>` over `<timestamp>.<body>`: what a receiver recomputes to trust a delivery. */
export function signatureOf(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** A try that may succeed later (network, timeout, 5xx, 429) or never (other answers). */
class DeliveryError extends FlotaError {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super('webhook_delivery', message);
  }
}

export class AlertWebhook {
  private readonly log: Logger;
  private readonly tries: number;
  private readonly backoff: BackoffOptions;
  private readonly timeoutMs: number;
  private readonly maxQueued: number;
  private readonly queue: Array<{ id: string; body: string }> = [];
  private readonly outcomes = new Map<WebhookOutcome, number>();
  private pumping = false;
  private closed = false;
  private wait: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private inFlight: AbortController | undefined;

  constructor(private readonly options: AlertWebhookOptions) {
    this.log = options.log.child({ component: 'alert-webhook' });
    this.tries = options.tries ?? 6;
    this.backoff = options.backoff ?? { baseMs: 4_000, maxMs: 60_000 };
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxQueued = options.maxQueued ?? 1_000;
  }

  /** Deliveries so far by outcome (for the metrics). */
  count(outcome: WebhookOutcome): number {
    return this.outcomes.get(outcome) ?? 0;
  }

  /** Deliveries waiting or being tried. */
  get backlog(): number {
    return this.queue.length;
  }

  send(alert: Alert): void {
    if (this.closed) return;
    const body: AlertWebhookBody = { alert, fleet: this.options.fleet };
    const delivery = { id: alert.id, body: JSON.stringify(body) };
    this.queue.push(delivery);
    if (this.queue.length > this.maxQueued) {
      // The one being tried stays at the head; the oldest waiting one makes room.
      const oldest = this.pumping ? 1 : 0;
      const [dropped] = this.queue.splice(Math.min(oldest, this.queue.length - 1), 1);
      this.counted('dropped');
      this.log.warn(
        { alert: dropped?.id, max: this.maxQueued },
        'alert delivery dropped: queue full',
      );
    }
    void this.pump();
  }

  close(): void {
    this.closed = true;
    if (this.queue.length > 0) {
      this.log.warn(
        { undelivered: this.queue.length },
        'alert deliveries not sent before shutdown',
      );
    }
    this.queue.length = 0;
    this.inFlight?.abort();
    if (this.wait) {
      clearTimeout(this.wait.timer);
      this.wait.wake();
    }
  }

  private counted(outcome: WebhookOutcome): void {
    this.outcomes.set(outcome, this.count(outcome) + 1);
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const head = this.queue[0] as { id: string; body: string };
        await this.deliver(head);
        if (this.queue[0] === head) this.queue.shift();
      }
    } finally {
      this.pumping = false;
    }
  }

  private async deliver(delivery: { id: string; body: string }): Promise<void> {
    for (let attempt = 0; attempt < this.tries && !this.closed; attempt++) {
      try {
        await this.post(delivery.body);
        this.counted('delivered');
        return;
      } catch (err) {
        if (this.closed) return;
        const { message, retryable } =
          err instanceof DeliveryError ? err : new DeliveryError(String(err), true);
        const last = !retryable || attempt + 1 >= this.tries;
        if (last) {
          this.counted('failed');
          this.log.warn(
            { alert: delivery.id, tries: attempt + 1, reason: message },
            'alert delivery given up',
          );
          return;
        }
        this.log.debug(
          { alert: delivery.id, try: attempt + 1, reason: message },
          'alert delivery failed, will retry',
        );
        await this.pause(backoffDelay(attempt, this.backoff));
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.wait = undefined;
        resolve();
      };
      this.wait = { timer: setTimeout(wake, ms), wake };
    });
  }

  private async post(body: string): Promise<void> {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const controller = new AbortController();
    this.inFlight = controller;
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const res = await fetch(this.options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [ALERT_TIMESTAMP_HEADER]: timestamp,
          [ALERT_SIGNATURE_HEADER]: signatureOf(this.options.secret, timestamp, body),
        },
        body,
        signal: controller.signal,
        redirect: 'error',
      }).catch((err: unknown) => {
        const reason = controller.signal.aborted
          ? `no answer within ${this.timeoutMs} ms`
          : String((err as Error).cause ?? err);
        throw new DeliveryError(reason, true);
      });
      // The answer's body is not ours to read; drop it so the connection is freed.
      await res.body?.cancel().catch(() => undefined);
      if (res.ok) return;
      const retryable = res.status >= 500 || res.status === 429;
      throw new DeliveryError(`HTTP ${res.status}`, retryable);
    } finally {
      clearTimeout(timer);
      this.inFlight = undefined;
    }
  }
}
