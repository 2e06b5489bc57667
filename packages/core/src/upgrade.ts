import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { TLSSocket, type PeerCertificate } from 'node:tls';
import type { Logger } from './logger.js';
import type { RequestContext, Target } from './plugins.js';
import type { ResolvedOptions } from './options.js';
import { openCookie } from './cookie.js';
import {
  BadRequestError,
  errorCode,
  MethodNotAllowedError,
  PluginUnavailableError,
  SubprotocolError,
  TokenInvalidError,
  TokenMissingError,
  TsockifyError,
  toHttpStatus,
} from './errors.js';

const KEY_RE = /^[+/0-9A-Za-z]{22}==$/;

/**
 * Check the parts of an upgrade request that `ws` would check, before we spend a dial on
 * it. Returns the subprotocol to answer (`binary`) or undefined when none was offered.
 */
export function validateHandshake(req: IncomingMessage): 'binary' | undefined {
  if (req.method !== 'GET') throw new MethodNotAllowedError(req.method ?? '?');
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    throw new BadRequestError('missing or invalid Upgrade header: expected "websocket"');
  }
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !KEY_RE.test(key.trim())) {
    throw new BadRequestError('missing or invalid Sec-WebSocket-Key header');
  }
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    throw new BadRequestError(`unsupported Sec-WebSocket-Version "${version ?? ''}": expected 13`);
  }
  return chooseSubprotocol(req.headers['sec-websocket-protocol']);
}

/**
 * `binary` if offered; nothing if no header (current noVNC offers none); otherwise a 400.
 * List items are trimmed: websockify trips on the space in `base64, binary`.
 */
export function chooseSubprotocol(header: string | undefined): 'binary' | undefined {
  if (header === undefined) return undefined;
  const offered = header.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  if (offered.length === 0) return undefined;
  if (offered.includes('binary')) return 'binary';
  throw new SubprotocolError(offered.join(', '));
}

/**
 * Remove every client header whose name starts with `ssl_`, in any case, then set
 * `ssl_client_s_dn_cn` from the verified client certificate. websockify 0.13 strips these
 * case-sensitively, so a lowercase spoofed header passes its ClientCertCNAuth.
 */
export function sanitiseSslHeaders(req: IncomingMessage): PeerCertificate | undefined {
  for (const name of Object.keys(req.headers)) {
    if (name.toLowerCase().startsWith('ssl_')) delete req.headers[name];
  }
  const sock = req.socket;
  if (sock instanceof TLSSocket && sock.authorized) {
    const cert = sock.getPeerCertificate();
    if (cert && cert.subject) {
      const cn = cert.subject.CN;
      if (typeof cn === 'string') req.headers['ssl_client_s_dn_cn'] = cn;
      return cert;
    }
  }
  return undefined;
}

/**
 * Cookies by name. The object has no prototype: a cookie named `__proto__`, `constructor` or
 * `toString` is an ordinary entry, and a name that was not sent is `undefined`, never an
 * inherited function (a `--cookie-name constructor` once crashed the process).
 */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (!name || Object.hasOwn(out, name)) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      out[name] = decodeURIComponent(value);
    } catch {
      out[name] = value;
    }
  }
  return out;
}

/** The Host header without its port: `[::1]:6080` → `::1`, `desk.example:443` → `desk.example`. */
export function hostWithoutPort(host: string | undefined): string | undefined {
  if (!host) return undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(1, end) : undefined;
  }
  const i = host.lastIndexOf(':');
  return i >= 0 && host.indexOf(':') === i ? host.slice(0, i) : host;
}

/**
 * Build the plugin context. The token comes from `?token=` (first value, empty = absent), the
 * Host header (`hostToken`), or, with `cookieExchange` and no query token, the sealed exchange
 * cookie (see cookie.ts); a cookie whose seal does not match is ignored.
 */
export function buildContext(req: IncomingMessage, options: ResolvedOptions, log: Logger): RequestContext {
  const clientCertificate = sanitiseSslHeaders(req);
  const rawUrl = req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const path = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  const query = new URLSearchParams(q >= 0 ? rawUrl.slice(q + 1) : '');
  const cookies = parseCookies(req.headers.cookie);
  let token: string | undefined;
  let tokenSource: RequestContext['tokenSource'];
  if (options.hostToken) {
    token = hostWithoutPort(req.headers.host);
    tokenSource = 'host';
  } else {
    token = query.get('token') || undefined;
    tokenSource = 'query';
    const exchange = options.cookieExchange;
    if (token === undefined && exchange) {
      const sealed = Object.hasOwn(cookies, exchange.cookieName) ? cookies[exchange.cookieName] : undefined;
      if (typeof sealed === 'string' && sealed !== '') {
        token = openCookie(sealed, exchange);
        tokenSource = 'cookie';
        if (token === undefined) log.debug({ cookie: exchange.cookieName }, 'exchange cookie ignored: its seal does not match (another server key, or forged)');
      }
    }
  }
  const socket = req.socket;
  return {
    req,
    headers: req.headers,
    path,
    query,
    cookies,
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    secure: socket instanceof TLSSocket,
    ...(clientCertificate ? { clientCertificate } : {}),
    ...(token !== undefined ? { token, tokenSource } : {}),
    log,
  };
}

