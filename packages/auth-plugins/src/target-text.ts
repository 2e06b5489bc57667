import type { Target } from '@tsockify/core';
import { InvalidOptionError, parseHostPort } from '@tsockify/core';

/** websockify's marker for a unix socket target: `token: unix_socket:/run/vnc.sock`. */
const UNIX_PREFIX = 'unix_socket:';

/**
 * Parse a target written as text by websockify's plugins: `host:port`, `[v6]:port`,
 * `v6addr:port` (split on the last colon, so `::1:5900` is `::1` port 5900) or
 * `unix_socket:/path`. Throws an `InvalidOptionError` naming the value.
 */
export function parseTargetText(text: string, what = 'target'): Target {
  const value = text.trim();
  if (value.startsWith(UNIX_PREFIX)) {
    const unixSocket = value.slice(UNIX_PREFIX.length);
    if (unixSocket.length === 0) throw new InvalidOptionError(`invalid ${what} "${value}": expected unix_socket:/path`);
    return { unixSocket };
  }
  return parseHostPort(value, what);
}

/**
 * Build a TCP target from separate `host` and `port` values as JSON APIs and JWT claims give
 * them (`port` a number or a numeric string; `host` may be a bracketed IPv6 address).
 */
export function targetFromHostPort(host: unknown, port: unknown, what = 'target'): Target {
  if (typeof host !== 'string' || host.length === 0) {
    throw new InvalidOptionError(`invalid ${what}: "host" must be a non-empty string`);
  }
  if (typeof port !== 'number' && typeof port !== 'string') {
    throw new InvalidOptionError(`invalid ${what}: "port" must be a number`);
  }
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return parseHostPort(`${h.includes(':') ? `[${h}]` : h}:${String(port)}`, what);
}
