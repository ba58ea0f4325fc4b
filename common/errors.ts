/** One base error with a stable `code`; a subclass per meaning. */
export class FlotaError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * A start-up failure a person can fix: the message says what failed and why
 * (no trailing full stop), the hint what to do (whole sentences). The CLI
 * prints both on one line, without a stack.
 */
export class StartupError extends FlotaError {
  readonly hint: string;
  constructor(code: string, message: string, options: { hint: string; cause?: unknown }) {
    super(code, message, options);
    this.hint = options.hint;
  }
}

/** Configuration that cannot be used; the message lists every problem. */
export class ConfigError extends FlotaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('config_invalid', message, options);
  }
}

/** Input from outside (HTTP, Socket.IO, MQTT, gRPC) that failed validation. */
export class ValidationError extends FlotaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('bad_request', message, options);
  }
}

export class NotFoundError extends FlotaError {
  constructor(message: string) {
    super('not_found', message);
  }
}

/** A dependency (store, broker) is not reachable right now; the caller may retry. */
export class UnavailableError extends FlotaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
  }
}

/** A model provider failed (bad key, HTTP error, timeout). */
export class ProviderError extends FlotaError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'provider_error', message, options);
  }
}

/** The request contradicts the resource's state (e.g. cancelling a finished task). */
export class ConflictError extends FlotaError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** Exit status for a failure: 2 for configuration a person must change, 1 for anything else. */
export function exitCodeOf(err: unknown): number {
  return err instanceof ConfigError ? 2 : 1;
}

/** The text the CLI prints for a FlotaError: `flota: <message>`, and for a start-up error what to do. */
export function describeError(err: FlotaError): string {
  if (!(err instanceof StartupError)) return `flota: ${err.message}`;
  return `flota: ${err.message}. ${err.hint} \`flota doctor\` checks the whole setup.`;
}
