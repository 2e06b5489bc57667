import { EventEmitter } from 'node:events';
import cluster from 'node:cluster';
import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { lookup } from 'node:dns/promises';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from './logger.js';
import type { TsockifyOptions, ResolvedOptions } from './options.js';
import type { Target } from './plugins.js';
import { resolveOptions } from './options.js';
import { formatTarget } from './plugins.js';
import { LimitError, ListenError, MethodNotAllowedError, errorCode, toHttpStatus } from './errors.js';
import { authorise, buildContext, publicReason, rejectUpgrade, validateHandshake } from './upgrade.js';
import { dialTarget, type AbortLike } from './target.js';
import { dialChecked } from './allow-list.js';
import { exchangeRequestToken } from './cookie.js';
import { exchangeCookie, failureFields, tokenFields } from './exchange.js';
import { DEFAULT_HIGH_WATER_MARK, Session, TARGET_READS, type SessionCloseInfo, type SessionInfo, type SessionTaps } from './relay.js';
import { createWebHandler } from './web.js';
import { openTaps } from './taps.js';

/** A handshake that was refused before the upgrade. */
export interface RejectInfo {
  remoteAddress: string;
  path: string;
  status: number;
  /** The short reason sent to the client (never holds the token). */
  reason: string;
  /** The error code, e.g. `TSOCK_ERR_TOKEN_INVALID`. */
  code: string;
}

export interface ServerEventMap {
  /** The server is accepting connections on these addresses. */
  listening: [addresses: string[]];
  /** A session was established (after the 101). */
  session: [info: SessionInfo];
  /** A session ended; fired exactly once per `session`. */
  sessionClose: [info: SessionCloseInfo];
  /** A handshake was refused with an HTTP status. */
  reject: [info: RejectInfo];
  /** A failure not tied to one request (listen errors, plugin close errors). */
  error: [err: Error];
  /** The server stopped: no listener and no live session left. */
  close: [];
}

/** How long a closing target gets to drain after the client left. */
const LINGER_MS = 5000;

/**
 * A tsockify relay. Either `listen()` on its own sockets, or hand it upgrades from your own
 * HTTP server with `attach(server)` / `handleUpgrade(req, socket, head)`.
 */
export class TsockifyServer extends EventEmitter<ServerEventMap> {
  readonly options: ResolvedOptions;
  private readonly log: Logger;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<Session>();
  private readonly netServers: net.Server[] = [];
  /** Every accepted socket, so that close() can also drop idle keep-alive HTTP connections. */
  private readonly accepted = new Set<net.Socket>();
  private readonly httpServer: http.Server;
  private readonly httpsServer: https.Server | undefined;
  private readonly web: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private idleSweep: NodeJS.Timeout | undefined;
  /** Sessions and upgrades in progress per client address, for maxConnectionsPerClient. */
  private readonly perClient = new Map<string, number>();
  /** The id the next session gets (options.sessionIds). */
  private nextSessionId: number;
  private pending = 0;
  private closed = false;

