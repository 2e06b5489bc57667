/**
 * `--syslog host:port|path` and `--legacy-syslog`: a pino destination that turns each JSON
 * log line into one syslog message.
 *
 * What websockify does (websockify/sysloghandler.py, websocketproxy.py) and how we match:
 * - `host:port` (split on the last colon) is UDP, anything else a local socket path.
 *   We also take `[v6]:port`, and a value starting with `/` or `.` is always a path.
 * - Facility LOG_USER (1), or LOG_DAEMON (3) with `--daemon`: the caller passes `facility`.
 * - Severity from the level: debug 7, info 6, warning 4, error 3, critical 2 (pino: trace
 *   and debug 7, info 6, warn 4, error 3, fatal 2).
 * - RFC 5424 header `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`, no MSGID, no
 *   structured data; newlines in the text become spaces; a non-ASCII MSG is UTF-8 with a
 *   BOM (RFC 5424 6.4). websockify's timestamp has whole seconds; ours has milliseconds
 *   (TIME-SECFRAC, same grammar) and is the log record's own time.
 * - Datagrams carry no trailer; on a stream socket each message ends with LF (websockify's
 *   `_tail`, the non-transparent framing of RFC 6587 3.4.2).
 * - `--legacy-syslog`: websockify sends `<PRI>websockify[PID]: MSG`, without the timestamp
 *   and hostname that RFC 3164 4.1.2 puts in the HEADER. We send the full RFC 3164 form
 *   `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG` over UDP (a remote collector needs
 *   them), and `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG` on a local socket, as glibc's
 *   syslog(3) does: local daemons (journald, rsyslog's imuxsock) read the word after the
 *   timestamp as the tag. No BOM in legacy mode: RFC 3164 has none and daemons print it.
 *
 * Unix sockets: websockify tries SOCK_DGRAM, then SOCK_STREAM. Node has no unix datagram
 * sockets (dgram is UDP only), and /dev/log is a datagram socket on every current Linux.
 * We connect a stream socket first (built in); if the kernel answers EPROTOTYPE the socket
 * is a datagram one and we use the optional native package `node-unix-socket` (prebuilt
 * binaries, no compiler) when it is installed. Without it we print one warning saying so
 * and drop syslog messages; the other log destinations keep working.
 *
 * The stream never throws or emits 'error' for network trouble (pino has no error listener
 * on its destination): failures print one warning to stderr per outage, re-armed once a
 * message gets through, and messages are dropped rather than queued without bound.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidOptionError } from '@tsockify/core';

export type SyslogTarget =
  | { kind: 'udp'; host: string; port: number }
  | { kind: 'unix'; path: string };

export type SyslogFacility = 'user' | 'daemon';

export interface SyslogOptions {
  /** RFC 3164 (`--legacy-syslog`) instead of RFC 5424. */
  legacy: boolean;
  /** APP-NAME / TAG. Default `tsockify`. */
  appName?: string;
  /** Default `user`; websockify uses `daemon` when started with `--daemon`. */
  facility?: SyslogFacility;
  /** HOSTNAME field. Default os.hostname(). */
  hostname?: string;
  /** PROCID field. Default process.pid. */
  pid?: number;
  /** Where the one-time delivery warnings go. Default: a line on stderr. */
  onWarning?: (message: string) => void;
  /**
   * Creates a unix datagram socket, or returns null when none can be had. Default: the
   * optional `node-unix-socket` package if installed. A seam for tests.
   */
  unixDatagram?: () => Promise<UnixDatagramSocket | null>;
}

