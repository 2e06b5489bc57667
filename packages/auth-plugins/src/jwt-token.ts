import { compactDecrypt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Logger, RequestContext, Target, TokenPlugin } from '@tsockify/core';
import { InvalidOptionError, PluginUnavailableError, TokenInvalidError, silentLogger } from '@tsockify/core';
import { FileCache } from './file-cache.js';
import { DEFAULT_JWE_ENCRYPTIONS, defaultJweKeyAlgorithms, defaultJwsAlgorithms, parseJwtKey, type JwtKeys, type SecretEncoding } from './jwt-key.js';
import { errorMessage, invalidSource } from './source.js';
import { targetFromHostPort } from './target-text.js';
import type { SourceOptions } from './source.js';

export const JWT_GRAMMAR = 'a key file: a PEM public or private key (or certificate), else an HMAC secret';

/** Settings of `JWTTokenApi` that are not part of `--token-source`. */
export interface JwtTokenSettings {
  /** Refuse tokens without an `exp` claim. Default true (websockify accepts tokens that never expire). */
  requireExp?: boolean;
  /** JWS algorithms accepted. Default: those that fit the key (HS* for a secret, RS*+PS* for RSA, ES* for EC, EdDSA). */
  algorithms?: string[];
  /** JWE key management algorithms accepted. Default: those that fit the key; never RSA1_5 or PBES2. */
  keyManagementAlgorithms?: string[];
  /** JWE content encryption algorithms accepted. Default: AES-GCM and AES-CBC-HMAC. */
  contentEncryptionAlgorithms?: string[];
  /** Seconds of clock skew allowed on `exp` and `nbf`. Default 0, as websockify. */
  clockToleranceSec?: number;
  /** How a non-PEM key file's text becomes the secret: `base64url` (websockify, default) or `utf8`. */
  secretEncoding?: SecretEncoding;
}

export interface JwtTokenOptions extends JwtTokenSettings {
  /** The key file; re-read when it changes, so a rotated key needs no restart. */
  keyFile: string;
  logger?: Logger;
}

/**
 * websockify's `JWTTokenApi`: the token itself is a JWT whose claims `host` and `port` name
 * the target, signed (JWS) or encrypted (JWE) with the key in the `--token-source` file.
 *
 * A JWE is websockify's nested form: decrypted with the key, its plaintext must be a JWS,
 * which is then verified with the same key (a private key file verifies with its public half).
 * `nbf` and `exp` are checked. Beats websockify: `exp` is required unless `requireExp: false`,
 * algorithms are allow-listed (never `none`, RSA1_5 or PBES2) and must fit the key, and the
 * verification is jose's, not hand-written. A rejected token throws a `TokenInvalidError`
 * saying why (expired, not yet valid, bad signature, ...), which is logged, never the token.
 *
 * The claims `sub` and `jti`, when present, are passed on as `meta.subject` and `meta.tokenId`
 * for audit logs.
 */
export class JWTTokenApi implements TokenPlugin {
  readonly name = 'JWTTokenApi';
  private readonly key: FileCache<JwtKeys>;
  private readonly requireExp: boolean;
  private readonly settings: JwtTokenSettings;
  private readonly log: Logger;

  constructor(options: JwtTokenOptions) {
    if (!options.keyFile) throw new InvalidOptionError('JWTTokenApi: options.keyFile is required');
    const tolerance = options.clockToleranceSec;
    if (tolerance !== undefined && !(Number.isFinite(tolerance) && tolerance >= 0)) {
      throw new InvalidOptionError(`invalid JWT clockToleranceSec ${String(tolerance)}: expected a non-negative number of seconds`);
    }
    for (const list of ['algorithms', 'keyManagementAlgorithms', 'contentEncryptionAlgorithms'] as const) {
      const v = options[list];
      if (v !== undefined && (!Array.isArray(v) || v.length === 0 || v.some((a) => typeof a !== 'string' || a.toLowerCase() === 'none'))) {
        throw new InvalidOptionError(`invalid JWT ${list} ${JSON.stringify(v)}: expected a non-empty list of algorithm names (never "none")`);
      }
    }
    this.settings = { ...options };
    this.requireExp = options.requireExp ?? true;
    this.log = options.logger ?? silentLogger;
    const encoding = options.secretEncoding ?? 'base64url';
    this.key = new FileCache(options.keyFile, (data) => parseJwtKey(data, encoding));
  }

