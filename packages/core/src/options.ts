import type { Writable } from 'node:stream';
import type { AuthPlugin, Target, TokenPlugin } from './plugins.js';
import type { Logger } from './logger.js';
import { InvalidOptionError } from './errors.js';
import { silentLogger } from './logger.js';
import { TargetPolicy } from './allow-list.js';
import { resolveCookieExchange, type CookieExchangeOptions, type ResolvedCookieExchange } from './cookie.js';

/** Where a standalone server listens. Exactly one of `port`, `unixPath` or `fd`. */
export interface ListenOptions {
  /** Address to bind; omitted means all interfaces, IPv4 and IPv6 (dual stack). */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port?: number;
  /** Listen on a unix socket at this path instead of TCP. */
  unixPath?: string;
  /** Permissions of the unix socket (default 0o600). */
  unixMode?: number;
  /** An already-listening socket passed in (inetd: 0; systemd: 3...). */
  fd?: number;
  /** Prefer IPv6 when `host` is omitted or a name (websockify `-6`). */
  preferIpv6?: boolean;
}

/** TLS for the client side: plain ws and TLS share one port, told apart by the first byte. */
export interface TlsOptions {
  /** PEM certificate chain (may also hold the key). */
  cert: string | Buffer;
  /** PEM private key; defaults to the key inside `cert`. */
  key?: string | Buffer;
  passphrase?: string;
  /** Refuse plain (non-TLS) connections. */
  sslOnly?: boolean;
  /** Require and verify client certificates against `ca`. */
  verifyClient?: boolean;
  /** CA bundle (PEM) for client certificates. */
  ca?: string | Buffer;
  /** Minimum protocol version (websockify `--ssl-version`). */
  minVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list (websockify `--ssl-ciphers`). */
  ciphers?: string;
}

/** TLS from tsockify to the target (websockify `--ssl-target`). */
export interface TargetTlsOptions {
  /** Trust these CAs (PEM) instead of the system store; a self-signed server certificate works here too. */
  ca?: string | Buffer;
  /** Accept exactly this certificate, by SHA-256 fingerprint (`AB:CD:...`), whatever signed it. */
  fingerprint256?: string;
  /** Check the certificate's host name (default true; off when pinning by fingerprint). */
  checkServerIdentity?: boolean;
  /** Server name for SNI and the host-name check; defaults to the target host. */
  servername?: string;
}

/** Static files on the same port (websockify `--web`) and extra mounted folders. */
export interface WebOptions {
  /** Folder served at `/`. */
  root?: string;
  /** Folders served under a URL prefix, checked before `root` (the built-in viewer uses this). */
  mounts?: Array<{ prefix: string; dir: string }>;
  /** Answer 404 instead of listing directories. */
  fileOnly?: boolean;
  /** Run the auth plugin on plain HTTP requests too. */
  auth?: boolean;
  /** File served for `/` when `root` has no index.html (e.g. `vnc.html`). */
  index?: string;
}

