import type { BigIntStats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger, RequestContext, TcpTarget, TokenPlugin } from '@tsockify/core';
import { InvalidOptionError, PluginUnavailableError, silentLogger } from '@tsockify/core';
import { FileCache } from './file-cache.js';
import { parseRedisSource } from './redis-source.js';
import { MemoryReplayCache, RedisReplayCache, type ReplayCache } from './replay-cache.js';
import { SignedTokenError, verifyToken, type VerifyTokenOptions } from './signed-token.js';
import { KEY_LINE_GRAMMAR, parseKeyFile, type SignedTokenKey } from './signed-token-keys.js';
import { errnoCode, errorMessage, invalidSource, splitSourceFields, type SourceOptions } from './source.js';

export const SIGNED_TOKEN_GRAMMAR =
  'keys[:max_lifetime_seconds[:once[:redis_host[:port[:db[:password[:namespace]]]]]]] ' +
  `where keys is a keys file or a directory of keys files (${KEY_LINE_GRAMMAR})`;

/** Settings of `SignedToken` that are not part of `--token-source`. */
export interface SignedTokenSettings {
  /** Longest `exp - iat` accepted, in seconds. Default 8 hours. */
  maxLifetimeSec?: number;
  /** How far `iat` may be ahead of this clock, in seconds. Default 30. */
  clockSkewSec?: number;
  /** Optional claims that must be present too (`sub`, `iid`). */
  requireClaims?: ReadonlyArray<'sub' | 'iid'>;
  /**
   * One-time use: each `jti` opens one session (or one cookie exchange). `true` remembers
   * used ids in this process's memory until they expire; give a `ReplayCache` (e.g.
   * `RedisReplayCache`) to share them between nodes. Default false: a token is reusable until `exp`.
   */
  once?: boolean | ReplayCache;
}

export interface SignedTokenOptions extends SignedTokenSettings {
  /** A keys file, or a directory whose files (not recursive, dot files skipped) are keys files. Re-read when they change. */
  keys: string;
  logger?: Logger;
  /** The clock, ms since the epoch (tests). */
  now?: () => number;
}

/**
 * tsockify's own signed token (`v1.<kid>.<claims>.<signature>`, see `signed-token.ts` and
 * docs/tokens.md): HMAC-SHA256 or Ed25519 by key id, so keys rotate by adding a line, and a
 * gateway given only Ed25519 public keys cannot mint.
 *
 * The target is the token's `host` and `port`; `sub`, `iid` and `jti` go to `meta` for audit
 * logs; the session is closed at `exp` (`expiresAt`). A refused token throws a
 * `SignedTokenError` (401) whose message is the short reason and whose `detail` is logged at
 * debug level with the token id, never the token.
 */
export class SignedToken implements TokenPlugin {
  readonly name = 'SignedToken';
  readonly replay: ReplayCache | undefined;
  private readonly store: KeyStore;
  private readonly verifyOptions: Omit<VerifyTokenOptions, 'now'>;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(options: SignedTokenOptions) {
    if (!options.keys) throw new InvalidOptionError('SignedToken: options.keys (a keys file or directory) is required');
    const maxLifetimeSec = options.maxLifetimeSec;
    if (maxLifetimeSec !== undefined && !(Number.isFinite(maxLifetimeSec) && maxLifetimeSec > 0)) {
      throw new InvalidOptionError(`invalid SignedToken maxLifetimeSec ${String(maxLifetimeSec)}: expected a positive number of seconds`);
    }
    const skew = options.clockSkewSec;
    if (skew !== undefined && !(Number.isFinite(skew) && skew >= 0)) {
      throw new InvalidOptionError(`invalid SignedToken clockSkewSec ${String(skew)}: expected a non-negative number of seconds`);
    }
    for (const c of options.requireClaims ?? []) {
      if (c !== 'sub' && c !== 'iid') throw new InvalidOptionError(`invalid SignedToken requireClaims entry "${String(c)}": expected sub or iid`);
    }
    this.log = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.store = new KeyStore(options.keys, this.log);
    this.verifyOptions = {
      ...(maxLifetimeSec !== undefined ? { maxLifetimeSec } : {}),
      ...(skew !== undefined ? { clockSkewSec: skew } : {}),
      ...(options.requireClaims ? { requireClaims: options.requireClaims } : {}),
    };
    this.replay = options.once === true ? new MemoryReplayCache({ now: this.now }) : options.once || undefined;
  }

  /**
   * Build from `--token-source keys[:max_lifetime_seconds[:once[:REDIS]]]`: `once` alone
   * remembers used token ids in memory; `once:host[:port[:db[:password[:namespace]]]]` in
   * Redis (as `TokenRedis` reads it; the namespace defaults to `tsockify:jti`). The keys are
   * read and checked now.
   */
  static async fromSource(source: string | undefined, options: SourceOptions & SignedTokenSettings = {}): Promise<SignedToken> {
    const fail = (detail?: string): InvalidOptionError => invalidSource('--token-source', 'SignedToken', source, SIGNED_TOKEN_GRAMMAR, detail, shown(source));
    if (!source) throw fail();
    const fields = splitSourceFields(source);
    const [keys = '', lifetime = '', mode = '', ...redis] = fields;
    if (keys === '') throw fail('the keys path is empty');
    const settings: SignedTokenSettings = { ...options };
    if (lifetime !== '') {
      if (!/^\d+$/.test(lifetime) || Number(lifetime) === 0) throw fail(`max lifetime "${lifetime}" is not a positive number of seconds`);
      settings.maxLifetimeSec = Number(lifetime);
    }
    if (mode !== '' && mode !== 'once' && mode !== 'reuse') throw fail(`"${mode}" is not "once" or "reuse"`);
    if (mode === 'reuse' && redis.length > 0) throw fail('a Redis address is only for "once"');
    if (mode === 'once') {
      if (redis.length > 0) {
        let r;
        try {
          r = parseRedisSource(redis.join(':'));
        } catch (err) {
          throw fail(`Redis address: ${errorMessage(err).replace(/^.*TokenRedis expects /, 'expected ')}`);
        }
        settings.once = new RedisReplayCache({ ...r, namespace: r.namespace ?? 'tsockify:jti', ...(options.logger ? { logger: options.logger } : {}) });
      } else {
        settings.once = settings.once || true;
      }
    }
    const plugin = new SignedToken({ ...settings, keys, ...(options.logger ? { logger: options.logger } : {}) });
    try {
      await plugin.store.load(true);
    } catch (err) {
      await plugin.close();
      throw fail(errorMessage(err));
    }
    return plugin;
  }

