import type { OnReadOpts, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Logger } from './logger.js';
import { MAX_FRAME_PAYLOAD } from './options.js';
import {
  SCRATCH, chooseNextReadBuffer, kPooledReads, nextReadBuffer, releaseReadBuffer, takeReadBuffer,
} from './read-buffers.js';
import { HOLD_LIMIT, adoptDialled, heldState, type HeldState } from './target.js';

/** Facts about a live session, as given to `session` listeners. */
export interface SessionInfo {
  /** Counts sessions from 1 within one server. */
  id: number;
  remoteAddress: string;
  remotePort: number;
  /** The target as `host:port`, `[v6]:port` or `unix:/path`. */
  target: string;
  /** The request path (no query string: it may hold a token). */
  path: string;
  /** The subprotocol answered (`binary`) or '' for none. */
  protocol: string;
  /** Facts from the token plugin (subject, instance, token id); never a secret. */
  meta?: Record<string, string>;
  startedAt: number;
}

/** Who ended a session. */
export type CloseInitiator = 'client' | 'target' | 'server';

export interface SessionCloseInfo extends SessionInfo {
  /** The close code the client saw or sent (1006 when the connection dropped without one). */
  code: number;
  reason: string;
  initiator: CloseInitiator;
  /** Bytes from the client delivered to the target. */
  bytesToTarget: number;
  /** Bytes from the target sent to the client. */
  bytesToClient: number;
  durationMs: number;
  /** Set when a failure ended the session. */
  error?: string;
}

/** Observers of the byte stream (recording, traffic legend); optional and off the fast path when absent. */
export interface SessionTaps {
  fromClient?(data: Buffer): void;
  fromTarget?(data: Buffer): void;
  /** A client message was written to the target; `complete` is false when it was queued. */
  sentToTarget?(complete: boolean): void;
  /** Target bytes were sent to the client; `complete` is false when they wait in the send buffer. */
  sentToClient?(complete: boolean): void;
  close?(): void;
}

export interface RelayOptions {
  /** Stop reading one side while the other side has more than this many bytes queued. */
  highWaterMark: number;
  /** After the client closed, how long the target gets to drain before it is destroyed. */
  lingerMs: number;
  log: Logger;
  taps: SessionTaps | undefined;
  onClose(info: SessionCloseInfo): void;
}

/** Queued bytes on either leg above which the other leg stops reading. Bounds memory per session. */
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

/**
 * Every listener below is one function shared by all sessions; it finds its session through
 * this property on the emitter (the way ws finds its WebSocket on the socket, kWebSocket).
 * Per-session arrow functions would cost eleven closures, about 0.7 KiB, per session: at
 * 10,000 idle sessions that is 7 MiB for nothing.
 */
const kSession = Symbol('tsockify.session');

interface Tagged {
  [kSession]?: Session;
}

interface Pooled {
  [kPooledReads]?: boolean;
}

/** Reads up to this size are copied out of SCRATCH into a small buffer from Node's slab. */
const SMALL_COPY = 2048;

function sessionOf(emitter: unknown): Session {
  return (emitter as Tagged)[kSession]!;
}

/**
 * Carries bytes both ways between one WebSocket and one target socket, with backpressure on
 * both legs and one idempotent teardown that emits exactly one close event.
 */
export class Session {
  readonly info: SessionInfo;
  readonly ws: WebSocket;
  readonly target: Socket;
  private readonly clientSocket: Duplex;
  private readonly opts: RelayOptions;
  private bytesToTarget = 0;
  private bytesToClient = 0;
  private closing = false;
  private finished = false;
  private initiator: CloseInitiator = 'client';
  private failure: string | undefined;
  private targetPaused = false;
  private clientPaused = false;
  private expiryTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private lastCode = 1006;
  private lastReason = '';
  /** The close we sent first, if we did: reported when the client drops without echoing it. */
  private sentCode: number | undefined;
  private sentReason = '';
  /** Heartbeat bookkeeping: pings sent since the last pong, and when the next ping is due (0 = not yet scheduled). */
  missedPongs = 0;
  nextPingAt = 0;
  /** When bytes last moved either way (ms since the epoch); read by the idle sweep. */
  lastActivity = Date.now();