  constructor(options: TsockifyOptions) {
    super();
    this.options = resolveOptions(options);
    this.log = this.options.logger;
    this.nextSessionId = this.options.sessionIds.first;
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.options.maxMessageSize,
      // The subprotocol was already chosen in validateHandshake.
      handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
    });
    this.web = this.options.web ? createWebHandler(this.options.web, this.log) : undefined;
    const serverOpts: http.ServerOptions = {
      headersTimeout: this.options.headersTimeoutMs,
      requestTimeout: this.options.headersTimeoutMs * 3,
      // Check header timeouts every second, not Node's default 30 s, so slowloris is cut promptly.
      connectionsCheckingInterval: 1000,
      maxHeaderSize: 16 * 1024,
    };
    this.httpServer = http.createServer(serverOpts);
    this.wire(this.httpServer);
    if (this.options.tls) {
      const t = this.options.tls;
      this.httpsServer = https.createServer({
        ...serverOpts,
        cert: t.cert,
        key: t.key ?? t.cert,
        ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}),
        ...(t.ca !== undefined ? { ca: t.ca } : {}),
        ...(t.minVersion !== undefined ? { minVersion: t.minVersion } : {}),
        ...(t.ciphers !== undefined ? { ciphers: t.ciphers } : {}),
        // A TLS handshake is part of the request preamble: same bound as the headers (slowloris).
        handshakeTimeout: this.options.headersTimeoutMs,
        requestCert: t.verifyClient ?? false,
        rejectUnauthorized: t.verifyClient ?? false,
      });
      this.wire(this.httpsServer);
      // The TLS handshake has its own bound (handshakeTimeout); the headers get a fresh one.
      this.httpsServer.on('secureConnection', (tlsSocket) => this.expectRequest(tlsSocket));
      this.httpsServer.on('tlsClientError', (err, socket) => {
        this.log.debug({ err: err.message, remoteAddress: socket.remoteAddress }, 'TLS handshake failed');
        // With a listener attached, node leaves the failed socket open: close it ourselves.
        socket.destroy();
      });
    }
    if (this.options.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => this.beat(), Math.max(25, this.options.heartbeatMs / 4));
      this.heartbeat.unref();
    }
    const idle = this.options.sessionIdleTimeoutMs;
    if (idle > 0) {
      // One sweep for all sessions instead of a timer per session (lean per-session state).
      this.idleSweep = setInterval(() => this.sweepIdle(), Math.max(50, Math.min(1000, idle / 4)));
      this.idleSweep.unref();
    }
  }

  /** Live sessions. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Upgrades still being authorised or dialled. */
  get pendingCount(): number {
    return this.pending;
  }

  /** Listening addresses: `0.0.0.0:6080`, `[::]:6080`, `unix:/path`. */
  addresses(): string[] {
    return this.netServers.map((l) => {
      const a = l.address();
      if (a === null) return '';
      if (typeof a === 'string') return `unix:${a}`;
      return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    });
  }

  /** The TCP port of the first listener (handy with port 0). */
  get port(): number {
    const a = this.netServers[0]?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** Start listening as `options.listen` says. Rejects with a ListenError naming the address. */
  async listen(): Promise<string[]> {
    const l = this.options.listen;
    const server = net.createServer({ pauseOnConnect: false, noDelay: true }, (socket) => this.onConnection(socket));
    (server as WithOwner)[kOwner] = this;
    const describe = l.unixPath !== undefined ? `unix socket ${l.unixPath}` : l.fd !== undefined ? `fd ${l.fd}` : `${l.host ?? '*'}:${l.port ?? 0}`;
    try {
      if (l.fd !== undefined) {
        // net.Server accepts a handle object with an fd (documented; missing from the types).
        await listenOn(server, { fd: l.fd } as net.ListenOptions);
      } else if (l.unixPath !== undefined) {
        removeStaleSocket(l.unixPath);
        await listenOn(server, { path: l.unixPath });
        fs.chmodSync(l.unixPath, l.unixMode ?? 0o600);
      } else if (l.host === undefined) {
        // Dual stack where the kernel has IPv6; websockify binds 0.0.0.0 only.
        try {
          await listenOn(server, { port: l.port ?? 0, host: '::', ipv6Only: false });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAFNOSUPPORT' && (err as NodeJS.ErrnoException).code !== 'EADDRNOTAVAIL') throw err;
          await listenOn(server, { port: l.port ?? 0, host: '0.0.0.0' });
        }
      } else {
        let host = l.host;
        if (l.preferIpv6 && net.isIP(host) === 0) {
          // websockify -6: a name that has an IPv6 address listens on it.
          host = await lookup(host, { family: 6 }).then((a) => a.address, () => host);
        }
        await listenOn(server, { port: l.port ?? 0, host, ...(net.isIPv6(host) ? { ipv6Only: false } : {}) });
      }
    } catch (err) {
      // Already worded for this address (removeStaleSocket): do not say it twice.
      if (err instanceof ListenError) throw err;
      const e = err as NodeJS.ErrnoException;
      const hint = e.code === 'EADDRINUSE' ? ': address in use (stop the other process or pick another port)'
        : e.code === 'EACCES' ? ': permission denied (ports below 1024 need privileges)'
        : `: ${e.message}`;
      throw new ListenError(`cannot listen on ${describe}${hint}`, { cause: err });
    }
    server.on('error', (err) => this.emit('error', err));
    this.netServers.push(server);
    const addresses = this.addresses();
    this.emit('listening', addresses);
    return addresses;
  }

  /** Route upgrades and (for `--web`) requests of an existing HTTP(S) server through tsockify. */
  attach(server: http.Server | https.Server, opts: { web?: boolean } = {}): this {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head));
    if (opts.web) server.on('request', (req, res) => this.handleRequest(req, res));
    return this;
  }

  /** Accept or refuse one WebSocket upgrade. Never throws; every failure becomes a status. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', onSocketError);
    // Every expected failure is answered inside upgrade(); anything else must not become an
    // unhandled rejection that ends the process (a bad cookie once did): drop the connection.
    this.upgrade(req, socket, head).catch((err: unknown) => {
      this.log.error({ err: String(err) }, 'upgrade failed unexpectedly');
      socket.destroy();
    });
  }

  /** Plain HTTP: static files with `--web`, otherwise 405 (the websockify contract). */
  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? '';
    if (req.headers.upgrade !== undefined) {
      this.sendPlain(res, 400, 'WebSocket upgrade requests need "Connection: Upgrade"');
      return;
    }
    const exchange = this.options.cookieExchange;
    if (exchange && method === 'GET' && (req.url ?? '/').split('?')[0] === exchange.path) {
      const found = exchangeRequestToken(req.url ?? '/');
      if (found) {
        void exchangeCookie(req, res, found.token, found.location, this.options, this.log, (st, body) => this.sendPlain(res, st, body));
        return;
      }
    }
    if (!this.web || (method !== 'GET' && method !== 'HEAD')) {
      if (this.web) res.setHeader('Allow', 'GET, HEAD');
      this.sendPlain(res, 405, new MethodNotAllowedError(method).message);
      return;
    }
    if (this.options.web?.auth && this.options.authPlugin) {
      const ctx = buildContext(req, this.options, this.log);
      Promise.resolve()
        .then(() => this.options.authPlugin!.authenticate(ctx))
        .then(
          () => this.web!(req, res),
          (err: unknown) => {
            const status = toHttpStatus(err);
            const headers = errorCode(err) === 'TSOCK_ERR_AUTH' ? ((err as { headers?: Record<string, string> }).headers ?? {}) : {};
            for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
            this.sendPlain(res, status, '');
          },
        );
      return;
    }
    this.web(req, res);
  }

  /** Stop accepting new connections; live sessions go on. */
  async stopAccepting(): Promise<void> {
    // net.Server#close stops accepting at once; its callback waits for every connection to
    // end, which for live sessions is not what "stop accepting" means.
    for (const l of this.netServers) l.close();
    this.netServers.length = 0;
  }

  /** Stop accepting, close every session with 1001 "Server shutting down", close the plugins. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearInterval(this.idleSweep);
    await this.stopAccepting();
    const ended = [...this.sessions].map((s) => new Promise<void>((resolve) => {
      s.ws.once('close', () => resolve());
      s.close(1001, 'Server shutting down');
      setTimeout(() => { s.terminate('shutdown timeout'); resolve(); }, 3000).unref();
    }));
    await Promise.all(ended);
    // closeAllConnections() only knows sockets of servers that listen() themselves; ours are
    // handed over by emit('connection'), so drop what is left (idle keep-alive, half-sent requests).
    for (const socket of this.accepted) socket.destroy();
    this.accepted.clear();
    for (const p of [this.options.tokenPlugin, this.options.authPlugin]) {
      try {
        await p?.close?.();
      } catch (err) {
        this.emit('error', err as Error);
      }
    }
    this.emit('close');
  }

  private wire(server: http.Server): void {
    // Node points an accepted socket's `server` at the HTTP(S) server it is handed to.
    (server as WithOwner)[kOwner] = this;
    server.maxHeadersCount = 100;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.requestArrived(socket);
      this.handleUpgrade(req, socket, head);
    });
    server.on('request', (req, res) => {
      this.requestArrived(req.socket);
      if (this.log.isLevelEnabled?.('debug')) {
        // websockify -v: one access line per request. The query is left out: it may hold a token.
        res.once('finish', () => {
          const url = req.url ?? '/';
          const q = url.indexOf('?');
          this.log.debug({
            remoteAddress: req.socket.remoteAddress, method: req.method, path: q >= 0 ? url.slice(0, q) : url, status: res.statusCode,
          }, 'request');
        });
      }
      this.handleRequest(req, res);
    });
    // CONNECT is not for us; without a listener node would drop the socket without a word.
    server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      this.requestArrived(socket);
      socket.on('error', onSocketError);
      this.log.debug({ method: req.method }, 'CONNECT refused');
      socket.end('HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      this.log.debug({ err: err.message, code: err.code }, 'malformed HTTP request');
      if (!socket.writable) { socket.destroy(); return; }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
  }

  /**
   * `this` is an accepted socket: one shared listener instead of a closure per connection. Its
   * `server` (set by Node: our net.Server, then the HTTP(S) server it is handed to) leads back
   * to us, so the socket carries nothing extra.
   */
  private static forgetAccepted(this: net.Socket): void {
    const owner = (this as net.Socket & { server?: WithOwner }).server?.[kOwner];
    owner?.accepted.delete(this);
  }

  /** Tell plain from TLS by the first byte (0x16 handshake, 0x80 SSLv2 hello), as websockify does. */
  private onConnection(socket: net.Socket): void {
    socket.on('error', onSocketError);
    this.accepted.add(socket);
    socket.once('close', TsockifyServer.forgetAccepted);
    if (!this.httpsServer) {
      this.expectRequest(socket);
      this.httpServer.emit('connection', socket);
      return;
    }
    const timer = setTimeout(() => socket.destroy(), this.options.headersTimeoutMs);
    socket.once('close', () => clearTimeout(timer));
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      const first = chunk[0];
      if (first === 0x16 || first === 0x80) {
        // The TLS layer picks up unshifted bytes itself on its next tick (lib/_tls_wrap.js initRead).
        socket.pause();
        socket.unshift(chunk);
        this.httpsServer!.emit('connection', socket);
      } else if (this.options.tls?.sslOnly) {
        this.log.debug({ remoteAddress: socket.remoteAddress }, 'plain connection refused (--ssl-only)');
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 38\r\n\r\nTLS required: connect with https/wss.\n');
      } else {
        // The HTTP parser reads the socket's handle directly (parser.consume), so bytes put
        // back with unshift would never reach it; hand it the first chunk as a 'data' event.
        this.expectRequest(socket);
        this.httpServer.emit('connection', socket);
        socket.emit('data', chunk);
      }
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const log = this.log;
    const ctx = buildContext(req, this.options, log);
    const gone = new ClientGone();
    const onGone = (): void => gone.abort();
    socket.once('close', onGone);
    const client = ctx.remoteAddress;
    this.pending++;
    this.reserve(client);
    let established = false;
    let target: Target | undefined;
    let taps: SessionTaps | undefined;
    let sessionId: number | undefined;
    let targetSocket: net.Socket | undefined;
    try {
      this.checkLimits(client);
      validateHandshake(req);
      const decided = await authorise(ctx, this.options);
      target = decided.target;
      if (gone.aborted) return;
      const dial = {
        timeoutMs: this.options.connectTimeoutMs, tls: this.options.targetTls, signal: gone, onread: TARGET_READS,
      };
      const policy = this.options.targetPolicy;
      // With a policy, dial the very addresses that were checked (no second DNS answer).
      targetSocket = policy
        ? await dialChecked(target, await policy.check(target, this.options.connectTimeoutMs, gone), dial)
        : await dialTarget(target, dial);
      if (this.options.record !== undefined || this.options.traffic !== undefined) {
        // Number the session now: concurrent upgrades must not share a record file.
        sessionId = this.takeSessionId();
        taps = await openTaps(this.options, sessionId, log);
      }
    } catch (err) {
      targetSocket?.destroy();
      const status = rejectUpgrade(socket, err);
      const code = errorCode(err) ?? 'TSOCK_ERR_INTERNAL';
      const info: RejectInfo = { remoteAddress: ctx.remoteAddress, path: ctx.path, status, reason: publicReason(err), code };
      const level = status >= 500 ? 'warn' : 'info';
      log[level]({ ...info, ...tokenFields(ctx.token, ctx.tokenSource), ...(target ? { target: formatTarget(target) } : {}), ...failureFields(err, status) }, 'handshake refused');
      this.emit('reject', info);
      return;
    } finally {
      this.pending--;
      socket.removeListener('close', onGone);
      if (!established && (gone.aborted || !socket.writable || !targetSocket || targetSocket.destroyed)) this.release(client);
      else established = true;
    }
    if (!established || !targetSocket) {
      targetSocket?.destroy();
      taps?.close?.();
      return;
    }
    // If ws refuses the handshake after all, it destroys the socket without calling back:
    // release what this request holds then.
    const dialled = targetSocket;
    const onEarlyClose = (): void => {
      dialled.destroy();
      taps?.close?.();
      this.release(client);
    };
    socket.once('close', onEarlyClose);
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      socket.removeListener('close', onEarlyClose);
      this.startSession(ws, socket, dialled, target!, ctx.path, taps, ctx.remoteAddress, ctx.remotePort, sessionId);
    });
  }

  /**
   * Start the headers clock: a client that has not sent a whole request by then is dropped.
   * Node checks headersTimeout only for servers that called listen() themselves; ours get
   * sockets by emit('connection'), so the slowloris bound is kept here.
   */
  private expectRequest(socket: Duplex): void {
    const timer = setTimeout(() => {
      this.log.debug({ remoteAddress: (socket as net.Socket).remoteAddress }, 'request headers not received in time');
      socket.destroy();
    }, this.options.headersTimeoutMs);
    timer.unref();
    (socket as WithHeadersTimer)[kHeadersTimer] = timer;
    socket.once('close', clearHeadersTimer);
  }

  /** The request is here: drop the timer and its listener so a long session holds neither. */
  private requestArrived(socket: Duplex): void {
    if ((socket as WithHeadersTimer)[kHeadersTimer] === undefined) return;
    clearHeadersTimer.call(socket);
    socket.removeListener('close', clearHeadersTimer);
  }

  /** Refuse before any work when a limit is reached. The caller has already reserved a slot. */
  private checkLimits(client: string): void {
    const { maxConnections, maxConnectionsPerClient } = this.options;
    // This request is already counted in `pending`, hence `>` rather than `>=`.
    if (maxConnections > 0 && this.sessions.size + this.pending > maxConnections) {
      throw new LimitError(`too many connections (limit ${maxConnections})`, false);
    }
    if (maxConnectionsPerClient > 0 && (this.perClient.get(client) ?? 0) > maxConnectionsPerClient) {
      throw new LimitError(`too many connections from this address (limit ${maxConnectionsPerClient})`, true);
    }
  }

  private reserve(client: string): void {
    if (this.options.maxConnectionsPerClient > 0) this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
  }

  private release(client: string): void {
    if (this.options.maxConnectionsPerClient <= 0) return;
    const n = (this.perClient.get(client) ?? 1) - 1;
    if (n <= 0) this.perClient.delete(client);
    else this.perClient.set(client, n);
  }

  private sweepIdle(): void {
    const cutoff = Date.now() - this.options.sessionIdleTimeoutMs;
    for (const s of this.sessions) {
      if (s.lastActivity < cutoff) s.close(1000, 'Idle timeout');
    }
  }

  private takeSessionId(): number {
    const id = this.nextSessionId;
    this.nextSessionId += this.options.sessionIds.step;
    return id;
  }

  private startSession(
    ws: WebSocket, socket: Duplex, targetSocket: net.Socket, target: Target, path: string,
    taps: SessionTaps | undefined, remoteAddress: string, remotePort: number, sessionId: number | undefined,
  ): void {
    const id = sessionId ?? this.takeSessionId();
    const info: SessionInfo = {
      id,
      remoteAddress,
      remotePort,
      target: formatTarget(target),
      path,
      protocol: ws.protocol,
      ...(target.meta ? { meta: target.meta } : {}),
      startedAt: Date.now(),
    };
    const session = new Session(info, ws, socket, targetSocket, {
      highWaterMark: DEFAULT_HIGH_WATER_MARK,
      lingerMs: LINGER_MS,
      log: this.log,
      taps,
      onClose: (closeInfo) => {
        this.sessions.delete(session);
        this.release(remoteAddress);
        this.emit('sessionClose', closeInfo);
      },
    });
    this.sessions.add(session);
    if (target.expiresAt !== undefined) session.expireAt(target.expiresAt);
    this.emit('session', info);
  }

  /** Ping every session; a peer that missed two pings in a row is gone (websockify never notices). */
  private beat(): void {
    const now = Date.now();
    const every = this.options.heartbeatMs;
    for (const s of this.sessions) {
      // Each session is pinged every `every` ms from its own start, like websockify's
      // per-session timer, without a timer per session: the sweep runs four times as often.
      if (s.nextPingAt === 0) s.nextPingAt = s.info.startedAt + every;
      if (now < s.nextPingAt) continue;
      s.nextPingAt = now + every;
      if (s.missedPongs >= 2) {
        this.log.info({ session: s.info.id }, 'no pong for two heartbeats: closing dead session');
        s.terminate('dead peer: no pong');
        continue;
      }
      s.missedPongs++;
      s.ws.ping();
    }
  }

  private sendPlain(res: ServerResponse, status: number, body: string): void {
    const text = body ? `${body}\n` : '';
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }
}