  /** The key ring as it is on disk now. */
  keys(): Promise<Map<string, SignedTokenKey>> {
    return this.store.load(false);
  }

  async lookup(token: string, ctx?: RequestContext): Promise<TcpTarget> {
    const log = ctx?.log ?? this.log;
    const ring = await this.store.load(false, log);
    let verified;
    try {
      verified = verifyToken(token, ring, { ...this.verifyOptions, now: this.now() });
    } catch (err) {
      if (err instanceof SignedTokenError) log.debug({ failure: err.failure, detail: err.detail }, `SignedToken: token refused: ${err.message}`);
      throw err;
    }
    const { claims } = verified;
    const expiresAt = claims.exp * 1000;
    // A token redeemed by the cookie exchange is not consumed again (see RequestContext.tokenSource).
    if (this.replay && ctx?.tokenSource !== 'cookie') {
      const first = await this.replay.claim(claims.jti, expiresAt);
      if (!first) {
        log.info({ jti: claims.jti }, 'SignedToken: one-time token used again');
        throw new SignedTokenError('replayed', 'token already used', `token id "${claims.jti}" was already used (one-time tokens open one session)`);
      }
    }
    const meta: Record<string, string> = { jti: claims.jti, kid: verified.kid };
    if (claims.sub !== undefined) meta['sub'] = claims.sub;
    if (claims.iid !== undefined) meta['iid'] = claims.iid;
    return { host: claims.host, port: claims.port, meta, expiresAt };
  }

  async close(): Promise<void> {
    await this.replay?.close?.();
  }
}

/**
 * Read a keys file or directory now, strictly: any bad line, or no key at all, throws an
 * `InvalidOptionError` naming the file and line (never the key).
 */
export async function loadKeyRing(keys: string): Promise<Map<string, SignedTokenKey>> {
  return new KeyStore(keys, silentLogger).load(true);
}

/** The source with the Redis password hidden, for error messages. */
function shown(source: string | undefined): string | null {
  if (source === undefined) return null;
  const f = splitSourceFields(source);
  if (f.length >= 7 && f[6]) f[6] = '***';
  return f.join(':');
}

/**
 * The keys of a keys file or directory, as they are on disk now: one `stat` per file per
 * lookup, a file re-parsed only when it changed (`FileCache`). At startup any bad line is an
 * error; later, a bad line is logged and skipped, so that a typo while rotating costs only the
 * key on that line.
 */
class KeyStore {
  private readonly files = new Map<string, FileCache<{ keys: Map<string, SignedTokenKey>; errors: string[] }>>();

  constructor(
    readonly source: string,
    private readonly log: Logger,
  ) {}

  async load(strict: boolean, log: Logger = this.log): Promise<Map<string, SignedTokenKey>> {
    let st: BigIntStats;
    try {
      st = await stat(this.source, { bigint: true });
    } catch (err) {
      throw this.unavailable(this.source, err, strict);
    }
    let files: string[];
    if (st.isDirectory()) {
      try {
        files = (await readdir(this.source)).filter((n) => !n.startsWith('.')).sort().map((n) => path.join(this.source, n));
      } catch (err) {
        throw this.unavailable(this.source, err, strict);
      }
    } else {
      files = [this.source];
    }
    const ring = new Map<string, SignedTokenKey>();
    const errors: string[] = [];
    for (const file of files) {
      let fst: BigIntStats;
      try {
        fst = file === this.source ? st : await stat(file, { bigint: true });
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        throw this.unavailable(file, err, strict);
      }
      if (!fst.isFile()) continue;
      let cache = this.files.get(file);
      if (!cache) {
        cache = new FileCache(file, (data) => {
          const parsed = parseKeyFile(data.toString('utf8'), file);
          // Logged once per change of the file, not per lookup.
          for (const e of parsed.errors) log.warn(`SignedToken: ${e}: line skipped`);
          return parsed;
        });
        this.files.set(file, cache);
      }
      let parsed;
      try {
        parsed = await cache.get(fst);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        throw this.unavailable(file, err, strict);
      }
      errors.push(...parsed.errors);
      for (const [kid, key] of parsed.keys) {
        if (ring.has(kid)) errors.push(`${file}: key id "${kid}" is also in another file`);
        ring.set(kid, key);
      }
    }
    if (strict && errors.length > 0) throw new InvalidOptionError(errors.join('; '));
    if (strict && ring.size === 0) throw new InvalidOptionError(`no keys in ${this.source}`);
    return ring;
  }

  private unavailable(file: string, err: unknown, strict: boolean): Error {
    if (strict) return new InvalidOptionError(errnoCode(err) === 'ENOENT' ? `no such file or directory: ${file}` : `${file}: ${errorMessage(err)}`);
    this.log.warn({ file, err: errorMessage(err) }, 'SignedToken: keys unreadable');
    return new PluginUnavailableError(`SignedToken: keys ${file} cannot be read`, { cause: err });
  }
}
