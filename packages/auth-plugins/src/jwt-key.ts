import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { InvalidOptionError } from '@tsockify/core';

/** How the text of a non-PEM key file becomes HMAC / AES key bytes. */
export type SecretEncoding = 'base64url' | 'utf8';

/** The key material of a `JWTTokenApi` key file, ready for jose. */
export interface JwtKeys {
  /** `oct` for a shared secret, else the asymmetric key type (`rsa`, `ec`, `ed25519`, `x25519`, ...). */
  kind: string;
  /** Verifies JWS signatures (the public half of a private key). */
  verify: KeyObject | Uint8Array;
  /** Decrypts JWEs: a private key or the secret. Absent for a public key or certificate. */
  decrypt?: KeyObject | Uint8Array;
}

/**
 * Read a key file the way websockify's JWTTokenApi does (jwcrypto `import_from_pem`, else
 * `import_key(kty='oct', k=text)`):
 * - a PEM private key (PKCS#8, PKCS#1, SEC1): verifies with its public half, decrypts with itself;
 * - a PEM public key or X.509 certificate: verifies only;
 * - anything else is a shared secret. jwcrypto takes the text as the JWK `k` member, i.e.
 *   base64url: the HMAC key is the base64url-DECODED text. That is the default here
 *   (`secretEncoding: 'base64url'`), so tokens minted for websockify keep working; trailing
 *   white space is ignored. `secretEncoding: 'utf8'` uses the text's bytes as they are.
 */
export function parseJwtKey(data: Buffer, secretEncoding: SecretEncoding = 'base64url'): JwtKeys {
  const text = data.toString('utf8');
  if (text.includes('-----BEGIN')) return parsePem(text);
  const secretText = text.replace(/\s+$/, '');
  if (secretText.length === 0) throw new InvalidOptionError('the key file is empty');
  if (secretEncoding === 'utf8') {
    const key = new Uint8Array(Buffer.from(secretText, 'utf8'));
    return { kind: 'oct', verify: key, decrypt: key };
  }
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(secretText) || secretText.replace(/=+$/, '').length % 4 === 1) {
    throw new InvalidOptionError(
      'the key file is neither PEM nor a base64url secret (websockify reads a secret as a JWK "k" value); ' +
        'use secretEncoding "utf8" to take the text as it is',
    );
  }
  const key = new Uint8Array(Buffer.from(secretText, 'base64url'));
  return { kind: 'oct', verify: key, decrypt: key };
}

function parsePem(pem: string): JwtKeys {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    throw new InvalidOptionError('the key file holds an encrypted private key; give an unencrypted key or the public key');
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    const priv = tryKey(() => createPrivateKey(pem), 'private key');
    return { kind: priv.asymmetricKeyType ?? 'unknown', verify: createPublicKey(priv), decrypt: priv };
  }
  if (/-----BEGIN CERTIFICATE-----/.test(pem)) {
    const cert = tryKey(() => new X509Certificate(pem), 'certificate');
    return { kind: cert.publicKey.asymmetricKeyType ?? 'unknown', verify: cert.publicKey };
  }
  const pub = tryKey(() => createPublicKey(pem), 'public key');
  return { kind: pub.asymmetricKeyType ?? 'unknown', verify: pub };
}

function tryKey<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    throw new InvalidOptionError(`the key file's PEM ${what} cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** JWS algorithms allowed by default for each key kind. `none` is never allowed. */
export function defaultJwsAlgorithms(kind: string): string[] {
  switch (kind) {
    case 'oct':
      return ['HS256', 'HS384', 'HS512'];
    case 'rsa':
    case 'rsa-pss':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'ec':
      return ['ES256', 'ES384', 'ES512'];
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      return [];
  }
}

/** JWE key management algorithms allowed by default (no RSA1_5, no PBES2). */
export function defaultJweKeyAlgorithms(kind: string): string[] {
  switch (kind) {
    case 'oct':
      return ['dir', 'A128KW', 'A192KW', 'A256KW', 'A128GCMKW', 'A192GCMKW', 'A256GCMKW'];
    case 'rsa':
      return ['RSA-OAEP', 'RSA-OAEP-256', 'RSA-OAEP-384', 'RSA-OAEP-512'];
    case 'ec':
    case 'x25519':
      return ['ECDH-ES', 'ECDH-ES+A128KW', 'ECDH-ES+A192KW', 'ECDH-ES+A256KW'];
    default:
      return [];
  }
}

/** JWE content encryption algorithms allowed by default. */
export const DEFAULT_JWE_ENCRYPTIONS = ['A128GCM', 'A192GCM', 'A256GCM', 'A128CBC-HS256', 'A192CBC-HS384', 'A256CBC-HS512'];
