import { Redis, ReplyError, type RedisOptions } from 'ioredis';
import type { Logger, RequestContext, Target, TokenPlugin } from '@tsockify/core';
import { InvalidOptionError, PluginUnavailableError, TokenInvalidError, silentLogger } from '@tsockify/core';
import { parseRedisSource, type RedisSource } from './redis-source.js';
import { errorMessage } from './source.js';
import { parseTargetText, targetFromHostPort } from './target-text.js';
import type { SourceOptions } from './source.js';

/** Settings of `TokenRedis` that are not part of `--token-source`. */
export interface TokenRedisSettings {
  /** Longest wait for one lookup, connecting included, before it fails with 503. Default 2000 ms. */
  commandTimeoutMs?: number;
  /** Longest wait for a TCP connection to Redis. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Longest pause between reconnection attempts while Redis is down. Default 1000 ms. */
  maxReconnectDelayMs?: number;
  /** Connect with TLS (`rediss://`); `true` uses the system CAs. */
  tls?: boolean | RedisOptions['tls'];
  /** Name shown by Redis `CLIENT LIST`. Default `tsockify-token-redis`. */
  connectionName?: string;
}

export interface TokenRedisOptions extends Partial<RedisSource>, TokenRedisSettings {
  host: string;
  logger?: Logger;
}

/**
 * websockify's `TokenRedis`: `--token-source host[:port[:db[:password[:namespace]]]]`; the
 * key `[namespace:]token` holds the target as JSON `{"host": "h:p"}` or plain `h:p`
 * (`[v6]:port` and `v6addr:port` work; a JSON `port` member is also accepted).
 *
 * Beats websockify, which opens a new connection per lookup with no timeout: one shared
 * ioredis connection, opened at the first lookup and re-established automatically with
 * back-off when Redis restarts; every lookup is bounded by `commandTimeoutMs` and fails
 * closed with a `PluginUnavailableError` (503) while Redis is down or slow. Tokens and
 * values are never logged.
 */
export class TokenRedis implements TokenPlugin {
  readonly name = 'TokenRedis';
  readonly client: Redis;
  private readonly namespace: string;
  private readonly log: Logger;
  private readonly where: string;
  private down = false;

  constructor(options: TokenRedisOptions) {
    if (!options.host) throw new InvalidOptionError('TokenRedis: options.host is required');
    const commandTimeout = positive('commandTimeoutMs', options.commandTimeoutMs, 2000);
    const connectTimeout = positive('connectTimeoutMs', options.connectTimeoutMs, 2000);
    const maxDelay = positive('maxReconnectDelayMs', options.maxReconnectDelayMs, 1000);
    this.log = options.logger ?? silentLogger;
    this.namespace = options.namespace ? `${options.namespace}:` : '';
    const port = options.port ?? 6379;
    this.where = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
    const tls = options.tls === true ? {} : options.tls || undefined;
    this.client = new Redis({
      host: options.host,
      port,
      db: options.db ?? 0,
      password: options.password,
      tls,
      // Connect at the first lookup, not at construction: a server may start before Redis.
      lazyConnect: true,
      connectTimeout,
      commandTimeout,
      // Queued lookups wait for a reconnect, but are failed after one attempt rather than
      // 20, so the offline queue stays short while Redis is down (commandTimeout bounds each).
      maxRetriesPerRequest: 1,
      // Never give up reconnecting: recovery must not need a restart.
      retryStrategy: (times) => Math.min(times * 100, maxDelay),
      enableReadyCheck: true,
      // Visible in CLIENT LIST, so an operator can see tsockify holds exactly one connection.
      connectionName: options.connectionName ?? 'tsockify-token-redis',
    });
    // ioredis emits 'error' on every failed reconnect: log the transitions, not each retry.
    this.client.on('error', (err: Error) => {
      if (this.down) return;
      this.down = true;
      this.log.warn({ redis: this.where, err: err.message }, 'TokenRedis: Redis unavailable, reconnecting');
    });
    this.client.on('ready', () => {
      if (!this.down) return;
      this.down = false;
      this.log.info({ redis: this.where }, 'TokenRedis: Redis reachable again');
    });
  }

  /** Build from a `--token-source` string (checked now; Redis itself is contacted at the first lookup). */
  static async fromSource(source: string | undefined, options: SourceOptions & TokenRedisSettings = {}): Promise<TokenRedis> {
    return new TokenRedis({ ...options, ...parseRedisSource(source) });
  }

  async lookup(token: string, ctx?: RequestContext): Promise<Target | null> {
    let value: string | null;
    try {
      value = await this.client.get(this.namespace + token);
    } catch (err) {
      if (err instanceof ReplyError && errorMessage(err).startsWith('WRONGTYPE')) {
        throw new TokenInvalidError('token record is not a string');
      }
      throw new PluginUnavailableError(`TokenRedis: Redis ${this.where} unavailable: ${errorMessage(err)}`, { cause: err });
    }
    if (value === null) return null;
    try {
      return parseRedisValue(value);
    } catch {
      (ctx?.log ?? this.log).warn({ redis: this.where }, 'TokenRedis: token record is not {"host": "host:port"} or host:port');
      throw new TokenInvalidError('token record malformed');
    }
  }

  /** Close the connection (pending lookups fail). */
  async close(): Promise<void> {
    this.client.disconnect();
  }
}

/** A Redis value: JSON `{"host": "h:p"}` (or `{"host": "h", "port": p}`), else plain `h:p`. */
export function parseRedisValue(raw: string): Target {
  const value = raw.trim();
  if (value.startsWith('{')) {
    const json = JSON.parse(value) as { host?: unknown; port?: unknown };
    if (json.port !== undefined) return targetFromHostPort(json.host, json.port);
    if (typeof json.host !== 'string') throw new InvalidOptionError('no "host" member');
    return parseTargetText(json.host);
  }
  return parseTargetText(value);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(`invalid TokenRedis ${name} ${String(value)}: expected a positive number of ms`);
  }
  return value;
}