export interface TsockifyOptions {
  /** Where to listen when started with `listen()`. Not needed with `handleUpgrade`/`attach`. */
  listen?: ListenOptions;
  /** A fixed target: `host:port`, `[v6]:port`, or a target object. Mutually exclusive with `tokenPlugin`. */
  target?: string | Target;
  /** Chooses the target per connection from a token. */
  tokenPlugin?: TokenPlugin;
  /** The token is the Host header without its port (websockify `--host-token`). */
  hostToken?: boolean;
  /** Checks each request after the token lookup, before dialling. */
  authPlugin?: AuthPlugin;
  /**
   * Longest wait for a token or auth plugin, in ms; a plugin that takes longer (a backend down
   * or slow) gets the client a 503 (fail closed). Default 5000.
   */
  pluginTimeoutMs?: number;
  /** Trade `?token=` on a page for an HttpOnly cookie (needs `tokenPlugin`); `true` = the defaults. */
  cookieExchange?: boolean | CookieExchangeOptions;
  /**
   * Targets a session may reach: `CIDR[:PORTS]` entries such as `10.0.0.0/8:5900-5999` or
   * `[fd00::]/8:5901`. Checked on the addresses actually dialled (names are resolved first).
   * When given, every other address is refused with 403, and loopback too unless
   * `allowLoopbackTargets`.
   */
  allowTargets?: readonly string[];
  /**
   * Loopback addresses and unix socket targets. Default: allowed, except in central mode
   * (a token plugin) with `allowTargets` given. Without an allow-list they stay allowed, as
   * websockify's token files commonly point at localhost.
   */
  allowLoopbackTargets?: boolean;
  /** 169.254/16 and fe80::/10. Default: denied in central mode (a token plugin), allowed otherwise. */
  allowLinkLocalTargets?: boolean;
  /** Cloud metadata services (169.254.169.254, fd00:ec2::254, 100.100.100.200). Default: denied in central mode, allowed otherwise. */
  allowMetadataTargets?: boolean;
  tls?: TlsOptions;
  /** Dial the target over TLS; `true` uses the system CAs. */
  targetTls?: boolean | TargetTlsOptions;
  web?: WebOptions;
  /** Largest client message accepted, in bytes; larger ones close with 1009. Default 4 MiB. */
  maxMessageSize?: number;
  /** Send a ping every this many ms (websockify `--heartbeat`, in seconds there). 0 = off. */
  heartbeatMs?: number;
  /** How long to wait for the target to accept, in ms. Default 10000. */
  connectTimeoutMs?: number;
  /** How long a client may take to send its request headers (and TLS handshake), in ms. Default 5000. */
  headersTimeoutMs?: number;
  /** Most sessions (and upgrades in progress) at once; more are refused with 503. Default 16384; 0 = no limit. */
  maxConnections?: number;
  /** Most sessions from one client address; more are refused with 429. Default 0 = no limit. */
  maxConnectionsPerClient?: number;
  /** Close a session with 1000 "Idle timeout" after this many ms without bytes either way. 0 = off (default). */
  sessionIdleTimeoutMs?: number;
  /**
   * How sessions are numbered: `first`, `first + step`, `first + 2 * step`, ... Processes
   * that serve one port together (a cluster) each take their own `first` from 1 to `step`
   * and the same `step` (the process count), so that session ids in logs and `record` file
   * names never collide. Default `{ first: 1, step: 1 }`.
   */
  sessionIds?: { first?: number; step?: number };
  /** Record each session to `${record}.${n}` in noVNC's playback format (`n` is the session id). */
  record?: string;
  /** Write websockify's per-frame traffic legend characters here (websockify `--traffic`). */
  traffic?: Writable | boolean;
  /** Where logs go. Without one, nothing is logged. Tokens are never passed to it. */
  logger?: Logger;
}

export interface ResolvedOptions {
  listen: ListenOptions;
  staticTarget: Target | undefined;
  tokenPlugin: TokenPlugin | undefined;
  hostToken: boolean;
  authPlugin: AuthPlugin | undefined;
  pluginTimeoutMs: number;
  cookieExchange: ResolvedCookieExchange | undefined;
  /** Undefined when no target is checked (no allow-list, and no token plugin). */
  targetPolicy: TargetPolicy | undefined;
  tls: TlsOptions | undefined;
  targetTls: TargetTlsOptions | undefined;
  web: WebOptions | undefined;
  maxMessageSize: number;
  heartbeatMs: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerClient: number;
  sessionIdleTimeoutMs: number;
  sessionIds: { first: number; step: number };
  record: string | undefined;
  traffic: Writable | undefined;
  logger: Logger;
}

/** Largest payload of one message sent to the client (the websockify contract). */
export const MAX_FRAME_PAYLOAD = 65536;

/**
 * Parse `host:port`, `[v6]:port` or `v6addr:port` (split on the last colon, as websockify
 * does). Throws an `InvalidOptionError` naming the value and the expected form.
 */
export function parseHostPort(value: string, what = 'target'): { host: string; port: number } {
  const i = value.lastIndexOf(':');
  if (i <= 0 || i === value.length - 1) {
    throw new InvalidOptionError(`invalid ${what} "${value}": expected host:port`);
  }
  let host = value.slice(0, i);
  const portText = value.slice(i + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new InvalidOptionError(`invalid ${what} "${value}": port "${portText}" is not a number from 1 to 65535`);
  }
  if (host.length === 0) throw new InvalidOptionError(`invalid ${what} "${value}": expected host:port`);
  return { host, port };
}

function positiveNumber(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new InvalidOptionError(`invalid ${name} ${String(value)}: expected a ${allowZero ? 'non-negative' : 'positive'} number`);
  }
  return value;
}

function sessionIds(opt: TsockifyOptions['sessionIds']): { first: number; step: number } {
  if (opt === undefined) return { first: 1, step: 1 };
  if (opt === null || typeof opt !== 'object') throw new InvalidOptionError(`invalid sessionIds ${String(opt)}: expected { first, step }`);
  const ids = { first: opt.first ?? 1, step: opt.step ?? 1 };
  for (const name of ['first', 'step'] as const) {
    const v = ids[name];
    if (!Number.isSafeInteger(v) || v < 1) throw new InvalidOptionError(`invalid sessionIds.${name} ${String(v)}: expected a whole number of at least 1`);
  }
  return ids;
}

