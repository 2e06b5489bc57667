/**
 * A hand-rolled HTTP/WebSocket client over a plain TCP socket, for what a conforming client
 * library will not do: send malformed handshakes, unmasked frames, several frames in one
 * write, or look at a reply that is not an HTTP response at all (a bare TCP close).
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

export const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface HttpHead {
  status: number;
  reason: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
}

export interface RawReply {
  /** Null when the server closed the connection without sending a complete HTTP head. */
  head: HttpHead | null;
  /** Bytes received after the head (or everything, when there is no head). */
  rest: Buffer;
  /** Every byte received before the head was complete (or the socket ended). */
  raw: Buffer;
  /** True when the server ended the TCP connection (possibly right after the head). */
  ended: boolean;
  socket: net.Socket;
}

export interface Frame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Encode one frame; clients must mask (RFC 6455 5.3), so `mask` defaults to true. */
export function encodeFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0),
  { mask = true, fin = true }: { mask?: boolean; fin?: boolean } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const len = data.length;
  let head: Buffer;
  if (len < 126) {
    head = Buffer.from([0, len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (!mask) return Buffer.concat([head, data]);
  head[1] = (head[1] ?? 0) | 0x80;
  const key = randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = (data[i] ?? 0) ^ (key[i & 3] ?? 0);
  return Buffer.concat([head, key, body]);
}

export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

export function parseClose(payload: Buffer): { code: number | null; reason: string } {
  if (payload.length < 2) return { code: null, reason: '' };
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') };
}

/** Pops complete frames off the front of `buf`; returns the frames and what is left. */
export function decodeFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off] ?? 0;
    const b1 = buf[off + 1] ?? 0;
    let len = b1 & 0x7f;
    let pos = off + 2;
    if (len === 126) {
      if (buf.length - pos < 2) break;
      len = buf.readUInt16BE(pos);
      pos += 2;
    } else if (len === 127) {
      if (buf.length - pos < 8) break;
      len = Number(buf.readBigUInt64BE(pos));
      pos += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let key: Buffer | null = null;
    if (masked) {
      if (buf.length - pos < 4) break;
      key = buf.subarray(pos, pos + 4);
      pos += 4;
    }
    if (buf.length - pos < len) break;
    let payload = Buffer.from(buf.subarray(pos, pos + len));
    if (key) for (let i = 0; i < len; i++) payload[i] = (payload[i] ?? 0) ^ (key[i & 3] ?? 0);
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked, payload });
    off = pos + len;
  }
  return { frames, rest: buf.subarray(off) };
}

