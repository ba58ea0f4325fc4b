/** One base error with a stable `code`; a subclass per meaning. */
export class FlotaError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
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
