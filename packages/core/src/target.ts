import net from 'node:net';
import tls from 'node:tls';
import type { Target } from './plugins.js';
import type { TargetTlsOptions } from './options.js';
import { formatTarget, isUnixTarget } from './plugins.js';
import { TargetTimeoutError, TargetUnreachableError } from './errors.js';
import { kPooledReads } from './read-buffers.js';

/** What a dial needs of an AbortSignal: an AbortSignal fits, and so does the server's lighter ClientGone. */
export interface AbortLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface DialOptions {
  timeoutMs: number;
  tls: TargetTlsOptions | undefined;
  /** Aborts the dial (the client went away while we were connecting). */
  signal?: AbortLike;
  /**
   * Read plain TCP and unix targets through Node's `onread` (relay.ts passes TARGET_READS):
   * the socket then emits no 'data'. TLS targets ignore this and read as usual.
   */
  onread?: net.OnReadOpts;
}

/**
 * What happened on a dialled socket between the dial and the Session that takes it over:
 * bytes the target sent at once (a VNC server speaks first), its EOF, an error. The Session
 * sends the bytes right after the 101, in the same tick, so the greeting does not wait for
 * another turn of the event loop.
 */
export interface HeldState {
  chunks: Buffer[];
  bytes: number;
  ended: boolean;
  error: Error | undefined;
}

const kHeld = Symbol('tsockify.held');
type Holding = net.Socket & { [kHeld]?: HeldState };

/** Past this many held bytes the socket stops reading until its Session starts. */
export const HOLD_LIMIT = 256 * 1024;

/** The held state of a dialled socket, created on first use. */
export function heldState(socket: net.Socket): HeldState {
  return ((socket as Holding)[kHeld] ??= { chunks: [], bytes: 0, ended: false, error: undefined });
}

function holdError(this: net.Socket, err: Error): void {
  heldState(this).error ??= err;
}

function holdEnd(this: net.Socket): void {
  heldState(this).ended = true;
}

/** For the Session: stop holding and take what was held (undefined: nothing happened). */
export function adoptDialled(socket: net.Socket): HeldState | undefined {
  socket.removeListener('error', holdError);
  socket.removeListener('end', holdEnd);
  const held = (socket as Holding)[kHeld];
  if (held !== undefined) (socket as Holding)[kHeld] = undefined;
  return held;
}

/** Keep-alive probes start after this much silence; catches targets that vanish without a FIN. */
const KEEPALIVE_DELAY_MS = 60_000;

function describeDialError(target: Target, err: NodeJS.ErrnoException): string {
  const where = formatTarget(target);
  switch (err.code) {
    case 'ECONNREFUSED':
      return `connection refused by ${where}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve ${where}`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route to ${where}`;
    case 'ENOENT':
      return `no unix socket at ${where}`;
    case 'EACCES':
      return `permission denied connecting to ${where}`;
    case 'ECONNRESET':
      return `${where} reset the connection`;
    default:
      return `cannot connect to ${where}: ${err.message}`;
  }
}

function normaliseFingerprint(fp: string): string {
  return fp.replace(/:/g, '').toUpperCase();
}

/**
 * Connect to the target and resolve once it is usable (TCP connected, TLS verified). The
 * upgrade is answered only after this succeeds, so a dead target becomes an HTTP 502/504
 * instead of websockify's upgrade-then-close.
 *
 * TCP targets use happy eyeballs (`autoSelectFamily`): websockify tries only the first
 * address a name resolves to.
 */
export function dialTarget(target: Target, opts: DialOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    const tlsOpts = opts.tls;
    const onread = opts.onread;
    if (isUnixTarget(target)) {
      socket = net.connect({ path: target.unixSocket, allowHalfOpen: true, ...(onread ? { onread } : {}) });
    } else if (tlsOpts) {
      const pinned = tlsOpts.fingerprint256 !== undefined;
      const checkIdentity = tlsOpts.checkServerIdentity ?? !pinned;
      const servername = tlsOpts.servername ?? (net.isIP(target.host) ? undefined : target.host);
      // TCP first (happy eyeballs), then TLS over it.
      const tcp = net.connect({ host: target.host, port: target.port, autoSelectFamily: true });
      tcp.on('error', (err) => socket.destroy(err));
      socket = tls.connect({
        socket: tcp,
        // The host-name check uses `host`; without it node checks against "localhost".
        host: target.host,
        ...(servername !== undefined ? { servername } : {}),
        ...(tlsOpts.ca !== undefined ? { ca: tlsOpts.ca } : {}),
        // A pinned certificate is checked below by fingerprint, whoever signed it.
        rejectUnauthorized: !pinned,
        ...(checkIdentity ? {} : { checkServerIdentity: () => undefined }),
      });
    } else {
      socket = net.connect({
        host: target.host, port: target.port, allowHalfOpen: true, autoSelectFamily: true, ...(onread ? { onread } : {}),
      });
    }
    if (onread && !(socket instanceof tls.TLSSocket)) {
      (socket as net.Socket & { [kPooledReads]?: boolean })[kPooledReads] = true;
    }

    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      if (err) {
        socket.destroy();
        reject(err);
        return;
      }
      // Until a Session adopts the socket (adoptDialled), an error or EOF is kept, not lost:
      // an 'error' with no listener would end the process.
      socket.on('error', holdError);
      socket.once('end', holdEnd);
      resolve(socket);
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      const message = err.code?.startsWith('ERR_TLS') || err.code?.includes('CERT') || /certificate|ssl|tls/i.test(err.message)
        ? `TLS handshake with ${formatTarget(target)} failed: ${err.message}`
        : describeDialError(target, err);
      finish(new TargetUnreachableError(message, { cause: err }));
    };
    const onAbort = (): void => finish(new TargetUnreachableError('client went away while connecting'));
    const timer = setTimeout(
      () => finish(new TargetTimeoutError(`${formatTarget(target)} did not accept within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );

    // Attach the error listener before anything can fail.
    socket.on('error', onError);
    if (opts.signal) {
      if (opts.signal.aborted) { onAbort(); return; }
      opts.signal.addEventListener('abort', onAbort, { once: true });
    }
    const ready = (): void => {
      if (tlsOpts?.fingerprint256 !== undefined && socket instanceof tls.TLSSocket) {
        const got = socket.getPeerCertificate().fingerprint256 ?? '';
        if (normaliseFingerprint(got) !== normaliseFingerprint(tlsOpts.fingerprint256)) {
          finish(new TargetUnreachableError(
            `TLS certificate of ${formatTarget(target)} does not match the pinned fingerprint (got ${got})`,
          ));
          return;
        }
      }
      if (!isUnixTarget(target)) {
        // On a TLSSocket these reach the TCP socket underneath.
        socket.setNoDelay(true);
        socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
      }
      finish();
    };
    socket.once(tlsOpts && !isUnixTarget(target) ? 'secureConnect' : 'connect', ready);
  });
}
