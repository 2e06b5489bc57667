import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { InvalidOptionError } from '@tsockify/core';

/** The algorithms of tsockify's signed token. The key decides the algorithm, never the token. */
export type SignedTokenAlgorithm = 'HS256' | 'Ed25519';

/**
 * One key of a key ring, by key id. An HMAC key both signs and verifies, so whoever holds it
 * can mint tokens; an Ed25519 key without `privateKey` only verifies (the gateway cannot mint).
 */
export type SignedTokenKey =
  | { readonly kid: string; readonly alg: 'HS256'; readonly secret: Buffer }
  | { readonly kid: string; readonly alg: 'Ed25519'; readonly publicKey: KeyObject; readonly privateKey?: KeyObject };

/** Keys by key id. */
export type SignedTokenKeyRing = ReadonlyMap<string, SignedTokenKey>;

/** A key id: 1 to 64 of `A-Z a-z 0-9 _ -` (no dot: it is a token separator). */
export const KID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Fewest characters of an HMAC secret: 32 (a `keygen` secret is 43 base64url characters, 256 bits). */
export const MIN_SECRET_LENGTH = 32;

export const KEY_LINE_GRAMMAR =
  'lines "kid: hs256:SECRET", "kid: ed25519:PUBLIC" or "kid: ed25519-private:SEED" (PUBLIC and SEED: 32 bytes, base64url)';

// DER prefixes that wrap a raw 32-byte Ed25519 key (RFC 8410): SPKI for the public key, PKCS#8 for the seed.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Parse one key value (what follows `kid: ` in a keys file):
 * - `hs256:SECRET`: HMAC-SHA256; the key is the SECRET text's UTF-8 bytes (at least 32 characters);
 * - `ed25519:PUBLIC`: verifies only; PUBLIC is the raw 32-byte public key, base64url;
 * - `ed25519-private:SEED`: signs (and verifies); SEED is the raw 32-byte private key, base64url.
 * Throws an `InvalidOptionError` that never repeats the secret.
 */
export function parseKeyValue(kid: string, value: string): SignedTokenKey {
  if (!KID_RE.test(kid)) throw new InvalidOptionError(`invalid key id "${kid}": expected 1 to 64 of A-Z a-z 0-9 _ -`);
  const colon = value.indexOf(':');
  const type = colon < 0 ? '' : value.slice(0, colon).toLowerCase();
  const data = colon < 0 ? '' : value.slice(colon + 1).trim();
  switch (type) {
    case 'hs256': {
      if (data.length < MIN_SECRET_LENGTH) {
        throw new InvalidOptionError(`key "${kid}": the hs256 secret is ${data.length} characters, at least ${MIN_SECRET_LENGTH} are needed (tsockify token keygen makes one)`);
      }
      return { kid, alg: 'HS256', secret: Buffer.from(data, 'utf8') };
    }
    case 'ed25519':
      return { kid, alg: 'Ed25519', publicKey: ed25519Public(raw32(kid, data, 'public key')) };
    case 'ed25519-private': {
      const privateKey = ed25519Private(raw32(kid, data, 'private key'));
      return { kid, alg: 'Ed25519', privateKey, publicKey: createPublicKey(privateKey) };
    }
    default:
      throw new InvalidOptionError(`key "${kid}": unknown key type "${type || value.slice(0, 16)}": expected hs256:, ed25519: or ed25519-private:`);
  }
}

/**
 * Parse a keys file: one `kid: TYPE:DATA` line per key, `#` comment lines and blank lines
 * skipped. Every bad line is reported (file and line number, never the key); a key id given
 * twice is an error.
 */
export function parseKeyFile(text: string, file = 'keys'): { keys: Map<string, SignedTokenKey>; errors: string[] } {
  const keys = new Map<string, SignedTokenKey>();
  const errors: string[] = [];
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line.length === 0 || line.startsWith('#')) continue;
    const m = /^([^:\s]+):\s+(.+)$/.exec(line);
    if (!m) {
      errors.push(`${file} line ${i + 1}: expected "kid: TYPE:DATA"`);
      continue;
    }
    try {
      const key = parseKeyValue(m[1]!, m[2]!);
      if (keys.has(key.kid)) errors.push(`${file} line ${i + 1}: key id "${key.kid}" is given twice`);
      else keys.set(key.kid, key);
    } catch (err) {
      errors.push(`${file} line ${i + 1}: ${(err as Error).message}`);
    }
  }
  return { keys, errors };
}

/** The `kid: TYPE:DATA` line of a key, as a keys file holds it. `publicOnly` drops the private half. */
export function formatKeyLine(key: SignedTokenKey, publicOnly = false): string {
  if (key.alg === 'HS256') return `${key.kid}: hs256:${key.secret.toString('utf8')}`;
  if (key.privateKey && !publicOnly) {
    const der = key.privateKey.export({ format: 'der', type: 'pkcs8' });
    return `${key.kid}: ed25519-private:${der.subarray(PKCS8_PREFIX.length).toString('base64url')}`;
  }
  const der = key.publicKey.export({ format: 'der', type: 'spki' });
  return `${key.kid}: ed25519:${der.subarray(SPKI_PREFIX.length).toString('base64url')}`;
}

/** A fresh key: an HMAC secret of 256 random bits, or an Ed25519 key pair. */
export function generateKey(kid: string, alg: SignedTokenAlgorithm): SignedTokenKey {
  if (!KID_RE.test(kid)) throw new InvalidOptionError(`invalid key id "${kid}": expected 1 to 64 of A-Z a-z 0-9 _ -`);
  if (alg === 'HS256') return { kid, alg, secret: Buffer.from(randomBytes(32).toString('base64url'), 'utf8') };
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { kid, alg, privateKey, publicKey };
}

/** Build a key ring from keys, refusing two keys with one id. */
export function keyRing(keys: Iterable<SignedTokenKey>): Map<string, SignedTokenKey> {
  const ring = new Map<string, SignedTokenKey>();
  for (const k of keys) {
    if (ring.has(k.kid)) throw new InvalidOptionError(`key id "${k.kid}" is given twice`);
    ring.set(k.kid, k);
  }
  return ring;
}

function raw32(kid: string, text: string, what: string): Buffer {
  const bytes = /^[A-Za-z0-9_-]+={0,2}$/.test(text) ? Buffer.from(text, 'base64url') : undefined;
  if (!bytes || bytes.length !== 32) throw new InvalidOptionError(`key "${kid}": the Ed25519 ${what} must be 32 bytes in base64url (43 characters)`);
  return bytes;
}

export function ed25519Public(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function ed25519Private(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}