  constructor(info: SessionInfo, ws: WebSocket, clientSocket: Duplex, target: Socket, opts: RelayOptions) {
    this.info = info;
    this.ws = ws;
    this.clientSocket = clientSocket;
    this.target = target;
    this.opts = opts;
    (target as Tagged)[kSession] = this;
    (ws as Tagged)[kSession] = this;
    (clientSocket as Tagged)[kSession] = this;

    // Error listeners first: an error emitted with no listener would crash the process.
    target.on('error', Session.onTargetError);
    ws.on('error', Session.onWsError);

    target.on('end', Session.onTargetEnd);
    target.on('close', Session.onTargetClose);
    ws.on('message', Session.onMessage);
    ws.on('close', Session.onWsClose);
    ws.on('pong', Session.onPong);
    if ('setKeepAlive' in clientSocket) (clientSocket as Socket).setKeepAlive(true, 60_000);
    // A target dialled with TARGET_READS brings its bytes to onTargetRead; any other socket
    // (TLS targets, a library caller's own) emits 'data'.
    const held = adoptDialled(target);
    // Reading may have paused at HOLD_LIMIT before this session started.
    if ((target as Pooled)[kPooledReads]) target.resume();
    else target.on('data', Session.onTargetData);
    if (held !== undefined) this.replay(held);
  }

  /** What the target did before this session started: its first bytes, then its EOF or error. */
  private replay(held: HeldState): void {
    for (const chunk of held.chunks) this.sendToClient(chunk, undefined);
    if (held.error !== undefined) Session.onTargetError.call(this.target, held.error);
    else if (held.ended) this.targetEnded();
  }

  /** Send our close frame, remembering it in case the client drops without echoing it. */
  private sendClose(code: number, reason: string): void {
    if (this.sentCode === undefined) {
      this.sentCode = code;
      this.sentReason = reason;
    }
    this.ws.close(code, reason);
  }

  /** Close the session when its authorisation ends (token expiry). */
  expireAt(when: number): void {
    const delay = Math.max(0, when - Date.now());
    // setTimeout holds at most 2^31-1 ms; later expiries are re-armed when the first fires.
    this.expiryTimer = setTimeout(() => {
      if (Date.now() >= when) this.close(1008, 'Token expired', 'server');
      else this.expireAt(when);
    }, Math.min(delay, 2 ** 31 - 1));
    this.expiryTimer.unref();
  }

  /** End the session from the server side (shutdown, expiry, dead peer). */
  close(code: number, reason: string, initiator: CloseInitiator = 'server'): void {
    if (this.closing) return;
    this.closing = true;
    this.initiator = initiator;
    this.sendClose(code, reason);
    this.target.end();
  }

  /** Drop both connections at once (dead peer, forced shutdown). */
  terminate(reason: string): void {
    this.failure ??= reason;
    this.initiator = 'server';
    this.ws.terminate();
    this.target.destroy();
  }

  /**
   * The `onread` callback of a target dialled with TARGET_READS (see read-buffers.ts); `this`
   * is the target socket. `buf` is either the shared SCRATCH buffer, copied from and never
   * kept, or a pooled buffer of this socket's own, handed to ws as it is.
   */
  static onTargetRead(this: Socket, nread: number, read: Uint8Array): boolean {
    // Every buffer handed to this socket is a Buffer: SCRATCH or one from takeReadBuffer.
    const buf = read as Buffer;
    const s = (this as Tagged)[kSession];
    const pooled = buf !== SCRATCH;
    if (s === undefined) {
      // Connected, upgrade not answered yet: keep a copy for the Session (see HeldState).
      const held = heldState(this);
      held.chunks.push(Buffer.from(buf.subarray(0, nread)));
      held.bytes += nread;
      if (pooled) releaseReadBuffer(buf);
      chooseNextReadBuffer(undefined);
      if (held.bytes >= HOLD_LIMIT) this.pause();
      return true;
    }
    // A full read means more is waiting: read on into a buffer of this socket's own.
    const next = nread === buf.length && !s.closing ? takeReadBuffer() : undefined;
    if (s.closing) {
      if (pooled) releaseReadBuffer(buf);
    } else if (pooled) {
      s.sendToClient(buf.subarray(0, nread), buf);
    } else if (nread <= SMALL_COPY) {
      // Small reads (keystroke echoes, cursor updates) come from Node's shared slab.
      const chunk = Buffer.allocUnsafe(nread);
      SCRATCH.copy(chunk, 0, 0, nread);
      s.sendToClient(chunk, undefined);
    } else {
      const own = takeReadBuffer();
      SCRATCH.copy(own, 0, 0, nread);
      s.sendToClient(own.subarray(0, nread), own);
    }
    chooseNextReadBuffer(next);
    return true;
  }

