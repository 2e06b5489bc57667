/**
 * Every failure tsockify reports has a class here and a stable `code`. Callers branch on
 * `code`, never on message text. `toHttpStatus` and `toCloseCode` are the one place that
 * maps a failure to the wire: an HTTP status before the upgrade, a close code after it.
 */

export type TsockifyErrorCode =
  | 'TSOCK_ERR_INVALID_OPTION'
  | 'TSOCK_ERR_BAD_REQUEST'
  | 'TSOCK_ERR_METHOD_NOT_ALLOWED'
  | 'TSOCK_ERR_SUBPROTOCOL'
  | 'TSOCK_ERR_TOKEN_MISSING'
  | 'TSOCK_ERR_TOKEN_INVALID'
  | 'TSOCK_ERR_AUTH'
  | 'TSOCK_ERR_PLUGIN_UNAVAILABLE'
  | 'TSOCK_ERR_TARGET_DENIED'
  | 'TSOCK_ERR_TARGET_UNREACHABLE'
  | 'TSOCK_ERR_TARGET_TIMEOUT'
  | 'TSOCK_ERR_TARGET_RESET'
  | 'TSOCK_ERR_LIMIT'
  | 'TSOCK_ERR_RECORD'
  | 'TSOCK_ERR_LISTEN';

export class TsockifyError extends Error {
  readonly code: TsockifyErrorCode;

  constructor(code: TsockifyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration value is wrong. Raised when the server is created, never per connection. */
export class InvalidOptionError extends TsockifyError {
  constructor(message: string) {
    super('TSOCK_ERR_INVALID_OPTION', message);
  }
}

/** The HTTP request is not a WebSocket handshake we can accept. */
export class BadRequestError extends TsockifyError {
  constructor(message: string) {
    super('TSOCK_ERR_BAD_REQUEST', message);
  }
}

export class MethodNotAllowedError extends TsockifyError {
  constructor(method: string) {
    super('TSOCK_ERR_METHOD_NOT_ALLOWED', `method ${method} is not allowed`);
  }
}

/** The client offered subprotocols, none of them `binary`. */
export class SubprotocolError extends TsockifyError {
  constructor(offered: string) {
    super('TSOCK_ERR_SUBPROTOCOL', `unsupported subprotocol "${offered}": only "binary" is supported`);
  }
}

/** No token in the query string, cookie or Host header while a token plugin is configured. */
export class TokenMissingError extends TsockifyError {
  constructor() {
    super('TSOCK_ERR_TOKEN_MISSING', 'missing token');
  }
}

/** The token is unknown, expired, tampered with or malformed. The message never holds the token. */
export class TokenInvalidError extends TsockifyError {
  constructor(reason = 'invalid token') {
    super('TSOCK_ERR_TOKEN_INVALID', reason);
  }
}

/**
 * An auth plugin refused the request. `status` and `headers` go on the wire as they are
 * (e.g. 401 with `WWW-Authenticate`).
 */
export class AuthenticationError extends TsockifyError {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(message: string, status = 403, headers: Record<string, string> = {}) {
    super('TSOCK_ERR_AUTH', message);
    this.status = status;
    this.headers = headers;
  }
}

/** A plugin's backend (Redis, a token API) is down or too slow: fail closed with 503. */
export class PluginUnavailableError extends TsockifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TSOCK_ERR_PLUGIN_UNAVAILABLE', message, options);
  }
}

/** The resolved target is not allowed by policy. */
export class TargetDeniedError extends TsockifyError {
  constructor(message: string) {
    super('TSOCK_ERR_TARGET_DENIED', message);
  }
}

/** The target refused the connection or could not be reached. */
export class TargetUnreachableError extends TsockifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TSOCK_ERR_TARGET_UNREACHABLE', message, options);
  }
}

export class TargetTimeoutError extends TsockifyError {
  constructor(message: string) {
    super('TSOCK_ERR_TARGET_TIMEOUT', message);
  }
}

/** The target connection failed after the session was established. */
export class TargetResetError extends TsockifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TSOCK_ERR_TARGET_RESET', message, options);
  }
}

/** A connection limit was reached: `perClient` → 429, overall → 503. */
export class LimitError extends TsockifyError {
  readonly perClient: boolean;

  constructor(message: string, perClient: boolean) {
    super('TSOCK_ERR_LIMIT', message);
    this.perClient = perClient;
  }
}

export class RecordError extends TsockifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TSOCK_ERR_RECORD', message, options);
  }
}

export class ListenError extends TsockifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TSOCK_ERR_LISTEN', message, options);
  }
}

/**
 * The stable code of a tsockify error, read by shape rather than `instanceof`: a plugin may
 * load another copy of this package (ESM and CommonJS, or a plugin installed elsewhere), and
 * its errors must map the same way.
 */
export function errorCode(err: unknown): TsockifyErrorCode | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('TSOCK_ERR_') ? (code as TsockifyErrorCode) : undefined;
}

/** The HTTP status a failure gets when it happens before the upgrade. */
export function toHttpStatus(err: unknown): number {
  const code = errorCode(err);
  switch (code) {
    case 'TSOCK_ERR_AUTH': {
      const status = (err as { status?: unknown }).status;
      return typeof status === 'number' && status >= 400 && status <= 599 ? status : 403;
    }
    case 'TSOCK_ERR_LIMIT':
      return (err as { perClient?: unknown }).perClient ? 429 : 503;
    case 'TSOCK_ERR_BAD_REQUEST':
    case 'TSOCK_ERR_SUBPROTOCOL':
      return 400;
    case 'TSOCK_ERR_METHOD_NOT_ALLOWED':
      return 405;
    case 'TSOCK_ERR_TOKEN_MISSING':
    case 'TSOCK_ERR_TOKEN_INVALID':
      return 401;
    case 'TSOCK_ERR_TARGET_DENIED':
      return 403;
    case 'TSOCK_ERR_PLUGIN_UNAVAILABLE':
      return 503;
    case 'TSOCK_ERR_TARGET_UNREACHABLE':
      return 502;
    case 'TSOCK_ERR_TARGET_TIMEOUT':
      return 504;
    default:
      return 500;
  }
}

/** The WebSocket close code a failure gets when it happens after the upgrade (RFC 6455 7.4.1). */
export function toCloseCode(err: unknown): number {
  switch (errorCode(err)) {
    case 'TSOCK_ERR_TOKEN_INVALID':
    case 'TSOCK_ERR_AUTH':
    case 'TSOCK_ERR_TARGET_DENIED':
      return 1008;
    default:
      return 1011;
  }
}
