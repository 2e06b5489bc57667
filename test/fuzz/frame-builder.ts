/**
 * A small WebSocket frame builder and a raw client for the fuzzers: it writes exactly the
 * bytes asked for (bad opcodes, reserved bits, lengths that lie, unmasked frames, truncated
 * frames) where a conforming client library would refuse, and reads what the server answers
 * as frames, down to the close code.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface FrameSpec {
  /** Default true. */
  fin?: boolean;
  /** RSV1..RSV3 as a 3-bit number (RSV1 = 4). Default 0. */
  rsv?: number;
  opcode: number;
  payload?: Buffer | string;
  /** Clients must mask (RFC 6455 5.3). Default true. */
  mask?: boolean;
  /** Fixed masking key (4 bytes); random by default. */
  maskKey?: Buffer;
  /**
   * The length written in the header instead of the payload's real length. A bigint is
   * written as the 64-bit form (so 2n ** 63n is a "negative" length with the top bit set).
   */
  declaredLength?: number | bigint;
  /** Force the 16- or 64-bit length form even for short payloads (non-minimal encoding). */
  lengthForm?: 7 | 16 | 64;
}

/** Encode one frame exactly as specified, lies included. */
export function buildFrame(spec: FrameSpec): Buffer {
  const data = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  const fin = spec.fin ?? true;
  const mask = spec.mask ?? true;
  const declared = spec.declaredLength ?? data.length;
  const big = typeof declared === 'bigint';
  const n = big ? declared : BigInt(declared);
  const form = spec.lengthForm ?? (big || n > 0xffffn ? 64 : n > 125n ? 16 : 7);
  let head: Buffer;
  if (form === 7) {
    head = Buffer.from([0, Number(n & 0x7fn)]);
  } else if (form === 16) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(Number(n & 0xffffn), 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt.asUintN(64, n), 2);
  }
  head[0] = (fin ? 0x80 : 0) | (((spec.rsv ?? 0) & 7) << 4) | (spec.opcode & 0x0f);
  if (!mask) return Buffer.concat([head, data]);
  head[1] = head[1]! | 0x80;
  const key = spec.maskKey ?? randomBytes(4);
  const body = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) body[i] = data[i]! ^ key[i & 3]!;
  return Buffer.concat([head, key, body]);
}

/** A close frame's payload: the code, then the reason bytes as given (may be invalid UTF-8). */
export function closePayload(code: number, reason: Buffer | string = Buffer.alloc(0)): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : reason;
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Incremental decoder for server → client frames (unmasked). */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): ServerFrame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: ServerFrame[] = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      let len = b[1]! & 0x7f;
      let pos = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        pos = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        pos = 10;
      }
      const masked = (b[1]! & 0x80) !== 0;
      const keyPos = pos;
      if (masked) pos += 4;
      if (b.length < pos + len) break;
      const payload = Buffer.from(b.subarray(pos, pos + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] = payload[i]! ^ b[keyPos + (i & 3)]!;
      out.push({ fin: (b[0]! & 0x80) !== 0, opcode: b[0]! & 0x0f, payload });
      this.buf = b.subarray(pos + len);
    }
    return out;
  }
}

export interface RawSession {
  socket: net.Socket;
  /** The status line and headers of the answer. */
  status: number;
  headers: string;
  /** Frames the server sent so far (after the handshake). */
  frames: ServerFrame[];
  /** Resolves when the server's close frame arrives or the TCP connection ends, whichever first. */
  closed: Promise<{ code: number | null; reason: Buffer; tcpEnded: boolean }>;
  send(bytes: Buffer): void;
  destroy(): void;
}

export interface HandshakeOptions {
  path?: string;
  /** Extra header lines, `Name: value`. */
  headers?: string[];
  /** Bytes sent before the request (garbage before the upgrade). */
  prefix?: Buffer;
  host?: string;
  timeoutMs?: number;
  /** Answer pings with pongs (default true); false plays a frozen client for heartbeat tests. */
  answerPings?: boolean;
}

