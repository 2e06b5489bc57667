import { createHash, timingSafeEqual } from 'node:crypto';
import type { AuthPlugin, RequestContext } from '@tsockify/core';
import { AuthenticationError, InvalidOptionError } from '@tsockify/core';
import { invalidSource } from './source.js';

export const BASIC_AUTH_GRAMMAR = 'user:password';

export interface BasicHTTPAuthOptions {
  /** The user name; it cannot hold a colon (RFC 7617 2). */
  user: string;
  password: string;
  /** Realm in the `WWW-Authenticate` challenge. Default `Websockify`, as websockify. */
  realm?: string;
}

/**
 * websockify's `BasicHTTPAuth`: `--auth-source user:password`.
 *
 * No `Authorization` header, or wrong credentials: 401 with
 * `WWW-Authenticate: Basic realm="Websockify"`. Another scheme, bad base64 or no colon in the
 * credentials: 403. The credentials (UTF-8, or ISO-8859-1 as websockify decodes them) are compared in constant time (SHA-256 of both, then
 * `timingSafeEqual`), so neither the length nor a prefix of the secret leaks through timing;
 * only the hash of the expected pair is kept in memory. The scheme name is matched
 * case-insensitively (RFC 7617 2; websockify wants exactly `Basic `).
 */
export class BasicHTTPAuth implements AuthPlugin {
  readonly name = 'BasicHTTPAuth';
  /** SHA-256 of `user:password` as UTF-8 and, when it fits, as ISO-8859-1 (what websockify decodes). */
  private readonly expected: Buffer[];
  private readonly challenge: Record<string, string>;

  constructor(options: BasicHTTPAuthOptions) {
    if (typeof options.user !== 'string' || typeof options.password !== 'string' || options.user.includes(':')) {
      throw new InvalidOptionError('BasicHTTPAuth: options.user (without a colon) and options.password are required');
    }
    const pair = `${options.user}:${options.password}`;
    this.expected = [digest(Buffer.from(pair, 'utf8'))];
    if (/^[\x00-\xff]*$/.test(pair)) this.expected.push(digest(Buffer.from(pair, 'latin1')));
    const realm = (options.realm ?? 'Websockify').replace(/["\\]/g, '\\$&');
    this.challenge = { 'WWW-Authenticate': `Basic realm="${realm}"` };
  }

  /** Build from `--auth-source user:password`. The error never prints the value: it is a secret. */
  static fromSource(source: string | undefined): BasicHTTPAuth {
    const colon = source?.indexOf(':') ?? -1;
    if (source === undefined || colon < 0) {
      throw invalidSource('--auth-source', 'BasicHTTPAuth', source, BASIC_AUTH_GRAMMAR, undefined, null);
    }
    return new BasicHTTPAuth({ user: source.slice(0, colon), password: source.slice(colon + 1) });
  }

  authenticate(ctx: RequestContext): void {
    const header = ctx.headers.authorization;
    if (header === undefined || header === '') {
      throw new AuthenticationError('Basic auth: credentials required', 401, { ...this.challenge });
    }
    const m = /^basic (.*)$/is.exec(header);
    if (!m) throw new AuthenticationError('Basic auth: another authorization scheme', 403);
    const encoded = m[1]!.trim();
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 === 1) {
      throw new AuthenticationError('Basic auth: credentials are not base64', 403);
    }
    const raw = Buffer.from(encoded, 'base64');
    if (!raw.includes(0x3a)) throw new AuthenticationError('Basic auth: credentials have no colon', 403);
    // Browsers send UTF-8 or ISO-8859-1; compare against every accepted form, each in constant time.
    const got = digest(raw);
    let ok = false;
    for (const e of this.expected) ok = timingSafeEqual(got, e) || ok;
    if (!ok) {
      throw new AuthenticationError('Basic auth: wrong user or password', 401, { ...this.challenge });
    }
  }
}

function digest(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}