/** The part of node-unix-socket's DgramSocket we use. */
export interface UnixDatagramSocket {
  sendTo(buf: Buffer, offset: number, length: number, destPath: string, cb?: (err: Error | undefined) => void): void;
  close(): void;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

const FACILITY: Record<SyslogFacility, number> = { user: 1, daemon: 3 };
/** Largest datagram we send: under the 65507-byte UDP payload limit of IPv4. */
const MAX_DATAGRAM = 65_000;
/** Bytes allowed to wait in user space for a stream socket or a pending connection. */
const MAX_QUEUED = 1024 * 1024;
/** A JSON line longer than this without a newline is sent as it stands. */
const MAX_LINE = 1024 * 1024;
const RETRY_MS = 1000;
/** How long closing waits for a connection or DNS lookup in progress, to deliver what is queued. */
const SETTLE_MS = 1000;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** pino's own fields: they become the header (name: the logger's, APP-NAME is ours) instead of the message. */
const HEADER_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

/**
 * Parse a `--syslog` value. Throws InvalidOptionError for a bad port, at startup.
 */
export function parseSyslogSpec(spec: string): SyslogTarget {
  if (spec === '') throw new InvalidOptionError('invalid --syslog "": expected host:port (UDP) or a socket path such as /dev/log');
  const colon = spec.lastIndexOf(':');
  if (spec.startsWith('/') || spec.startsWith('.') || colon < 0) return { kind: 'unix', path: path.resolve(spec) };
  let host = spec.slice(0, colon);
  const portText = spec.slice(colon + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new InvalidOptionError(`invalid --syslog "${spec}": "${portText}" is not a port (1-65535); expected host:port or a socket path`);
  }
  if (host === '') throw new InvalidOptionError(`invalid --syslog "${spec}": missing host; expected host:port or a socket path`);
  return { kind: 'udp', host, port };
}

/** Syslog severity (RFC 5424 6.2.1) for a pino level number. */
export function severityOf(level: number): number {
  if (level >= 60) return 2; // fatal → critical
  if (level >= 50) return 3; // error
  if (level >= 40) return 4; // warn → warning
  if (level >= 30) return 6; // info
  return 7; // debug, trace
}

export interface FormatOptions {
  legacy: boolean;
  facility: SyslogFacility;
  appName: string;
  hostname: string;
  pid: number;
  /** RFC 3164 only: put HOSTNAME in the header (remote) or leave it to the daemon (local). */
  withHostname: boolean;
}

