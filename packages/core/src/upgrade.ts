import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { TLSSocket, type PeerCertificate } from 'node:tls';
import type { Logger } from './logger.js';
import type { RequestContext, Target } from './plugins.js';
import type { ResolvedOptions } from './options.js';
import {
  AuthenticationError,
  BadRequestError,
  MethodNotAllowedError,
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

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (!name || name in out) continue;
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

/** Build the plugin context. The token comes from `?token=` (first value, empty = absent) or the Host header. */
export function buildContext(req: IncomingMessage, options: ResolvedOptions, log: Logger): RequestContext {
  const clientCertificate = sanitiseSslHeaders(req);
  const rawUrl = req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const path = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  const query = new URLSearchParams(q >= 0 ? rawUrl.slice(q + 1) : '');
  const cookies = parseCookies(req.headers.cookie);
  let token: string | undefined;
  if (options.hostToken) token = hostWithoutPort(req.headers.host);
  else token = query.get('token') || undefined;
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
    ...(token !== undefined ? { token } : {}),
    log,
  };
}

/**
 * Decide the target for a request: token lookup, then the auth plugin. Throws a
 * TsockifyError that `toHttpStatus` maps to the answer.
 */
export async function authorise(ctx: RequestContext, options: ResolvedOptions): Promise<{ ctx: RequestContext; target: Target }> {
  let target: Target | undefined = options.staticTarget;
  if (options.tokenPlugin) {
    if (ctx.token === undefined) throw new TokenMissingError();
    const found = await options.tokenPlugin.lookup(ctx.token, ctx);
    if (!found) throw new TokenInvalidError('unknown token');
    target = found;
  }
  if (!target) throw new TsockifyError('TSOCK_ERR_INVALID_OPTION', 'no target configured: give a target or a token plugin');
  if (target.expiresAt !== undefined && target.expiresAt <= Date.now()) throw new TokenInvalidError('token expired');
  const withTarget: RequestContext = { ...ctx, target };
  if (options.authPlugin) await options.authPlugin.authenticate(withTarget);
  return { ctx: withTarget, target };
}

/** A short reason safe to send to the client: never a token, never a stack. */
export function publicReason(err: unknown): string {
  if (err instanceof TsockifyError) return err.message;
  return 'internal error';
}

/**
 * Refuse an upgrade with an HTTP status, then close. Auth rejections carry their headers and
 * no body (as websockify's auth plugins do); others a one-line plain-text reason.
 */
export function rejectUpgrade(socket: Duplex, err: unknown): number {
  const status = toHttpStatus(err);
  if (!socket.writable) {
    socket.destroy();
    return status;
  }
  const headers: string[] = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`, 'Connection: close'];
  let body = '';
  if (err instanceof AuthenticationError) {
    for (const [k, v] of Object.entries(err.headers)) headers.push(`${k}: ${v}`);
  } else {
    body = `${publicReason(err)}\n`;
    headers.push('Content-Type: text/plain; charset=utf-8');
  }
  if (status === 400 && err instanceof BadRequestError && err.message.includes('Version')) {
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