/**
 * Set when the client leaves while its upgrade waits (plugins, DNS, dial), so the dial stops.
 * It does for the dial what an AbortController would, at a fraction of the cost per upgrade
 * (Node's AbortSignal is an EventTarget: about 2 % of session setup in a profile).
 */
class ClientGone implements AbortLike {
  aborted = false;
  private listener: (() => void) | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    this.listener = listener;
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listener === listener) this.listener = undefined;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listener = this.listener;
    this.listener = undefined;
    listener?.();
  }
}

const kOwner = Symbol('tsockify.server');
type WithOwner = { [kOwner]?: TsockifyServer };

const kHeadersTimer = Symbol('tsockify.headersTimer');
type WithHeadersTimer = Duplex & { [kHeadersTimer]?: NodeJS.Timeout };

/** Shared by every connection (no closure per socket): stop the socket's headers timer. */
function clearHeadersTimer(this: Duplex): void {
  const s = this as WithHeadersTimer;
  clearTimeout(s[kHeadersTimer]);
  s[kHeadersTimer] = undefined;
}

/** Errors on client sockets are reported through the session or request that owns them. */
function onSocketError(this: Duplex): void {
  this.destroy();
}

function listenOn(server: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(opts, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}

/**
 * Clear the way to listen on a unix socket: a socket file left at `path` (by a process that
 * died) is removed; anything else there is a ListenError. Also used by the CLI's `--workers`
 * primary, which must do it before its workers listen.
 */
export function removeStaleSocket(path: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new ListenError(`cannot listen on unix socket ${path}: a file that is not a socket is in the way`);
  // In a cluster worker the primary binds the path once for every worker (node's cluster
  // shares listeners by address): the socket found here may be the one another worker's
  // listen() just created, and unlinking it would leave the listener unreachable. The
  // primary removes a stale socket before it forks.
  if (cluster.isWorker) return;
  fs.unlinkSync(path);
}

/** Create a relay server. Options are validated now: bad config throws an InvalidOptionError. */
export function createServer(options: TsockifyOptions): TsockifyServer {
  return new TsockifyServer(options);
}