/** Validate options once, when the server is created: bad config fails at startup. */
export function resolveOptions(options: TsockifyOptions): ResolvedOptions {
  if (options.target !== undefined && options.tokenPlugin !== undefined) {
    throw new InvalidOptionError('target and tokenPlugin are mutually exclusive: give one');
  }
  let target: Target | undefined;
  if (typeof options.target === 'string') target = parseHostPort(options.target);
  else if (options.target !== undefined) target = options.target;
  if (options.hostToken && !options.tokenPlugin) {
    throw new InvalidOptionError('hostToken needs a tokenPlugin');
  }
  if (options.web?.auth && !options.authPlugin) {
    throw new InvalidOptionError('web.auth needs an authPlugin');
  }
  if (options.tls) {
    if (!options.tls.cert) throw new InvalidOptionError('tls.cert is required when tls is set');
    if (options.tls.verifyClient && !options.tls.ca) {
      throw new InvalidOptionError('tls.verifyClient needs tls.ca (a CA bundle to verify client certificates)');
    }
  }
  const cookieExchange = resolveCookieExchange(options.cookieExchange);
  if (cookieExchange && !options.tokenPlugin) throw new InvalidOptionError('cookieExchange needs a tokenPlugin (it trades a token for a cookie)');
  if (cookieExchange && options.hostToken) throw new InvalidOptionError('cookieExchange and hostToken cannot be combined: the token is the Host header');
  const listen = options.listen ?? {};
  const ways = [listen.port !== undefined, listen.unixPath !== undefined, listen.fd !== undefined].filter(Boolean).length;
  if (ways > 1) throw new InvalidOptionError('listen: give exactly one of port, unixPath or fd');
  if (listen.port !== undefined && (!Number.isInteger(listen.port) || listen.port < 0 || listen.port > 65535)) {
    throw new InvalidOptionError(`invalid listen port ${String(listen.port)}: expected 0 to 65535`);
  }
  const targetTls = options.targetTls === true ? {} : options.targetTls === false ? undefined : options.targetTls;
  let traffic: Writable | undefined;
  if (options.traffic === true) traffic = process.stdout;
  else if (options.traffic) traffic = options.traffic;
  return {
    listen,
    staticTarget: target,
    tokenPlugin: options.tokenPlugin,
    hostToken: options.hostToken ?? false,
    authPlugin: options.authPlugin,
    pluginTimeoutMs: positiveNumber('pluginTimeoutMs', options.pluginTimeoutMs, 5_000),
    cookieExchange,
    targetPolicy: targetPolicy(options),
    tls: options.tls,
    targetTls,
    web: options.web,
    maxMessageSize: positiveNumber('maxMessageSize', options.maxMessageSize, 4 * 1024 * 1024),
    heartbeatMs: positiveNumber('heartbeatMs', options.heartbeatMs, 0, true),
    connectTimeoutMs: positiveNumber('connectTimeoutMs', options.connectTimeoutMs, 10_000),
    headersTimeoutMs: positiveNumber('headersTimeoutMs', options.headersTimeoutMs, 5_000),
    maxConnections: positiveNumber('maxConnections', options.maxConnections, 16_384, true),
    maxConnectionsPerClient: positiveNumber('maxConnectionsPerClient', options.maxConnectionsPerClient, 0, true),
    sessionIdleTimeoutMs: positiveNumber('sessionIdleTimeoutMs', options.sessionIdleTimeoutMs, 0, true),
    sessionIds: sessionIds(options.sessionIds),
    record: options.record,
    traffic,
    logger: options.logger ?? silentLogger,
  };
}

/**
 * The target policy (allow-list.ts), or undefined when nothing is checked. Central mode (a
 * token plugin chooses targets) denies link-local and cloud metadata addresses by default;
 * loopback only once an allow-list is given (websockify compatibility: token files commonly
 * point at localhost). Explicit booleans always win.
 */
function targetPolicy(options: TsockifyOptions): TargetPolicy | undefined {
  const central = options.tokenPlugin !== undefined;
  const allow = options.allowTargets;
  if (allow !== undefined && (!Array.isArray(allow) || allow.some((a) => typeof a !== 'string'))) {
    throw new InvalidOptionError('invalid allowTargets: expected a list of CIDR[:PORTS] strings');
  }
  for (const name of ['allowLoopbackTargets', 'allowLinkLocalTargets', 'allowMetadataTargets'] as const) {
    const v = options[name];
    if (v !== undefined && typeof v !== 'boolean') throw new InvalidOptionError(`invalid ${name} ${String(v)}: expected true or false`);
  }
  const policy = {
    ...(allow !== undefined ? { allow } : {}),
    allowLoopback: options.allowLoopbackTargets ?? !(central && allow !== undefined),
    allowLinkLocal: options.allowLinkLocalTargets ?? !central,
    allowMetadata: options.allowMetadataTargets ?? !central,
  };
  if (allow === undefined && policy.allowLoopback && policy.allowLinkLocal && policy.allowMetadata) return undefined;
  return new TargetPolicy(policy);
}
