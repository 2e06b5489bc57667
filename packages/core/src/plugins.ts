import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { PeerCertificate } from 'node:tls';
import type { Logger } from './logger.js';

/** Where a session's bytes go: a TCP host and port, or a unix socket path. */
export type Target = TcpTarget | UnixTarget;

export interface TcpTarget {
  /** Host name, IPv4 or IPv6 address (no brackets). */
  host: string;
  port: number;
  /** Opaque facts about the session for audit logs (subject, instance id, token id). Never secrets. */
  meta?: Record<string, string>;
  /** When the authorisation behind this target ends (ms since the epoch); the session is closed then with 1008. */
  expiresAt?: number;
}

export interface UnixTarget {
  /** Path of a unix domain socket. */
  unixSocket: string;
  meta?: Record<string, string>;
  expiresAt?: number;
}

export function isUnixTarget(t: Target): t is UnixTarget {
  return typeof (t as UnixTarget).unixSocket === 'string';
}

/** A short human-readable form of a target, for logs: `host:port`, `[v6]:port` or `unix:/path`. */
export function formatTarget(t: Target): string {
  if (isUnixTarget(t)) return `unix:${t.unixSocket}`;
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

/**
 * What a plugin knows about the request being authorised. Built once per upgrade (or per
 * plain HTTP request with `--web-auth`), before anything is answered.
 */
export interface RequestContext {
  /** The raw request. Its headers have already had every `ssl_*` header (any case) removed. */
  readonly req: IncomingMessage;
  /** Same object as `req.headers`. */
  readonly headers: IncomingHttpHeaders;
  /** The request path without the query string, e.g. `/websockify`. */
  readonly path: string;
  /** The parsed query string. */
  readonly query: URLSearchParams;
  /** Cookies sent with the request, by name. */
  readonly cookies: Readonly<Record<string, string>>;
  /** The client's address as seen by this process. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** True when the request arrived over TLS. */
  readonly secure: boolean;
  /** The verified client certificate, when `--verify-client` is on. */
  readonly clientCertificate?: PeerCertificate;
  /** The token found for this request (query `token`, cookie, or Host header), if any. */
  readonly token?: string;
  /**
   * Where `token` came from. `cookie` means tsockify's cookie exchange already redeemed it
   * (the exchange called `lookup` with `query`), so a one-time token must not be consumed
   * again: the session's later upgrades carry that cookie.
   */
  readonly tokenSource?: 'query' | 'cookie' | 'host';
  /** The target the token plugin chose (set for auth plugins, which run after lookup). */
  readonly target?: Target;
  /** A logger bound to this request. Never log the token itself. */
  readonly log: Logger;
}

/**
 * Chooses where a WebSocket goes. `lookup` may be sync or async.
 *
 * Return the target, or `null` when the token is unknown (the client gets 401). Throw a
 * `TokenInvalidError` to give a more precise reason (expired, bad signature), or a
 * `PluginUnavailableError` when a backend is down (the client gets 503).
 */
export interface TokenPlugin {
  /** A short name for logs, e.g. `TokenFile`. */
  readonly name?: string;
  /**
   * Resolve a token to a target.
   * @param token the token, already percent-decoded; never empty.
   * @param ctx the request being authorised.
   */
  lookup(token: string, ctx: RequestContext): Target | null | Promise<Target | null>;
  /** Release connections, timers and watchers. Called once when the server closes. */
  close?(): void | Promise<void>;
}

/**
 * Decides whether a request may proceed. Runs after the token lookup and before the target
 * is dialled. Return (or resolve) to allow; throw an `AuthenticationError` carrying the
 * HTTP status and headers to refuse. Any other exception is a 500 and is logged.
 */
export interface AuthPlugin {
  readonly name?: string;
  authenticate(ctx: RequestContext): void | Promise<void>;
  close?(): void | Promise<void>;
}

/** The trivial token plugin: every connection goes to one target, tokens are ignored. */
export function staticTarget(target: Target): TokenPlugin {
  return {
    name: 'static',
    lookup: () => target,
  };
}
