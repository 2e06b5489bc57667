import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import type { Logger, RequestContext, Target, TokenPlugin } from '@tsockify/core';
import { InvalidOptionError, TokenInvalidError, parseHostPort, silentLogger } from '@tsockify/core';
import { errorMessage, invalidSource, splitSourceFields, type SourceOptions } from './source.js';

export const ATMOSPHERE_GRAMMAR = 'secret_file:salt:port[:max_age_seconds] (a field may be "quoted" to hold a colon)';

/** itsdangerous 0.24 counted from 2011-01-01T00:00:00Z; 1.0 and later from the Unix epoch. */
const EPOCH_2011 = 1293840000;

/** Which clock the token's timestamp counts from. `auto` tries both: no token is fresh under both (they are 41 years apart). */
export type ItsdangerousEpoch = 'auto' | 'itsdangerous-0.24' | 'unix';

/** Settings of `AtmosphereToken` that are not part of `--token-source`. */
export interface AtmosphereTokenSettings {
  /** Oldest token accepted, in seconds (the portal's `max_age`). Default 300. */
  maxAgeSec?: number;
  /** Default `auto`. */
  epoch?: ItsdangerousEpoch;
  /** A token stamped up to this many seconds in the future is accepted (clock skew). Default 30. */
  clockSkewSec?: number;
}

export interface AtmosphereTokenOptions extends AtmosphereTokenSettings {
  /** The portal's signing secret (`SECRET_KEY`-like). */
  secret: string | Buffer;
  /** The serializer's salt. */
  salt: string;
  /** The target port: the token carries only the instance address. */
  port: number;
  logger?: Logger;
  /** The clock, in ms since the Unix epoch (tests). Default `Date.now`. */
  now?: () => number;
}

/**
 * Verifies the legacy Web Desktop tokens a CyVerse Atmosphere portal mints with itsdangerous
 * `URLSafeTimedSerializer(secret, salt)`, so that a portal can switch gateways without
 * changing its minting code:
 *
 * `base64url(json) "." base64url(timestamp) "." base64url(HMAC-SHA1(key, payload "." timestamp))`
 * with key = SHA1(salt + "signer" + secret) (itsdangerous' "django-concat" derivation), json
 * compact (`["10.0.0.5"]`), a payload starting with `.` zlib-compressed. The timestamp is
 * big-endian seconds since 2011-01-01 (itsdangerous 0.24) or since 1970 (1.0+).
 *
 * The token names only the instance's address; the target is that address and the configured
 * `port`. The MAC is compared in constant time; a token older than `maxAgeSec` or stamped in
 * the future (beyond `clockSkewSec`) is refused. This format binds no user, port or token id
 * and uses SHA-1 (web-desktop.md, weaknesses 1 and 6): accept it only while migrating.
 */
