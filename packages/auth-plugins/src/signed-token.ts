/**
 * tsockify's own signed token:
 *
 *   v1.<kid>.<base64url(JSON claims)>.<base64url(signature)>
 *
 * The signature covers the ASCII text `v1.<kid>.<claims>` (everything before the last dot):
 * HMAC-SHA256 (32 bytes) or Ed25519 (64 bytes), chosen by the key `kid` names in the
 * verifier's key ring, never by the token, so there is no `alg` header to confuse (the JWT
 * `none` / HS-with-a-public-key class of bugs cannot happen). base64url has no `=` padding.
 *
 * Claims (compact JSON object): `host`, `port`, `jti` (token id), `iat`, `exp` (seconds since
 * the Unix epoch) are required; `sub` (user) and `iid` (instance id) are optional unless the
 * verifier requires them. Unknown claims are ignored.
 */
import { createHmac, createPrivateKey, createPublicKey, randomBytes, sign as cryptoSign, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { InvalidOptionError, TokenInvalidError } from '@tsockify/core';
import { KID_RE, MIN_SECRET_LENGTH, keyRing, parseKeyValue, type SignedTokenAlgorithm, type SignedTokenKey, type SignedTokenKeyRing } from './signed-token-keys.js';

export const SIGNED_TOKEN_VERSION = 'v1';

/** Longest token accepted, in characters (a realistic one is about 250). */
export const MAX_TOKEN_LENGTH = 4096;

/** Default longest lifetime (`exp - iat`) a verifier accepts: 8 hours, a working day's session. */
export const DEFAULT_MAX_LIFETIME_SEC = 8 * 3600;

/** Default tolerance for an `iat` ahead of the verifier's clock. */
export const DEFAULT_CLOCK_SKEW_SEC = 30;

/** The claims of a valid token. */
export interface SignedTokenClaims {
  /** Target host name or address (IPv6 without brackets). */
  host: string;
  /** Target TCP port. */
  port: number;
  /** Subject: the user the token was minted for. */
  sub?: string;
  /** Instance id: the machine the desktop belongs to. */
  iid?: string;
  /** Token id: for one-time use, revocation and logs (log it, never the token). */
  jti: string;
  /** Issued at, seconds since the Unix epoch. */
  iat: number;
  /** Expires at, seconds since the Unix epoch. The session is closed then. */
  exp: number;
}

/** What `signToken` needs: the target, who and what it is for, and an expiry (`exp` or `ttlSec`). */
export interface SignTokenInput {
  host: string;
  port: number;
  sub?: string;
  iid?: string;
  /** Default: 16 random bytes, base64url. */
  jti?: string;
  /** Default: now. */
  iat?: number;
  /** Absolute expiry in seconds since the epoch; or give `ttlSec`. */
  exp?: number;
  /** Lifetime from `iat`, in seconds. */
  ttlSec?: number;
}

/** A key to sign with: a parsed key, a keys-file line (`kid: hs256:SECRET`), or the parts. */
export type SigningKeyInput =
  | SignedTokenKey
  | string
  | { kid: string; secret: string | Buffer }
  | { kid: string; privateKey: KeyObject | string };

export interface VerifyTokenOptions {
  /** The clock, in ms since the Unix epoch. Default `Date.now()`. */
  now?: number;
  /** Longest `exp - iat` accepted, in seconds. Default 8 hours. */
  maxLifetimeSec?: number;
  /** How far `iat` may be ahead of this clock, in seconds. Default 30. `exp` is never stretched. */
  clockSkewSec?: number;
  /** Optional claims that must be present too. */
  requireClaims?: ReadonlyArray<'sub' | 'iid'>;
}

/** Why a token failed, as a stable code; `SignedTokenError.detail` says it for people. */
export type SignedTokenFailure =
  | 'malformed'
  | 'unsupported-version'
  | 'unknown-kid'
  | 'bad-signature'
  | 'missing-claim'
  | 'invalid-claim'
  | 'expired'
  | 'issued-in-future'
  | 'lifetime-too-long'
  | 'replayed';

/**
 * A token that does not verify. `message` is the short reason sent to the client (401); `failure`
 * is a stable code; `detail` explains (how long ago it expired, which claim is missing). None
 * of them holds the token or a key.
 */
export class SignedTokenError extends TokenInvalidError {
  readonly failure: SignedTokenFailure;
  readonly detail: string;
  /** The claim at fault, for `missing-claim` and `invalid-claim`. */
  readonly claim: string | undefined;

  constructor(failure: SignedTokenFailure, message: string, detail: string = message, claim?: string) {
    super(message);
    this.failure = failure;
    this.detail = detail;
    this.claim = claim;
  }
}

/** A verified token. */
export interface VerifiedSignedToken {
  kid: string;
  alg: SignedTokenAlgorithm;
  claims: SignedTokenClaims;
}

/**
 * Mint a token in one call. `key` is a keys-file line (`kid: hs256:SECRET` or
 * `kid: ed25519-private:SEED`), `{ kid, secret }`, `{ kid, privateKey }` or a parsed key.
 *
 * ```ts
 * const token = signToken({ host: '10.0.0.5', port: 5901, sub: 'alice', iid: 'i-42', ttlSec: 120 }, process.env.DESKTOP_KEY!);
 * ```
 */
export function signToken(input: SignTokenInput, key: SigningKeyInput, opts: { now?: number } = {}): string {
  const k = toSigningKey(key);
  const nowSec = Math.floor((opts.now ?? Date.now()) / 1000);
  const iat = input.iat ?? nowSec;
  let exp = input.exp;
  if (exp === undefined && input.ttlSec !== undefined) exp = iat + input.ttlSec;
  if (exp === undefined) throw new InvalidOptionError('signToken: give exp or ttlSec (a token must expire)');
  const claims: SignedTokenClaims = {
    host: input.host,
    port: input.port,
    ...(input.sub !== undefined ? { sub: input.sub } : {}),
    ...(input.iid !== undefined ? { iid: input.iid } : {}),
    jti: input.jti ?? randomBytes(16).toString('base64url'),
    iat,
    exp,
  };
  // The verifier's checks, applied before signing: a portal bug fails here, not at the gateway.
  const problem = claimProblem(claims as unknown as Record<string, unknown>);
  if (problem) throw new InvalidOptionError(`signToken: ${problem.detail}`);
  if (!(exp > iat)) throw new InvalidOptionError(`signToken: exp (${exp}) must be after iat (${iat})`);
  const signingInput = `${SIGNED_TOKEN_VERSION}.${k.kid}.${Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url')}`;
  return `${signingInput}.${signBytes(k, Buffer.from(signingInput, 'ascii')).toString('base64url')}`;
}

/**
 * Check a token against a key ring and return its claims, or throw a `SignedTokenError` saying
 * why not. Synchronous; does not remember token ids (one-time use is the plugin's job).
 * The MAC is compared in constant time.
 */
export function verifyToken(token: string, keys: SignedTokenKeyRing | Iterable<SignedTokenKey>, opts: VerifyTokenOptions = {}): VerifiedSignedToken {
  const ring: SignedTokenKeyRing = keys instanceof Map ? keys : keyRing(keys as Iterable<SignedTokenKey>);
  const { kid, signingInput, payload, signature } = splitToken(token);
  const key = ring.get(kid);
  if (!key) {
    throw new SignedTokenError('unknown-kid', 'token key unknown',
      `key id "${kid}" is not in the key ring (known: ${[...ring.keys()].join(', ') || 'none'})`);
  }
  if (!checkSignature(key, Buffer.from(signingInput, 'ascii'), signature)) {
    throw new SignedTokenError('bad-signature', 'token signature invalid', `the ${key.alg} signature does not match key "${kid}": the token was altered or signed with another key`);
  }
  let claims: unknown;
  try {
    claims = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new SignedTokenError('malformed', 'malformed token', 'the claims are not JSON');
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new SignedTokenError('malformed', 'malformed token', 'the claims are not a JSON object');
  }
  const c = claims as Record<string, unknown>;
  const problem = claimProblem(c, opts.requireClaims ?? []);
  if (problem) throw problem;
  const valid = c as unknown as SignedTokenClaims;
  checkTimes(valid, opts);
  const out: SignedTokenClaims = {
    host: valid.host,
    port: valid.port,
    ...(valid.sub !== undefined ? { sub: valid.sub } : {}),
    ...(valid.iid !== undefined ? { iid: valid.iid } : {}),
    jti: valid.jti,
    iat: valid.iat,
    exp: valid.exp,
  };
  return { kid, alg: key.alg, claims: out };
}

/**
 * Read a token's parts without checking anything (for `tsockify token verify` to show what a
 * refused token says). Never trust the result.
 */
export function decodeTokenUnverified(token: string): { kid: string; claims: unknown } {
  const { kid, payload } = splitToken(token);
  try {
    return { kid, claims: JSON.parse(payload.toString('utf8')) as unknown };
  } catch {
    throw new SignedTokenError('malformed', 'malformed token', 'the claims are not JSON');
  }
}

function splitToken(token: string): { kid: string; signingInput: string; payload: Buffer; signature: Buffer } {
  if (token.length > MAX_TOKEN_LENGTH) throw new SignedTokenError('malformed', 'malformed token', `the token is ${token.length} characters, at most ${MAX_TOKEN_LENGTH}`);
  const parts = token.split('.');
  if (parts.length !== 4) {
    const hint = parts.length === 3 ? ' (3 parts: a JWT? use JWTTokenApi for those)' : '';
    throw new SignedTokenError('malformed', 'malformed token', `expected 4 dot-separated parts v1.KID.CLAIMS.SIGNATURE, got ${parts.length}${hint}`);
  }
  const [version, kid, claims, sig] = parts as [string, string, string, string];
  if (version !== SIGNED_TOKEN_VERSION) {
    throw new SignedTokenError('unsupported-version', 'token version unsupported', `the token starts with "${version.slice(0, 8)}", expected "${SIGNED_TOKEN_VERSION}"`);
  }
  if (!KID_RE.test(kid)) throw new SignedTokenError('malformed', 'malformed token', 'the key id is not 1 to 64 of A-Z a-z 0-9 _ -');
  const payload = b64(claims);
  const signature = b64(sig);
  if (!payload || payload.length === 0) throw new SignedTokenError('malformed', 'malformed token', 'the claims part is not base64url');
  if (!signature) throw new SignedTokenError('malformed', 'malformed token', 'the signature part is not base64url');
  return { kid, signingInput: `${version}.${kid}.${claims}`, payload, signature };
}

/** Strict unpadded base64url, as the format writes it. */
function b64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  return Buffer.from(text, 'base64url');
}