/** Keep PRINTUSASCII (RFC 5424 6), at most `max` characters, `-` when nothing is left. */
function headerField(value: string, max: number): string {
  const s = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return s === '' ? '-' : s;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** RFC 3164 4.1.2 TIMESTAMP, local time: `Mmm dd hh:mm:ss` with a space-padded day. */
function bsdTimestamp(d: Date): string {
  const day = d.getDate();
  return `${MONTHS[d.getMonth()]} ${day < 10 ? ` ${day}` : day} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

function recordTime(time: unknown): Date {
  if (typeof time === 'number' || typeof time === 'string') {
    const d = new Date(time);
    if (!Number.isNaN(d.getTime())) return d;
  }
  return new Date();
}

/**
 * One syslog message (no framing) for one pino JSON line; null for a blank line. A line
 * that is not JSON is sent as the message text at severity info.
 */
export function formatSyslogLine(line: string, opts: FormatOptions): Buffer | null {
  if (line.trim() === '') return null;
  let rec: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) rec = parsed as Record<string, unknown>;
  } catch {
    // not JSON: sent as it is
  }
  let text: string;
  let level = 30;
  let time: unknown;
  if (rec) {
    if (typeof rec.level === 'number') level = rec.level;
    time = rec.time;
    const extra: Record<string, unknown> = {};
    let hasExtra = false;
    for (const key of Object.keys(rec)) {
      if (!HEADER_KEYS.has(key)) {
        extra[key] = rec[key];
        hasExtra = true;
      }
    }
    const msg = typeof rec.msg === 'string' ? rec.msg : rec.msg === undefined ? '' : JSON.stringify(rec.msg);
    const json = hasExtra ? JSON.stringify(extra) : '';
    text = msg && json ? `${msg} ${json}` : msg || json;
  } else {
    text = line;
  }
  text = text.replace(/\r?\n/g, ' ');

  const pri = FACILITY[opts.facility] * 8 + severityOf(level);
  const date = recordTime(time);
  let head: string;
  if (opts.legacy) {
    const tag = opts.appName.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 32) || 'tsockify';
    // RFC 3164 4.1.2: the host name without its domain (an address stays whole).
    const short = net.isIP(opts.hostname) ? opts.hostname : (opts.hostname.split('.')[0] ?? '');
    const host = opts.withHostname ? ` ${headerField(short, 255)}` : '';
    head = `<${pri}>${bsdTimestamp(date)}${host} ${tag}[${opts.pid}]: `;
  } else {
    head = `<${pri}>1 ${date.toISOString()} ${headerField(opts.hostname, 255)} ${headerField(opts.appName, 48)} ${headerField(String(opts.pid), 128)} - - `;
  }
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return Buffer.from(head + text, 'latin1');
  const body = Buffer.from(text, 'utf8');
  return opts.legacy ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.concat([Buffer.from(head, 'latin1'), BOM, body]);
}

/** Cut a datagram to `max` bytes without splitting a UTF-8 sequence. */
function truncateDatagram(msg: Buffer, max = MAX_DATAGRAM): Buffer {
  if (msg.length <= max) return msg;
  let end = max;
  while (end > 0 && (msg[end]! & 0xc0) === 0x80) end--;
  return msg.subarray(0, end);
}

/** Warn once per outage: silent until `ok()` says a message got through again. */
class Warner {
  private armed = true;
  constructor(private readonly label: string, private readonly sink: (message: string) => void) {}
  warn(reason: string): void {
    if (!this.armed) return;
    this.armed = false;
    this.sink(`tsockify: syslog ${this.label}: ${reason}; syslog messages are dropped until it works again`);
  }
  ok(): void {
    this.armed = true;
  }
}

interface Transport {
  send(msg: Buffer): void;
  close(): Promise<void>;
}

/** UDP, unconnected like Python's sendto, so an ICMP port-unreachable does not fail later sends. */
class UdpTransport implements Transport {
  private socket: dgram.Socket | undefined;
  private address: string | undefined;
  private resolving = false;
  private retryAt = 0;
  private queue: Buffer[] = [];
  private queued = 0;
  private inflight = 0;
  private closed = false;
  private onIdle: (() => void) | undefined;

  constructor(private readonly host: string, private readonly port: number, private readonly warner: Warner) {
    if (net.isIP(host)) this.open(host, net.isIP(host) === 6 ? 'udp6' : 'udp4');
    else this.resolve();
  }

  private open(address: string, type: 'udp4' | 'udp6'): void {
    const socket = dgram.createSocket(type);
    socket.on('error', (err) => this.warner.warn(err.message));
    socket.unref();
    this.socket = socket;
    this.address = address;
  }

  /** Settles when the lookup in progress has finished (and the queue has been sent). */
  private settling: Promise<void> | undefined;

  private resolve(): void {
    this.resolving = true;
    let settle!: () => void;
    this.settling = new Promise((r) => { settle = r; });
    dns.lookup(this.host, (err, address, family) => {
      this.resolving = false;
      settle();
      if (this.closed) return;
      if (err) {
        this.warner.warn(`cannot resolve ${this.host}: ${err.code ?? err.message}`);
        this.retryAt = Date.now() + RETRY_MS;
        this.queue = [];
        this.queued = 0;
        return;
      }
      this.open(address, family === 6 ? 'udp6' : 'udp4');
      const queue = this.queue;
      this.queue = [];
      this.queued = 0;
      for (const m of queue) this.send(m);
    });
  }

  send(msg: Buffer): void {
    if (this.closed) return;
    const data = truncateDatagram(msg);
    if (!this.socket) {
      if (!this.resolving && Date.now() >= this.retryAt) this.resolve();
      if (this.resolving && this.queued + data.length <= MAX_QUEUED) {
        this.queue.push(data);
        this.queued += data.length;
      }
      return;
    }
    this.inflight++;
    this.socket.send(data, this.port, this.address, (err) => {
      this.inflight--;
      if (err) this.warner.warn(err.message);
      else this.warner.ok();
      if (this.inflight === 0) this.onIdle?.();
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private closing: Promise<void> | undefined;

  private async shutdown(): Promise<void> {
    if (this.resolving) await Promise.race([this.settling, sleep(SETTLE_MS, undefined, { ref: false })]);
    this.closed = true;
    const socket = this.socket;
    if (!socket) return;
    return new Promise((resolve) => {
      const done = (): void => {
        socket.close(() => resolve());
      };
      if (this.inflight === 0) done();
      else this.onIdle = done;
    });
  }
}

/** The optional native package for unix datagram sockets, if it is installed. */
async function loadNodeUnixSocket(): Promise<UnixDatagramSocket | null> {
  const name = 'node-unix-socket';
  try {
    const mod = (await import(name)) as { DgramSocket?: new () => UnixDatagramSocket; default?: { DgramSocket?: new () => UnixDatagramSocket } };
    const Ctor = mod.DgramSocket ?? mod.default?.DgramSocket;
    return Ctor ? new Ctor() : null;
  } catch {
    return null;
  }
}

/**
 * A local socket: a stream connection (LF-framed), or a datagram socket when the path is
 * one and node-unix-socket is available. Reconnects on the next message after a failure.
 */
class UnixTransport implements Transport {
  private state: 'idle' | 'connecting' | 'stream' | 'dgram' = 'idle';
  private socket: net.Socket | undefined;
  private dgram: UnixDatagramSocket | undefined;
  private queue: Buffer[] = [];
  private queued = 0;
  private retryAt = 0;
  private inflight = 0;
  private closed = false;
  private onIdle: (() => void) | undefined;

  constructor(
    private readonly path: string,
    private readonly warner: Warner,
    private readonly loadDatagram: () => Promise<UnixDatagramSocket | null>,
  ) {
    this.connect();
  }

  /** Settles when the connection attempt in progress has succeeded or failed. */
  private settling: Promise<void> | undefined;
  private settle: () => void = () => {};

  private connect(): void {
    this.state = 'connecting';
    this.settling = new Promise((r) => { this.settle = r; });
    const socket = net.createConnection({ path: this.path });
    socket.unref();
    this.socket = socket;
    let connected = false;
    let datagram = false;
    socket.on('connect', () => {
      connected = true;
      this.state = 'stream';
      this.warner.ok();
      this.flushQueue();
      this.settle();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // connect(2) on a SOCK_DGRAM socket from a SOCK_STREAM one fails with EPROTOTYPE.
      if (!connected && err.code === 'EPROTOTYPE') {
        datagram = true;
        void this.useDatagram();
        return;
      }
      this.warner.warn(`${this.path}: ${err.code ?? err.message}`);
    });
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      if (datagram || this.closed) return;
      this.state = 'idle';
      this.retryAt = Date.now() + (connected ? 0 : RETRY_MS);
      this.dropQueue();
      this.settle();
    });
  }

  private async useDatagram(): Promise<void> {
    let sock: UnixDatagramSocket | null;
    try {
      sock = await this.loadDatagram();
    } catch {
      sock = null;
    }
    if (this.closed) {
      sock?.close();
    } else if (!sock) {
      this.warner.warn(
        `${this.path} is a unix datagram socket, which Node.js cannot write without a native module: ` +
          'install the optional package node-unix-socket, or use --syslog host:port (UDP) or a stream socket',
      );
      this.state = 'idle';
      this.retryAt = Date.now() + 60_000;
      this.dropQueue();
    } else {
      sock.on('error', (err) => this.warner.warn(`${this.path}: ${err.message}`));
      this.dgram = sock;
      this.state = 'dgram';
      this.flushQueue();
    }
    this.settle();
  }

  private dropQueue(): void {
    this.queue = [];
    this.queued = 0;
  }

  private flushQueue(): void {
    const queue = this.queue;
    this.dropQueue();
    for (const m of queue) this.send(m);
  }

  send(msg: Buffer): void {
    if (this.closed) return;
    switch (this.state) {
      case 'stream': {
        const socket = this.socket!;
        if (socket.writableLength > MAX_QUEUED) {
          this.warner.warn(`${this.path}: the syslog daemon is not reading`);
          return;
        }
        socket.write(Buffer.concat([msg, Buffer.from('\n')]));
        return;
      }
      case 'dgram': {
        const data = truncateDatagram(msg);
        this.inflight++;
        this.dgram!.sendTo(data, 0, data.length, this.path, (err) => {
          this.inflight--;
          if (err) this.warner.warn(`${this.path}: ${err.message}`);
          else this.warner.ok();
          if (this.inflight === 0) this.onIdle?.();
        });
        return;
      }
      case 'idle':
      case 'connecting':
        if (this.state === 'idle') {
          if (Date.now() < this.retryAt) return;
          this.connect();
        }
        if (this.queued + msg.length <= MAX_QUEUED) {
          this.queue.push(msg);
          this.queued += msg.length;
        }
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private closing: Promise<void> | undefined;

  private async shutdown(): Promise<void> {
    if (this.state === 'connecting') await Promise.race([this.settling, sleep(SETTLE_MS, undefined, { ref: false })]);
    this.closed = true;
    const socket = this.socket;
    const dg = this.dgram;
    const waits: Array<Promise<void>> = [];
    if (socket && this.state === 'stream') {
      // Wait until our bytes are handed to the kernel, not for the daemon to hang up.
      waits.push(new Promise((resolve) => {
        socket.once('close', () => resolve());
        socket.end(() => socket.destroy());
      }));
    } else {
      socket?.destroy();
    }
    if (dg) {
      waits.push(new Promise((resolve) => {
        const done = (): void => {
          dg.close();
          resolve();
        };
        if (this.inflight === 0) done();
        else this.onIdle = done;
      }));
    }
    await Promise.all(waits);
  }
}

/**
 * A Writable for pino (`pino(opts, stream)` or a multistream entry) that sends each JSON
 * line as one syslog message to `spec` (`host:port` UDP, or a unix socket path). Throws
 * InvalidOptionError for a malformed spec; never throws or emits 'error' for delivery
 * problems. End it at shutdown so that the sockets close.
 */
export function createSyslogStream(spec: string, opts: SyslogOptions): Writable {
  const target = parseSyslogSpec(spec);
  const format: FormatOptions = {
    legacy: opts.legacy,
    facility: opts.facility ?? 'user',
    appName: opts.appName ?? 'tsockify',
    hostname: opts.hostname ?? os.hostname(),
    pid: opts.pid ?? process.pid,
    withHostname: target.kind === 'udp',
  };
  const warner = new Warner(spec, opts.onWarning ?? ((m) => process.stderr.write(`${m}\n`)));
  const transport: Transport =
    target.kind === 'udp'
      ? new UdpTransport(target.host, target.port, warner)
      : new UnixTransport(target.path, warner, opts.unixDatagram ?? loadNodeUnixSocket);

  const decoder = new StringDecoder('utf8');
  let carry = '';
  const emitLine = (line: string): void => {
    const msg = formatSyslogLine(line, format);
    if (msg) transport.send(msg);
  };
  const take = (text: string): void => {
    carry += text;
    let start = 0;
    let nl: number;
    while ((nl = carry.indexOf('\n', start)) >= 0) {
      emitLine(carry.slice(start, nl));
      start = nl + 1;
    }
    carry = carry.slice(start);
    if (carry.length > MAX_LINE) {
      emitLine(carry);
      carry = '';
    }
  };

  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      take(typeof chunk === 'string' ? chunk : decoder.write(chunk));
      callback();
    },
    final(callback) {
      take(decoder.end());
      if (carry !== '') emitLine(carry);
      carry = '';
      transport.close().then(() => callback(), () => callback());
    },
    destroy(err, callback) {
      void transport.close();
      callback(err);
    },
  });
}