  /** `this` is the target socket (TLS targets, and sockets not dialled with TARGET_READS). */
  private static onTargetData(this: Socket, chunk: Buffer): void {
    const s = sessionOf(this);
    if (s.closing) return;
    // Each target read becomes one message of at most 64 KiB (the websockify contract),
    // handed to ws as read: no copy, no re-slicing below that size.
    if (chunk.length <= MAX_FRAME_PAYLOAD) {
      s.sendToClient(chunk, undefined);
    } else {
      for (let off = 0; off < chunk.length; off += MAX_FRAME_PAYLOAD) {
        s.sendToClient(chunk.subarray(off, off + MAX_FRAME_PAYLOAD), undefined);
      }
    }
  }

  /**
   * Send target bytes to the client as one binary message. `pooled` is the read buffer
   * `chunk` lies in, returned to the pool once ws has written it.
   */
  private sendToClient(chunk: Buffer, pooled: Buffer | undefined): void {
    this.bytesToClient += chunk.length;
    this.lastActivity = Date.now();
    const taps = this.opts.taps;
    taps?.fromTarget?.(chunk);
    if (pooled === undefined) this.ws.send(chunk);
    else this.ws.send(chunk, () => releaseReadBuffer(pooled));
    const queued = this.clientSocket.writableLength;
    taps?.sentToClient?.(queued === 0);
    if (!this.targetPaused && queued > this.opts.highWaterMark) {
      this.targetPaused = true;
      this.target.pause();
      this.clientSocket.once('drain', Session.onClientDrain);
    }
  }

  /** `this` is the client socket. */
  private static onClientDrain(this: Duplex): void {
    const s = sessionOf(this);
    s.targetPaused = false;
    if (!s.finished) s.target.resume();
  }