/**
 * Run a plugin call with a bound on its time: a backend that is down or slow becomes a
 * `PluginUnavailableError` (503) after `ms`, and the next request tries again (no state is
 * kept, so recovery needs no restart). An error without a tsockify code from a token plugin
 * is a backend failure too (fail closed, 503); its message goes to the log, not the client.
 */
export async function callPlugin<T>(what: string, ms: number, fn: () => T | Promise<T>, wrapUnknown: boolean): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const call = Promise.resolve().then(fn);
  // A late answer or failure after the timeout must not become an unhandled rejection.
  call.catch(() => undefined);
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PluginUnavailableError(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([call, timeout]);
  } catch (err) {
    if (wrapUnknown && !(err instanceof Error && errorCode(err))) throw new PluginUnavailableError(`${what} failed`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Look a token up with the plugin, bounded by `pluginTimeoutMs`. `null` → 401 unknown token. */
export async function lookupToken(token: string, ctx: RequestContext, options: ResolvedOptions): Promise<Target> {
  const plugin = options.tokenPlugin!;
  const found = await callPlugin(`token plugin ${plugin.name ?? ''}`.trim(), options.pluginTimeoutMs, () => plugin.lookup(token, ctx), true);
  if (!found) throw new TokenInvalidError('unknown token');
  if (found.expiresAt !== undefined && found.expiresAt <= Date.now()) throw new TokenInvalidError('token expired');
  return found;
}

/**
 * Decide the target for a request: token lookup, then the auth plugin. Throws a
 * TsockifyError that `toHttpStatus` maps to the answer.
 */
export async function authorise(ctx: RequestContext, options: ResolvedOptions): Promise<{ ctx: RequestContext; target: Target }> {
  let target: Target | undefined = options.staticTarget;
  if (options.tokenPlugin) {
    if (ctx.token === undefined) throw new TokenMissingError();
    target = await lookupToken(ctx.token, ctx, options);
  }
  if (!target) throw new TsockifyError('TSOCK_ERR_INVALID_OPTION', 'no target configured: give a target or a token plugin');
  // A plugin's target was checked by lookupToken; a static one may carry an expiry too.
  if (!options.tokenPlugin && target.expiresAt !== undefined && target.expiresAt <= Date.now()) throw new TokenInvalidError('token expired');
  const withTarget: RequestContext = { ...ctx, target };
  const auth = options.authPlugin;
  if (auth) await callPlugin(`auth plugin ${auth.name ?? ''}`.trim(), options.pluginTimeoutMs, () => auth.authenticate(withTarget), false);
  return { ctx: withTarget, target };
}

/** A short reason safe to send to the client: never a token, never a stack, never an internal address. */
export function publicReason(err: unknown): string {
  // Backend and dial errors name hosts and addresses: the log has them, the client a short reason.
  switch (errorCode(err)) {
    case undefined:
      return 'internal error';
    case 'TSOCK_ERR_PLUGIN_UNAVAILABLE':
      return 'authorisation backend unavailable, try again';
    case 'TSOCK_ERR_TARGET_UNREACHABLE':
      return 'cannot connect to the VNC server';
    case 'TSOCK_ERR_TARGET_TIMEOUT':
      return 'the VNC server did not answer in time';
    default:
      return (err as Error).message;
  }
}

/** A reason phrase must be one line of visible ASCII (RFC 9112 section 4). */
const SAFE_REASON = /^[\x20-\x7e]{1,80}$/;

/**
 * Refuse an upgrade with an HTTP status, then close. Auth rejections carry their headers, no
 * body, and their message as the reason phrase (websockify: `403 Invalid Origin`); others a
 * one-line plain-text reason in the body.
 */
export function rejectUpgrade(socket: Duplex, err: unknown): number {
  const status = toHttpStatus(err);
  if (!socket.writable) {
    socket.destroy();
    return status;
  }
  const code = errorCode(err);
  const message = (err as { message?: unknown } | null)?.message;
  const phrase = code === 'TSOCK_ERR_AUTH' && typeof message === 'string' && SAFE_REASON.test(message)
    ? message
    : STATUS_CODES[status] ?? 'Error';
  const headers: string[] = [`HTTP/1.1 ${status} ${phrase}`, 'Connection: close'];
  let body = '';
  if (code === 'TSOCK_ERR_AUTH') {
    const extra = (err as { headers?: unknown }).headers;
    if (extra && typeof extra === 'object') {
      for (const [k, v] of Object.entries(extra as Record<string, unknown>)) {
        if (typeof v === 'string' && !/[\r\n]/.test(k + v)) headers.push(`${k}: ${v}`);
      }
    }
  } else {
    body = `${publicReason(err)}\n`;
    headers.push('Content-Type: text/plain; charset=utf-8');
  }
  if (code === 'TSOCK_ERR_BAD_REQUEST' && (message as string).includes('Version')) {
    headers.push('Sec-WebSocket-Version: 13');
  }
  if (status === 405) headers.push('Allow: GET');
  if (status === 429 || status === 503) headers.push('Retry-After: 5');
  headers.push(`Content-Length: ${Buffer.byteLength(body)}`);
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
  // A client that never reads must not keep the socket: give the answer a moment, then drop it.
  const t = setTimeout(() => socket.destroy(), 2000);
  t.unref();
  socket.once('close', () => clearTimeout(t));
  return status;
}