function signBytes(key: SignedTokenKey, data: Buffer): Buffer {
  if (key.alg === 'HS256') return createHmac('sha256', key.secret).update(data).digest();
  if (!key.privateKey) throw new InvalidOptionError(`key "${key.kid}" is an Ed25519 public key: it verifies but cannot sign (give the ed25519-private key)`);
  return cryptoSign(null, data, key.privateKey);
}

function checkSignature(key: SignedTokenKey, data: Buffer, signature: Buffer): boolean {
  if (key.alg === 'HS256') {
    const mac = createHmac('sha256', key.secret).update(data).digest();
    // Equal lengths first: timingSafeEqual throws otherwise, and the length is no secret.
    return signature.length === mac.length && timingSafeEqual(signature, mac);
  }
  if (signature.length !== 64) return false;
  return cryptoVerify(null, data, key.publicKey, signature);
}

function missing(claim: string): SignedTokenError {
  return new SignedTokenError('missing-claim', `token has no ${claim} claim`, `the required claim "${claim}" is missing`, claim);
}

function invalid(claim: string, why: string): SignedTokenError {
  return new SignedTokenError('invalid-claim', `token ${claim} claim invalid`, `the claim "${claim}" ${why}`, claim);
}

/** The first thing wrong with the claims' presence and types, or undefined. */
function claimProblem(c: Record<string, unknown>, requireClaims: ReadonlyArray<'sub' | 'iid'> = []): SignedTokenError | undefined {
  for (const name of ['host', 'port', 'jti', 'iat', 'exp', ...requireClaims]) {
    if (c[name] === undefined || c[name] === null) return missing(name);
  }
  const host = c['host'];
  // A name, an IPv4 address or an IPv6 address (no brackets, an optional %zone).
  if (typeof host !== 'string' || host.length > 253 || !/^[A-Za-z0-9._:%-]+$/.test(host) || host.startsWith('.') || host.startsWith('-')) {
    return invalid('host', 'must be a host name or an address (IPv6 without brackets)');
  }
  const port = c['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return invalid('port', 'must be a whole number from 1 to 65535');
  for (const name of ['jti', 'sub', 'iid']) {
    const v = c[name];
    if (v !== undefined && (typeof v !== 'string' || v.length === 0 || v.length > 256)) return invalid(name, 'must be a string of 1 to 256 characters');
  }
  for (const name of ['iat', 'exp']) {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return invalid(name, 'must be whole seconds since the Unix epoch');
  }
  return undefined;
}

function checkTimes(c: SignedTokenClaims, opts: VerifyTokenOptions): void {
  const nowMs = opts.now ?? Date.now();
  const now = nowMs / 1000;
  const maxLifetime = opts.maxLifetimeSec ?? DEFAULT_MAX_LIFETIME_SEC;
  const skew = opts.clockSkewSec ?? DEFAULT_CLOCK_SKEW_SEC;
  if (c.exp <= c.iat) throw invalid('exp', `(${c.exp}) is not after iat (${c.iat})`);
  if (now >= c.exp) {
    throw new SignedTokenError('expired', 'token expired', `expired ${duration(now - c.exp)} ago (exp ${iso(c.exp)}, now ${iso(now)})`);
  }
  if (c.iat > now + skew) {
    throw new SignedTokenError('issued-in-future', 'token issued in the future',
      `iat ${iso(c.iat)} is ${duration(c.iat - now)} ahead of this clock (allowed: ${skew} s); check the minting host's clock`);
  }
  if (c.exp - c.iat > maxLifetime) {
    throw new SignedTokenError('lifetime-too-long', 'token lifetime too long',
      `lifetime ${duration(c.exp - c.iat)} (exp - iat) exceeds the maximum ${duration(maxLifetime)}`);
  }
  // iat may be set back to dodge the lifetime check: bound what is left as well.
  if (c.exp - now > maxLifetime + skew) {
    throw new SignedTokenError('lifetime-too-long', 'token lifetime too long',
      `expires ${duration(c.exp - now)} from now, beyond the maximum lifetime ${duration(maxLifetime)}`);
  }
}

/** `2h 3m 4s`, `5s`, `0.4s`. */
export function duration(sec: number): string {
  if (sec < 1) return `${Math.max(0, Math.round(sec * 10) / 10)}s`;
  let s = Math.floor(sec);
  const parts: string[] = [];
  for (const [unit, n] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${unit}`);
      s %= n;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.join(' ');
}

function iso(sec: number): string {
  return new Date(Math.floor(sec) * 1000).toISOString().replace('.000Z', 'Z');
}

function toSigningKey(key: SigningKeyInput): SignedTokenKey {
  if (typeof key === 'string') {
    const m = /^\s*([^:\s]+):\s+(.+?)\s*$/.exec(key);
    if (!m) throw new InvalidOptionError('signToken: a key line is "kid: hs256:SECRET" or "kid: ed25519-private:SEED"');
    return parseKeyValue(m[1]!, m[2]!);
  }
  if ('alg' in key) return key;
  if (!KID_RE.test(key.kid)) throw new InvalidOptionError(`invalid key id "${key.kid}": expected 1 to 64 of A-Z a-z 0-9 _ -`);
  if ('secret' in key) {
    if (typeof key.secret === 'string') return parseKeyValue(key.kid, `hs256:${key.secret}`);
    if (key.secret.length < MIN_SECRET_LENGTH) throw new InvalidOptionError(`key "${key.kid}": the secret is ${key.secret.length} bytes, at least ${MIN_SECRET_LENGTH} are needed`);
    return { kid: key.kid, alg: 'HS256', secret: Buffer.from(key.secret) };
  }
  const privateKey = typeof key.privateKey === 'string' ? toPrivateKey(key.privateKey) : key.privateKey;
  if (privateKey.asymmetricKeyType !== 'ed25519' || privateKey.type !== 'private') {
    throw new InvalidOptionError(`signToken: key "${key.kid}" must be an Ed25519 private key`);
  }
  return { kid: key.kid, alg: 'Ed25519', privateKey, publicKey: createPublicKey(privateKey) };
}

function toPrivateKey(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new InvalidOptionError(`signToken: cannot read the private key: ${(err as Error).message}`);
  }
}
