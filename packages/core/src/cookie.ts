/**
 * Cookie exchange: the portal sends the browser to a one-time URL `https://gw/?token=X`;
 * tsockify checks X with the token plugin and answers 303 to the same page without the
 * token, setting an HttpOnly, SameSite=Strict cookie (Secure on TLS) scoped to the page's
 * folder. The page's WebSocket upgrade then authenticates by that cookie. The token is never
 * left in the address bar, the history or a Referer.
 *
 * The cookie holds the token sealed with an HMAC of this server's exchange key:
 * `<base64url(HMAC-SHA256(key, name "\n" token))>.<token>`. Only a token that went through the
 * exchange (and so, for a one-time token, was consumed there) carries a valid seal; a token
 * copied into a Cookie header by hand does not. The upgrade passes a sealed token to the
 * plugin with `tokenSource: 'cookie'`, telling a one-time plugin not to consume it again, so
 * the page can reconnect for as long as the token lives.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidOptionError } from './errors.js';

export interface CookieExchangeOptions {
  /** The page path that trades `?token=` for the cookie. Default `/` (the built-in viewer). */
  path?: string;
  /** Cookie name. Default `tsockify_token`. */
  cookieName?: string;
  /** Longest cookie lifetime in seconds; a token's own expiry shortens it. Default 28800 (8 h). */
  maxAgeSec?: number;
  /** The cookie's `Path`. Default: the folder of `path` (`/` for `/vnc.html`), which covers the WebSocket next to the page. */
  cookiePath?: string;
  /**
   * Key that seals cookies (HMAC-SHA256). Default: 32 random bytes per process, so a restart
   * logs everyone out of their cookie. Give every node behind one load balancer the same key.
   */
  secret?: string | Buffer;
  /** Add `Secure`: `auto` (default) on TLS connections only; `true` behind a TLS-terminating proxy. */
  secure?: boolean | 'auto';
}

export interface ResolvedCookieExchange {
  path: string;
  cookieName: string;
  maxAgeSec: number;
  cookiePath: string;
  key: Buffer;
  secure: boolean | 'auto';
}

const COOKIE_NAME_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PATH_RE = /^\/[^?#;\s,]*$/;

/** Validate the options at startup. */
export function resolveCookieExchange(opt: boolean | CookieExchangeOptions | undefined): ResolvedCookieExchange | undefined {
  if (!opt) return undefined;
  const o: CookieExchangeOptions = opt === true ? {} : opt;
  const path = o.path ?? '/';
  if (!PATH_RE.test(path)) throw new InvalidOptionError(`invalid cookieExchange.path "${path}": expected a URL path such as / or /vnc.html`);
  const cookieName = o.cookieName ?? 'tsockify_token';
  if (!COOKIE_NAME_RE.test(cookieName)) throw new InvalidOptionError(`invalid cookieExchange.cookieName "${cookieName}": expected letters, digits and !#$%&'*+-.^_\`|~`);
  const maxAgeSec = o.maxAgeSec ?? 8 * 3600;
  if (!Number.isInteger(maxAgeSec) || maxAgeSec < 1) throw new InvalidOptionError(`invalid cookieExchange.maxAgeSec ${String(maxAgeSec)}: expected a positive whole number of seconds`);
  const cookiePath = o.cookiePath ?? path.slice(0, path.lastIndexOf('/') + 1);
  if (!PATH_RE.test(cookiePath)) throw new InvalidOptionError(`invalid cookieExchange.cookiePath "${cookiePath}": expected a URL path such as /`);
  if (!path.startsWith(cookiePath)) {
    throw new InvalidOptionError(`cookieExchange.cookiePath "${cookiePath}" must contain the exchange path "${path}" (the page's WebSocket needs the cookie)`);
  }
  let key: Buffer;
  if (o.secret === undefined) key = randomBytes(32);
  else key = typeof o.secret === 'string' ? Buffer.from(o.secret, 'utf8') : Buffer.from(o.secret);
  if (key.length < 16) throw new InvalidOptionError('cookieExchange.secret is too short: give at least 16 bytes (32 random bytes are best)');
  const secure = o.secure ?? 'auto';
  if (secure !== true && secure !== false && secure !== 'auto') throw new InvalidOptionError(`invalid cookieExchange.secure ${String(secure)}: expected true, false or "auto"`);
  return { path, cookieName, maxAgeSec, cookiePath, key, secure };
}

function seal(token: string, cfg: ResolvedCookieExchange): Buffer {
  return createHmac('sha256', cfg.key).update(`${cfg.cookieName}\n${token}`, 'utf8').digest();
}

/** The cookie value for a redeemed token (before percent-encoding). */
export function sealCookie(token: string, cfg: ResolvedCookieExchange): string {
  return `${seal(token, cfg).toString('base64url')}.${token}`;
}

/** The token in a sealed cookie value, or undefined when the seal does not match (compared in constant time). */
export function openCookie(value: string, cfg: ResolvedCookieExchange): string | undefined {
  if (typeof value !== 'string') return undefined;
  const dot = value.indexOf('.');
  if (dot !== 43) return undefined;
  const token = value.slice(dot + 1);
  if (token.length === 0) return undefined;
  const got = Buffer.from(value.slice(0, dot), 'base64url');
  const want = seal(token, cfg);
  return got.length === want.length && timingSafeEqual(got, want) ? token : undefined;
}

/** The `Set-Cookie` header value. */
export function setCookieHeader(cfg: ResolvedCookieExchange, value: string, maxAgeSec: number, tls: boolean): string {
  const secure = cfg.secure === 'auto' ? tls : cfg.secure;
  return `${cfg.cookieName}=${encodeURIComponent(value)}; HttpOnly; SameSite=Strict; Path=${cfg.cookiePath}; Max-Age=${maxAgeSec}${secure ? '; Secure' : ''}`;
}

/**
 * The token an exchange request carries and where to send the browser without it. The token
 * is the first non-empty `token` parameter, or the `token` inside noVNC's `path` parameter
 * (`vnc.html?path=websockify%3Ftoken%3DX`). Every `token` parameter is dropped from the
 * `Location`; other parameters are kept as they were written.
 */
export function exchangeRequestToken(rawUrl: string): { token: string; location: string } | undefined {
  const q = rawUrl.indexOf('?');
  if (q < 0) return undefined;
  const path = rawUrl.slice(0, q);
  let token: string | undefined;
  let nested: string | undefined;
  const kept: string[] = [];
  for (const item of rawUrl.slice(q + 1).split('&')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const name = decode(eq < 0 ? item : item.slice(0, eq));
    const value = eq < 0 ? '' : decode(item.slice(eq + 1));
    if (name === 'token') {
      if (token === undefined && value !== '') token = value;
      continue;
    }
    if (name === 'path' && value.includes('?')) {
      const i = value.indexOf('?');
      const inner = new URLSearchParams(value.slice(i + 1));
      const t = inner.get('token');
      if (inner.has('token')) {
        if (t) nested ??= t;
        inner.delete('token');
        const rest = inner.toString();
        kept.push(`path=${encodeURIComponent(rest ? `${value.slice(0, i)}?${rest}` : value.slice(0, i))}`);
        continue;
      }
    }
    kept.push(item);
  }
  const found = token ?? nested;
  if (found === undefined) return undefined;
  return { token: found, location: kept.length > 0 ? `${path}?${kept.join('&')}` : path };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
