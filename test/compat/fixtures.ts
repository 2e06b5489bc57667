/** Shared pieces of the differential suite: a programmable VNC stand-in and ws client helpers. */
import type net from 'node:net';
import { WebSocket } from 'ws';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';

export type Behaviour = (s: net.Socket) => void;

export const echo: Behaviour = (s) => s.pipe(s);

/** A TCP target whose behaviour for the next connections is set by the test. */
export interface ProgrammableTarget extends TcpTargetServer {
  behave(b: Behaviour): void;
}

export async function programmableTarget(initial: Behaviour = echo): Promise<ProgrammableTarget> {
  let current = initial;
  const t = await startTcpTarget((s) => current(s));
  return Object.assign(t, { behave: (b: Behaviour) => { current = b; } });
}

/** Everything a socket sends until it ends (EOF); rejects on timeout with what arrived. */
export function readToEnd(s: net.Socket, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`no EOF within ${timeoutMs} ms (${Buffer.concat(chunks).length} bytes arrived)`)), timeoutMs);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)); });
    s.once('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)); });
  });
}

/** Resolves once `n` bytes have arrived on the socket (which must not have other readers). */
export function readBytes(s: net.Socket, n: number, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const timer = setTimeout(() => { s.off('data', onData); reject(new Error(`only ${have} of ${n} bytes within ${timeoutMs} ms`)); }, timeoutMs);
    const onData = (d: Buffer) => {
      chunks.push(d);
      have += d.length;
      if (have >= n) { clearTimeout(timer); s.off('data', onData); resolve(Buffer.concat(chunks)); }
    };
    s.on('data', onData);
  });
}

/** Open a ws client; rejects with the HTTP status for a refused handshake. */
export function openWs(url: string, protocols?: string | string[], timeoutMs = 5000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { handshakeTimeout: timeoutMs });
    const fail = (e: Error) => { ws.removeAllListeners('open'); reject(e); };
    ws.once('open', () => { ws.off('error', fail); ws.on('error', () => { /* reported through close */ }); resolve(ws); });
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      fail(new Error(`handshake refused: HTTP ${res.statusCode}`));
      ws.terminate();
    });
  });
}

export interface Received {
  messages: Array<{ data: Buffer; binary: boolean }>;
  code: number;
  reason: string;
}

/** Collect messages until the connection closes. */
export function collectUntilClose(ws: WebSocket, timeoutMs = 5000): Promise<Received> {
  return new Promise((resolve, reject) => {
    const messages: Received['messages'] = [];
    const timer = setTimeout(() => reject(new Error(`no close within ${timeoutMs} ms (${messages.length} messages)`)), timeoutMs);
    ws.on('message', (data: Buffer, binary: boolean) => messages.push({ data, binary }));
    ws.once('close', (code: number, reason: Buffer) => {
      clearTimeout(timer);
      resolve({ messages, code, reason: reason.toString() });
    });
  });
}

/** Resolves with the close code and reason (of the server's close frame). */
export function waitClose(ws: WebSocket, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  return collectUntilClose(ws, timeoutMs).then(({ code, reason }) => ({ code, reason }));
}

/** All 256 byte values, `times` times over. */
export function allBytes(times = 1): Buffer {
  const b = Buffer.alloc(256 * times);
  for (let i = 0; i < b.length; i++) b[i] = i & 0xff;
  return b;
}

/** Deterministic pseudo-random bytes (so a failure shows the same data on a rerun). */
export function patternBytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Poll `cond` every few ms; rejects with `what` after timeoutMs. */
export async function waitFor(cond: () => boolean, what: () => string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