/** The request head of a valid client handshake. */
export function handshakeRequest(opts: HandshakeOptions = {}): string {
  const key = randomBytes(16).toString('base64');
  return [
    `GET ${opts.path ?? '/'} HTTP/1.1`,
    `Host: ${opts.host ?? '127.0.0.1'}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Protocol: binary',
    ...(opts.headers ?? []),
    '',
    '',
  ].join('\r\n');
}

/**
 * Connect, send a handshake and wait for the answer head. For a 101 the session reads frames
 * until the server's close frame; pings are answered with pongs so a heartbeat does not end
 * the session. For any other status, `closed` resolves when the server ends the connection.
 */
export function rawSession(port: number, opts: HandshakeOptions = {}): Promise<RawSession> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no handshake answer within ${opts.timeoutMs ?? 5000} ms`));
    }, opts.timeoutMs ?? 5000);
    let head = Buffer.alloc(0);
    let session: RawSession | undefined;
    const reader = new FrameReader();
    let resolveClosed!: (v: { code: number | null; reason: Buffer; tcpEnded: boolean }) => void;
    const closed = new Promise<{ code: number | null; reason: Buffer; tcpEnded: boolean }>((r) => { resolveClosed = r; });
    let closedOnce = false;
    const finishClose = (v: { code: number | null; reason: Buffer; tcpEnded: boolean }): void => {
      if (closedOnce) return;
      closedOnce = true;
      resolveClosed(v);
    };
    const onFrames = (data: Buffer): void => {
      for (const f of reader.push(data)) {
        session!.frames.push(f);
        if (f.opcode === OP.ping && opts.answerPings !== false && !socket.destroyed) socket.write(buildFrame({ opcode: OP.pong, payload: f.payload }));
        if (f.opcode === OP.close) {
          finishClose({ code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null, reason: f.payload.subarray(2), tcpEnded: false });
        }
      }
    };
    socket.on('error', () => { /* a reset is an answer too: `closed` resolves on 'close' */ });
    socket.on('close', () => {
      clearTimeout(timer);
      finishClose({ code: null, reason: Buffer.alloc(0), tcpEnded: true });
      if (!session) reject(new Error(`connection closed before a complete answer: ${JSON.stringify(head.toString('latin1'))}`));
    });
    socket.on('data', (chunk: Buffer) => {
      if (session) { onFrames(chunk); return; }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      const text = head.subarray(0, end).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      session = {
        socket,
        status: m ? Number(m[1]) : 0,
        headers: text,
        frames: [],
        closed,
        send: (bytes) => { if (!socket.destroyed) socket.write(bytes); },
        destroy: () => socket.destroy(),
      };
      resolve(session);
      const rest = head.subarray(end + 4);
      if (rest.length > 0) onFrames(rest);
    });
    socket.once('connect', () => {
      if (opts.prefix) socket.write(opts.prefix);
      socket.write(handshakeRequest(opts));
    });
  });
}

/** Send raw bytes, collect everything the server sends until it closes (or the timeout), and return it. */
export function rawExchange(port: number, bytes: Buffer | string, timeoutMs = 5000): Promise<{ data: Buffer; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => { socket.destroy(); resolve({ data: Buffer.concat(chunks), closedByServer: false }); }, timeoutMs);
    socket.on('error', () => {});
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => { clearTimeout(timer); resolve({ data: Buffer.concat(chunks), closedByServer: true }); });
    socket.once('connect', () => socket.write(bytes));
  });
}

/** The status code of the first HTTP status line in `data`, or null. */
export function statusOf(data: Buffer): number | null {
  const m = /^HTTP\/1\.[01] (\d{3}) /.exec(data.subarray(0, 64).toString('latin1'));
  return m ? Number(m[1]) : null;
}