  /** `this` is the WebSocket. */
  private static onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
    const s = sessionOf(this);
    if (!isBinary) {
      s.failure = 'text frame from client';
      s.close(1003, 'Unsupported: text frames are not supported', 'server');
      return;
    }
    s.bytesToTarget += data.length;
    s.lastActivity = Date.now();
    const taps = s.opts.taps;
    taps?.fromClient?.(data);
    const target = s.target;
    if (!target.writable) return;
    const complete = target.write(data);
    taps?.sentToTarget?.(complete);
    if (!s.clientPaused && target.writableLength > s.opts.highWaterMark) {
      s.clientPaused = true;
      this.pause();
      target.once('drain', Session.onTargetDrain);
    }
  }

  /** `this` is the target socket. */
  private static onTargetDrain(this: Socket): void {
    const s = sessionOf(this);
    s.clientPaused = false;
    if (!s.finished) s.ws.resume();
  }

  /** `this` is the WebSocket. */
  private static onPong(this: WebSocket): void {
    sessionOf(this).missedPongs = 0;
  }

  /** The target finished sending: everything it sent is already queued on the WebSocket. */
  private static onTargetEnd(this: Socket): void {
    sessionOf(this).targetEnded();
  }

  private targetEnded(): void {
    if (this.closing) return;
    this.closing = true;
    this.initiator = 'target';
    this.sendClose(1000, 'Target closed');
    this.target.end();
  }

  private static onTargetError(this: Socket, err: NodeJS.ErrnoException): void {
    const s = sessionOf(this);
    s.opts.log.debug({ err: err.message, code: err.code }, 'target error');
    if (s.finished) return;
    if (!s.closing) {
      s.closing = true;
      s.initiator = 'target';
      s.failure = `target error: ${err.code ?? err.message}`;
      // 1011: the server hit a condition it could not recover from (RFC 6455 7.4.1).
      s.sendClose(1011, 'Target connection error');
    }
    this.destroy();
  }

  private static onTargetClose(this: Socket): void {
    const s = sessionOf(this);
    // A target that closed without an orderly EOF (destroyed after an error) still ends the session.
    if (!s.closing) s.targetEnded();
    if (s.ws.readyState === s.ws.CLOSED) s.finish(s.lastCode, s.lastReason);
  }

  private static onWsError(this: WebSocket, err: Error & { code?: string }): void {
    const s = sessionOf(this);
    // ws has already sent the close frame for a protocol error (1002, 1007, 1008, 1009); note
    // its code, so that a client that drops without echoing it is reported with it, not 1006.
    const code = wsErrorCloseCode(err.code);
    if (code !== undefined && s.sentCode === undefined) {
      s.sentCode = code;
      s.sentReason = '';
    }
    s.failure ??= err.message;
    s.opts.log.debug({ err: err.message, code: err.code }, 'client protocol error');
  }

  private static onWsClose(this: WebSocket, code: number, reason: Buffer): void {
    const s = sessionOf(this);
    // 1006: no close frame came back. If we had sent one, that is how the session ended.
    const echoed = code !== 1006 || s.sentCode === undefined;
    s.lastCode = echoed ? code : s.sentCode!;
    s.lastReason = echoed ? reason.toString() : s.sentReason;
    if (!s.closing) {
      s.closing = true;
      s.initiator = 'client';
    }
    const target = s.target;
    if (target.destroyed) {
      s.finish(s.lastCode, s.lastReason);
      return;
    }
    // Flush what the client sent (already written) with a FIN, then keep reading and
    // discarding until the target closes: closing a socket with unread data sends a RST,
    // which can destroy data still in flight to the target.
    target.end();
    if (!(target as Pooled)[kPooledReads]) {
      target.removeListener('data', Session.onTargetData);
      target.on('data', discard);
    }
    // onTargetRead drops what arrives now that the session is closing.
    target.resume();
    s.lingerTimer = setTimeout(() => target.destroy(), s.opts.lingerMs);
    s.lingerTimer.unref();
    s.finish(s.lastCode, s.lastReason);
  }

  private finish(code: number, reason: string): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.expiryTimer);
    this.opts.taps?.close?.();
    const info: SessionCloseInfo = {
      ...this.info,
      code,
      reason,
      initiator: this.initiator,
      bytesToTarget: this.bytesToTarget,
      bytesToClient: this.bytesToClient,
      durationMs: Date.now() - this.info.startedAt,
      ...(this.failure !== undefined ? { error: this.failure } : {}),
    };
    this.target.once('close', () => clearTimeout(this.lingerTimer));
    this.opts.onClose(info);
  }
}

function discard(): void {}

/** The close code ws sends for each of its receiver errors (ws/lib/receiver.js). */
function wsErrorCloseCode(code: string | undefined): number | undefined {
  switch (code) {
    case 'WS_ERR_INVALID_UTF8':
      return 1007;
    case 'WS_ERR_TOO_MANY_BUFFERED_PARTS':
      return 1008;
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
    case 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH':
      return 1009;
    default:
      return code?.startsWith('WS_ERR_') ? 1002 : undefined;
  }
}

/**
 * Pass as `onread` when dialling a target (DialOptions.onread): its reads then go through
 * reused buffers (read-buffers.ts) to `Session.onTargetRead`.
 */
export const TARGET_READS: OnReadOpts = { buffer: nextReadBuffer, callback: Session.onTargetRead };
