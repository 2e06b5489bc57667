/**
 * The HTTP side of the cookie exchange (cookie.ts has the format): check the token with the
 * plugin (a one-time token is consumed here), then 303 to the page without it, with the sealed
 * cookie. Also the log fields every refusal shares: a token's hash, never the token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from './logger.js';
import type { ResolvedOptions } from './options.js';
import { TokenInvalidError, errorCode, toHttpStatus } from './errors.js';
import { sealCookie, setCookieHeader } from './cookie.js';
import { tokenHash } from './token-hash.js';
import { buildContext, lookupToken, publicReason } from './upgrade.js';

/**
 * Answer one exchange request. Neither answer may be cached (`no-store`), and neither page may
 * leak its URL, which holds the token, in a Referer (`no-referrer`). Never throws.
 */
export async function exchangeCookie(
  req: IncomingMessage,
  res: ServerResponse,
  token: string,
  location: string,
  options: ResolvedOptions,
  log: Logger,
  sendPlain: (status: number, body: string) => void,
): Promise<void> {
  const exchange = options.cookieExchange!;
  const where = { remoteAddress: req.socket.remoteAddress ?? '', path: (req.url ?? '/').split('?')[0]!, ...tokenFields(token, 'query') };
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Referrer-Policy', 'no-referrer');
  try {
    const ctx = { ...buildContext(req, options, log), token, tokenSource: 'query' as const };
    const target = await lookupToken(token, ctx, options);
    const left = target.expiresAt === undefined ? exchange.maxAgeSec : Math.floor((target.expiresAt - Date.now()) / 1000);
    const maxAge = Math.min(exchange.maxAgeSec, left);
    if (maxAge < 1) throw new TokenInvalidError('token expired');
    res.writeHead(303, {
      Location: location,
      'Set-Cookie': setCookieHeader(exchange, sealCookie(token, exchange), maxAge, ctx.secure),
      'Content-Length': 0,
    });
    res.end();
    log.info({ ...where, maxAgeSec: maxAge, ...(target.meta ? { meta: target.meta } : {}) }, 'token exchanged for a cookie');
  } catch (err) {
    const status = toHttpStatus(err);
    if (status === 503) res.setHeader('Retry-After', '5');
    const reason = publicReason(err);
    sendPlain(status, reason);
    const code = errorCode(err) ?? 'TSOCK_ERR_INTERNAL';
    log[status >= 500 ? 'warn' : 'info']({ ...where, status, reason, code, ...failureFields(err, status) }, 'cookie exchange refused');
  }
}

/** Log fields naming a token without giving it away: a short hash and where it came from. */
export function tokenFields(token: string | undefined, source: string | undefined): Record<string, string> {
  return token === undefined ? {} : { tokenHash: tokenHash(token), ...(source ? { tokenSource: source } : {}) };
}

/**
 * Log fields that say why, beyond the short public reason. Read by error code, like the
 * status mapping, so errors from a plugin's own copy of the core say why too.
 */
export function failureFields(err: unknown, status: number): Record<string, string> {
  const e = err as { message?: unknown; detail?: unknown; cause?: unknown };
  switch (errorCode(err)) {
    case 'TSOCK_ERR_TARGET_DENIED':
      return typeof e.detail === 'string' ? { detail: e.detail } : {};
    case 'TSOCK_ERR_PLUGIN_UNAVAILABLE': {
      const cause = e.cause instanceof Error ? e.cause.message : e.cause !== undefined ? String(e.cause) : undefined;
      return { err: String(e.message), ...(cause !== undefined ? { cause } : {}) };
    }
    case 'TSOCK_ERR_TARGET_UNREACHABLE':
    case 'TSOCK_ERR_TARGET_TIMEOUT':
      // The client got a short public reason; the log keeps the address and the errno or TLS error.
      return { cause: String(e.message) };
    default:
      return status === 500 ? { err: String(err) } : {};
  }
}