  /** Build from a `--token-source` key file; the key is read and checked now. */
  static async fromSource(source: string | undefined, options: SourceOptions & JwtTokenSettings = {}): Promise<JWTTokenApi> {
    if (!source) throw invalidSource('--token-source', 'JWTTokenApi', source, JWT_GRAMMAR);
    const plugin = new JWTTokenApi({ ...options, keyFile: source });
    try {
      await plugin.key.get();
    } catch (err) {
      throw invalidSource('--token-source', 'JWTTokenApi', source, JWT_GRAMMAR, errorMessage(err));
    }
    return plugin;
  }

  async lookup(token: string, ctx?: RequestContext): Promise<Target | null> {
    const log = ctx?.log ?? this.log;
    const keys = await this.keys();
    let payload: JWTPayload;
    try {
      payload = await this.verify(token, keys);
    } catch (err) {
      const reason = rejection(err);
      log.debug({ reason, err: errorMessage(err) }, `JWTTokenApi: token rejected: ${reason}`);
      throw new TokenInvalidError(reason);
    }
    let target: Target;
    try {
      target = targetFromHostPort(payload['host'], payload['port'], 'token claims');
    } catch {
      throw new TokenInvalidError('token has no valid host and port claims');
    }
    const meta: Record<string, string> = {};
    if (typeof payload.sub === 'string') meta['subject'] = payload.sub;
    if (typeof payload.jti === 'string') meta['tokenId'] = payload.jti;
    if (Object.keys(meta).length > 0) target.meta = meta;
    return target;
  }

  private async keys(): Promise<JwtKeys> {
    try {
      return await this.key.get();
    } catch (err) {
      // A key file that vanished or broke after startup: fail closed, loudly.
      this.log.error({ keyFile: this.key.path, err: errorMessage(err) }, 'JWTTokenApi: key file unusable');
      throw new PluginUnavailableError(`JWTTokenApi: key file ${this.key.path} unusable: ${errorMessage(err)}`, { cause: err });
    }
  }

  private async verify(token: string, keys: JwtKeys): Promise<JWTPayload> {
    const segments = token.split('.').length;
    let jws = token;
    if (segments === 5) {
      if (!keys.decrypt) throw new TokenInvalidError('token is encrypted but the key file holds only a public key');
      const { plaintext } = await compactDecrypt(token, keys.decrypt, {
        keyManagementAlgorithms: this.settings.keyManagementAlgorithms ?? defaultJweKeyAlgorithms(keys.kind),
        contentEncryptionAlgorithms: this.settings.contentEncryptionAlgorithms ?? DEFAULT_JWE_ENCRYPTIONS,
      });
      jws = new TextDecoder().decode(plaintext).trim();
      if (jws.split('.').length !== 3) throw new TokenInvalidError('encrypted token does not hold a signed JWT');
    } else if (segments !== 3) {
      throw new TokenInvalidError('malformed token');
    }
    const { payload } = await jwtVerify(jws, keys.verify, {
      algorithms: this.settings.algorithms ?? defaultJwsAlgorithms(keys.kind),
      requiredClaims: this.requireExp ? ['exp'] : [],
      clockTolerance: this.settings.clockToleranceSec ?? 0,
    });
    return payload;
  }
}

/** A short reason for a refused token, safe to send and log (it never holds the token). */
function rejection(err: unknown): string {
  if (err instanceof TokenInvalidError) return err.message;
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'token not yet valid';
    if (err.claim === 'exp') return err.reason === 'missing' ? 'token has no exp claim' : 'token exp claim invalid';
    return `token ${err.claim} claim invalid`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (err instanceof joseErrors.JWEDecryptionFailed) return 'token decryption failed';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (err instanceof joseErrors.JOSENotSupported) return 'token algorithm not supported';
  if (err instanceof joseErrors.JOSEError) return 'malformed token';
  // jose throws TypeError when an allowed algorithm does not fit the key.
  return 'token does not fit the key';
}