export class AtmosphereToken implements TokenPlugin {
  readonly name = 'AtmosphereToken';
  private readonly key: Buffer;
  private readonly port: number;
  private readonly maxAgeSec: number;
  private readonly clockSkewSec: number;
  private readonly epochs: number[];
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(options: AtmosphereTokenOptions) {
    const secret = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : options.secret;
    if (!secret || secret.length === 0) throw new InvalidOptionError('AtmosphereToken: options.secret is required');
    if (typeof options.salt !== 'string') throw new InvalidOptionError('AtmosphereToken: options.salt is required');
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw new InvalidOptionError(`invalid AtmosphereToken port ${String(options.port)}: expected 1 to 65535`);
    }
    this.maxAgeSec = nonNegative('maxAgeSec', options.maxAgeSec, 300);
    this.clockSkewSec = nonNegative('clockSkewSec', options.clockSkewSec, 30);
    const epoch = options.epoch ?? 'auto';
    if (!['auto', 'itsdangerous-0.24', 'unix'].includes(epoch)) {
      throw new InvalidOptionError(`invalid AtmosphereToken epoch "${epoch}": expected auto, itsdangerous-0.24 or unix`);
    }
    this.epochs = epoch === 'auto' ? [EPOCH_2011, 0] : epoch === 'unix' ? [0] : [EPOCH_2011];
    this.key = createHash('sha1').update(Buffer.from(options.salt, 'utf8')).update('signer').update(secret).digest();
    this.port = options.port;
    this.now = options.now ?? Date.now;
    this.log = options.logger ?? silentLogger;
  }

  /** Build from `--token-source secret_file:salt:port[:max_age_seconds]`; the secret file is read now. */
  static async fromSource(source: string | undefined, options: SourceOptions & AtmosphereTokenSettings = {}): Promise<AtmosphereToken> {
    const fail = (detail?: string): InvalidOptionError => invalidSource('--token-source', 'AtmosphereToken', source, ATMOSPHERE_GRAMMAR, detail);
    if (!source) throw fail();
    const fields = splitSourceFields(source);
    if (fields.length < 3 || fields.length > 4) throw fail(`${fields.length} field${fields.length === 1 ? '' : 's'}, expected 3 or 4`);
    const [file, salt, portText, maxAgeText] = fields as [string, string, string, string | undefined];
    if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw fail(`port "${portText}" is not a number from 1 to 65535`);
    if (maxAgeText !== undefined && !/^\d+$/.test(maxAgeText)) throw fail(`max age "${maxAgeText}" is not a number of seconds`);
    let secret: string;
    try {
      secret = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw fail(`secret file: ${errorMessage(err)}`);
    }
    if (secret.length === 0) throw fail('the secret file is empty');
    return new AtmosphereToken({
      ...options,
      secret,
      salt,
      port: Number(portText),
      ...(maxAgeText !== undefined ? { maxAgeSec: Number(maxAgeText) } : {}),
    });
  }

  lookup(token: string, ctx?: RequestContext): Target {
    try {
      return { host: this.verify(token), port: this.port };
    } catch (err) {
      const reason = err instanceof TokenInvalidError ? err.message : 'malformed token';
      (ctx?.log ?? this.log).debug({ reason }, `AtmosphereToken: token rejected: ${reason}`);
      throw err instanceof TokenInvalidError ? err : new TokenInvalidError(reason);
    }
  }

  /** The instance address in a valid token; throws a `TokenInvalidError` saying why not. */
  verify(token: string): string {
    const sigDot = token.lastIndexOf('.');
    const tsDot = sigDot > 0 ? token.lastIndexOf('.', sigDot - 1) : -1;
    if (tsDot <= 0) throw new TokenInvalidError('malformed token');
    const signed = token.slice(0, sigDot);
    const sig = decodeB64(token.slice(sigDot + 1));
    const mac = createHmac('sha1', this.key).update(signed, 'utf8').digest();
    if (!sig || sig.length !== mac.length || !timingSafeEqual(sig, mac)) throw new TokenInvalidError('token signature invalid');

    const tsBytes = decodeB64(token.slice(tsDot + 1, sigDot));
    if (!tsBytes || tsBytes.length === 0 || tsBytes.length > 6) throw new TokenInvalidError('malformed token');
    const stamp = tsBytes.readUIntBE(0, tsBytes.length);
    const nowSec = this.now() / 1000;
    const ages = this.epochs.map((epoch) => nowSec - (stamp + epoch));
    if (!ages.some((age) => age <= this.maxAgeSec && age >= -this.clockSkewSec)) {
      // Explain by the reading of the stamp closest to now (the other is decades off).
      const closest = ages.reduce((a, b) => (Math.abs(b) < Math.abs(a) ? b : a));
      throw new TokenInvalidError(closest < -this.clockSkewSec ? 'token from the future' : 'token expired');
    }
    return this.host(token.slice(0, tsDot));
  }

  private host(payload: string): string {
    let json: Buffer;
    try {
      const compressed = payload.startsWith('.');
      const raw = decodeB64(compressed ? payload.slice(1) : payload);
      if (!raw) throw new Error('not base64url');
      // A bound on the inflated size: the MAC is already checked, but a portal bug should not eat memory.
      json = compressed ? inflateSync(raw, { maxOutputLength: 64 * 1024 }) : raw;
    } catch {
      throw new TokenInvalidError('malformed token');
    }
    let value: unknown;
    try {
      value = JSON.parse(json.toString('utf8'));
    } catch {
      throw new TokenInvalidError('malformed token');
    }
    const host = Array.isArray(value) ? value[0] : value;
    if (typeof host !== 'string' || host.length === 0) throw new TokenInvalidError('token has no instance address');
    try {
      // Reuse the host:port parser to refuse a "host" that smuggles a port or brackets wrongly.
      return parseHostPort(`${host.includes(':') ? `[${host}]` : host}:1`).host;
    } catch {
      throw new TokenInvalidError('token has no instance address');
    }
  }
}

/** Strict base64url without padding, as itsdangerous writes it; undefined when it is not. */
function decodeB64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  return Buffer.from(text, 'base64url');
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidOptionError(`invalid AtmosphereToken ${name} ${String(value)}: expected a non-negative number of seconds`);
  }
  return value;
}