/**
 * Send `request` (a full HTTP request head, CRLF line ends) and read until the response head
 * is complete or the server ends the connection. Never throws for a reset: a reset with no
 * reply looks the same as a bare close (head null, ended true).
 */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 5000): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`no HTTP reply from 127.0.0.1:${port} within ${timeoutMs} ms; got ${JSON.stringify(buf.toString('latin1'))}`)), timeoutMs);
    const finish = (err: Error | null, ended = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      // Hold further bytes until a RawWebSocket takes over the socket.
      socket.pause();
      if (err) { socket.destroy(); reject(err); return; }
      const idx = buf.indexOf('\r\n\r\n');
      if (idx < 0) {
        resolve({ head: null, rest: buf, raw: buf, ended: true, socket });
        return;
      }
      const lines = buf.subarray(0, idx).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
      if (!m) { socket.destroy(); reject(new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`)); return; }
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const c = line.indexOf(':');
        if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
      }
      resolve({
        head: { status: Number(m[1]), reason: m[2] ?? '', headers },
        rest: buf.subarray(idx + 4),
        raw: buf,
        ended,
        socket,
      });
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.includes('\r\n\r\n')) finish(null);
    };
    const onEnd = () => finish(null, true);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.on('error', () => { /* ECONNRESET after a bare close: reported as ended */ });
    socket.write(request);
  });
}

export interface HandshakeOptions {
  path?: string;
  /** Extra or replacement headers; a null value removes a default header. */
  headers?: Record<string, string | null>;
  /** Shorthand for the Sec-WebSocket-Protocol header. */
  protocol?: string;
  method?: string;
}

/** Build an RFC 6455 client handshake; returns the request text and the key it used. */
export function handshakeRequest(port: number, opts: HandshakeOptions = {}): { request: string; key: string } {
  const key = randomBytes(16).toString('base64');
  const headers: Record<string, string | null> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
  };
  if (opts.protocol !== undefined) headers['Sec-WebSocket-Protocol'] = opts.protocol;
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    const existing = Object.keys(headers).find((h) => h.toLowerCase() === k.toLowerCase());
    if (existing) delete headers[existing];
    headers[k] = v;
  }
  let request = `${opts.method ?? 'GET'} ${opts.path ?? '/'} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) if (v !== null) request += `${k}: ${v}\r\n`;
  request += '\r\n';
  return { request, key };
}

export function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** A WebSocket connection over a raw socket, after a 101. */
export class RawWebSocket {
  readonly socket: net.Socket;
  private buf: Buffer;
  private readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  ended = false;

  constructor(socket: net.Socket, leftover: Buffer = Buffer.alloc(0), alreadyEnded = false) {
    this.socket = socket;
    this.ended = alreadyEnded;
    this.buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => this.push(d));
    const onEnd = () => { this.ended = true; this.wake(); };
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', () => { /* a reset ends the stream; tests look at `ended` */ });
    if (leftover.length) this.push(leftover);
    socket.resume();
  }

  private push(d: Buffer) {
    this.buf = Buffer.concat([this.buf, d]);
    const { frames, rest } = decodeFrames(this.buf);
    this.buf = Buffer.from(rest);
    this.frames.push(...frames);
    if (frames.length) this.wake();
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Write bytes as they are (one or more pre-encoded frames in a single write). */
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(opcode: number, payload: Buffer | string = Buffer.alloc(0), opts: { mask?: boolean; fin?: boolean } = {}): void {
    this.socket.write(encodeFrame(opcode, payload, opts));
  }

  /** The next frame from the server; rejects on timeout or when the connection ends first. */
  nextFrame(timeoutMs = 5000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== check); reject(new Error(`no frame within ${timeoutMs} ms`)); }, timeoutMs);
      const check = () => {
        const f = this.frames.shift();
        if (f) { clearTimeout(timer); resolve(f); return; }
        if (this.ended) { clearTimeout(timer); reject(new Error('connection ended before the next frame')); return; }
        this.waiters.push(check);
      };
      check();
    });
  }

  /** Read frames until a close frame; returns data frames before it and the close. */
  async readUntilClose(timeoutMs = 5000): Promise<{ frames: Frame[]; code: number | null; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    const frames: Frame[] = [];
    for (;;) {
      const f = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode === OP.close) return { frames, ...parseClose(f.payload) };
      frames.push(f);
    }
  }

  /** Resolves once the server has ended the TCP connection (or after timeoutMs with false). */
  waitEnded(timeoutMs = 5000): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== check); resolve(false); }, timeoutMs);
      const check = () => {
        if (this.ended) { clearTimeout(timer); resolve(true); return; }
        this.frames.length = 0;
        this.waiters.push(check);
      };
      check();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Handshake over a raw socket; `ws` is set only for a 101. */
export async function rawConnect(port: number, opts: HandshakeOptions = {}, timeoutMs = 5000):
  Promise<{ reply: RawReply; key: string; ws: RawWebSocket | null }> {
  const { request, key } = handshakeRequest(port, opts);
  const reply = await rawRequest(port, request, timeoutMs);
  const ws = reply.head?.status === 101 ? new RawWebSocket(reply.socket, reply.rest, reply.ended) : null;
  if (!ws && !reply.ended) reply.socket.destroy();
  return { reply, key, ws };
}
