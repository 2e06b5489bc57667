import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Logger } from './logger.js';
import { MAX_FRAME_PAYLOAD } from './options.js';

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
  /** Heartbeat bookkeeping: pings sent since the last pong. */
  missedPongs = 0;
  /** When bytes last moved either way (ms since the epoch); read by the idle sweep. */
  lastActivity = Date.now();

  constructor(info: SessionInfo, ws: WebSocket, clientSocket: Duplex, target: Socket, opts: RelayOptions) {
    this.info = info;
    this.ws = ws;
    this.clientSocket = clientSocket;
    this.target = target;
    this.opts = opts;

    // Error listeners first: an error emitted with no listener would crash the process.
    target.on('error', this.onTargetError);
    ws.on('error', this.onWsError);

    target.on('data', this.onTargetData);
    target.on('end', this.onTargetEnd);
    target.on('close', this.onTargetClose);
    ws.on('message', this.onMessage);
    ws.on('close', this.onWsClose);
    ws.on('pong', this.onPong);
    if ('setKeepAlive' in clientSocket) (clientSocket as Socket).setKeepAlive(true, 60_000);
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
    this.ws.close(code, reason);
    this.target.end();
  }

  /** Drop both connections at once (dead peer, forced shutdown). */
  terminate(reason: string): void {
    this.failure ??= reason;
    this.initiator = 'server';
    this.ws.terminate();
    this.target.destroy();
  }

  private readonly onTargetData = (chunk: Buffer): void => {
    this.bytesToClient += chunk.length;
    this.lastActivity = Date.now();
    this.opts.taps?.fromTarget?.(chunk);
    if (this.closing) return;
    // Each target read becomes one message of at most 64 KiB (the websockify contract).
    if (chunk.length <= MAX_FRAME_PAYLOAD) {
      this.ws.send(chunk);
    } else {
      for (let off = 0; off < chunk.length; off += MAX_FRAME_PAYLOAD) {
        this.ws.send(chunk.subarray(off, off + MAX_FRAME_PAYLOAD));
      }
    }
    this.opts.taps?.sentToClient?.(this.clientSocket.writableLength === 0);
    if (!this.targetPaused && this.clientSocket.writableLength > this.opts.highWaterMark) {
      this.targetPaused = true;
      this.target.pause();
      this.clientSocket.once('drain', this.onClientDrain);
    }
  };

  private readonly onClientDrain = (): void => {
    this.targetPaused = false;
    if (!this.finished) this.target.resume();
  };

  private readonly onMessage = (data: Buffer, isBinary: boolean): void => {
    if (!isBinary) {
      this.failure = 'text frame from client';
      this.close(1003, 'Unsupported: text frames are not supported', 'server');
      return;
    }
    this.bytesToTarget += data.length;
    this.lastActivity = Date.now();
    this.opts.taps?.fromClient?.(data);
    if (!this.target.writable) return;
    const complete = this.target.write(data);
    this.opts.taps?.sentToTarget?.(complete);
    if (!this.clientPaused && this.target.writableLength > this.opts.highWaterMark) {
      this.clientPaused = true;
      this.ws.pause();
      this.target.once('drain', this.onTargetDrain);
    }
  };

  private readonly onTargetDrain = (): void => {
    this.clientPaused = false;
    if (!this.finished) this.ws.resume();
  };

  private readonly onPong = (): void => {
    this.missedPongs = 0;
  };

  /** The target finished sending: everything it sent is already queued on the WebSocket. */
  private readonly onTargetEnd = (): void => {
    if (this.closing) return;
    this.closing = true;
    this.initiator = 'target';
    this.ws.close(1000, 'Target closed');
    this.target.end();
  };

  private readonly onTargetError = (err: NodeJS.ErrnoException): void => {
    this.opts.log.debug({ err: err.message, code: err.code }, 'target error');
    if (this.finished) return;
    if (!this.closing) {
      this.closing = true;
      this.initiator = 'target';
      this.failure = `target error: ${err.code ?? err.message}`;
      // 1011: the server hit a condition it could not recover from (RFC 6455 7.4.1).
      this.ws.close(1011, 'Target connection error');
    }
    this.target.destroy();
  };

  private readonly onTargetClose = (): void => {
    // A target that closed without an orderly EOF (destroyed after an error) still ends the session.
    if (!this.closing) this.onTargetEnd();
    if (this.ws.readyState === this.ws.CLOSED) this.finish(this.lastCode, this.lastReason);
  };

  private readonly onWsError = (err: Error & { code?: string }): void => {
    // ws closes the connection itself with the right code (1002, 1007, 1009); just say why.
    this.failure ??= err.message;
    this.opts.log.debug({ err: err.message, code: err.code }, 'client protocol error');
  };

  private lastCode = 1006;
  private lastReason = '';

  private readonly onWsClose = (code: number, reason: Buffer): void => {
    this.lastCode = code;
    this.lastReason = reason.toString();
    if (!this.closing) {
      this.closing = true;
      this.initiator = 'client';
    }
    if (this.target.destroyed) {
      this.finish(code, this.lastReason);
      return;
    }
    // Flush what the client sent (already written) with a FIN, then keep reading and
    // discarding until the target closes: closing a socket with unread data sends a RST,
    // which can destroy data still in flight to the target.
    this.target.end();
    this.target.removeListener('data', this.onTargetData);
    this.target.on('data', discard);
    this.target.resume();
    this.lingerTimer = setTimeout(() => this.target.destroy(), this.opts.lingerMs);
    this.lingerTimer.unref();
    this.finish(code, this.lastReason);
  };

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
