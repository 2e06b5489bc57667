import { Redis } from 'ioredis';
import type { Logger } from '@tsockify/core';
import { InvalidOptionError, PluginUnavailableError, silentLogger } from '@tsockify/core';
import type { RedisSource } from './redis-source.js';
import { errorMessage } from './source.js';

/**
 * Remembers the token ids already used, each until its token expires, so that a one-time
 * token opens one session. Implement it to share the memory across gateway nodes.
 */
export interface ReplayCache {
  /**
   * Record `jti` as used until `expiresAtMs`. Resolves true the first time, false when it
   * was already used. Throws (or rejects with) a `PluginUnavailableError` when the store is
   * unreachable: the token is then refused (fail closed).
   */
  claim(jti: string, expiresAtMs: number): boolean | Promise<boolean>;
  /** Release connections and timers. */
  close?(): void | Promise<void>;
}

export interface MemoryReplayCacheOptions {
  /** Most token ids remembered at once; beyond it, tokens are refused with 503 until some expire. Default 1,000,000. */
  maxEntries?: number;
  /** The clock (tests). */
  now?: () => number;
}

/**
 * One process's memory of used token ids. Enough for one gateway; several nodes behind a
 * load balancer each have their own, so a token could be used once per node: use
 * `RedisReplayCache` there.
 */
export class MemoryReplayCache implements ReplayCache {
  private readonly used = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  private nextSweep = 0;

  constructor(options: MemoryReplayCacheOptions = {}) {
    const max = options.maxEntries ?? 1_000_000;
    if (!Number.isInteger(max) || max < 1) throw new InvalidOptionError(`invalid replay cache maxEntries ${String(max)}: expected a positive whole number`);
    this.maxEntries = max;
    this.now = options.now ?? Date.now;
  }

  /** Token ids remembered now (expired ones may linger until the next sweep). */
  get size(): number {
    return this.used.size;
  }

  claim(jti: string, expiresAtMs: number): boolean {
    const now = this.now();
    // Sweep at most once a second, or at once when full: claims stay O(1) on average.
    if (now >= this.nextSweep || this.used.size >= this.maxEntries) this.sweep(now);
    const until = this.used.get(jti);
    if (until !== undefined && until > now) return false;
    if (this.used.size >= this.maxEntries) {
      throw new PluginUnavailableError(`one-time token memory full (${this.maxEntries} token ids): refusing until some expire`);
    }
    this.used.set(jti, expiresAtMs);
    return true;
  }

  private sweep(now: number): void {
    this.nextSweep = now + 1000;
    for (const [jti, until] of this.used) if (until <= now) this.used.delete(jti);
  }
}

export interface RedisReplayCacheOptions extends Partial<RedisSource> {
  host: string;
  /** Key prefix; a token id is stored at `<namespace>:<jti>`. Default `tsockify:jti`. */
  namespace?: string;
  /** Longest wait for one claim before failing with 503. Default 2000 ms. */
  commandTimeoutMs?: number;
  logger?: Logger;
}

/**
 * Used token ids in Redis (`SET key 1 PX ttl NX`, kept a minute past the expiry), shared by every node that points at the
 * same Redis. One ioredis connection, reconnecting by itself; a claim waits at most
 * `commandTimeoutMs`, then fails closed with a `PluginUnavailableError` (503).
 */
export class RedisReplayCache implements ReplayCache {
  readonly client: Redis;
  private readonly prefix: string;
  private readonly log: Logger;
  private down = false;

  constructor(options: RedisReplayCacheOptions) {
    if (!options.host) throw new InvalidOptionError('RedisReplayCache: options.host is required');
    const timeout = options.commandTimeoutMs ?? 2000;
    this.prefix = `${options.namespace ?? 'tsockify:jti'}:`;
    this.log = options.logger ?? silentLogger;
    this.client = new Redis({
      host: options.host,
      port: options.port ?? 6379,
      db: options.db ?? 0,
      password: options.password,
      lazyConnect: true,
      connectTimeout: timeout,
      commandTimeout: timeout,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 100, 1000),
      connectionName: 'tsockify-replay-cache',
    });
    this.client.on('error', (err: Error) => {
      if (this.down) return;
      this.down = true;
      this.log.warn({ err: err.message }, 'one-time token store (Redis) unavailable, reconnecting');
    });
    this.client.on('ready', () => {
      if (!this.down) return;
      this.down = false;
      this.log.info('one-time token store (Redis) reachable again');
    });
  }

  async claim(jti: string, expiresAtMs: number): Promise<boolean> {
    // Keep the id a little past expiry: a clock a bit behind Redis's must not reopen it.
    const ttl = Math.max(1000, Math.ceil(expiresAtMs - Date.now()) + 60_000);
    try {
      const reply = await this.client.set(this.prefix + jti, '1', 'PX', ttl, 'NX');
      return reply === 'OK';
    } catch (err) {
      throw new PluginUnavailableError(`one-time token store unavailable: ${errorMessage(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
