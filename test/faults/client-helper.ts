/**
 * A WebSocket client for the fault tests that keeps what it received and how it was closed.
 */
import { createHash } from 'node:crypto';
import WebSocket from 'ws';

export interface TestClient {
  ws: WebSocket;
  /** Bytes received so far. */
  received(): number;
  /** SHA-256 (hex) of everything received so far. */
  digest(): string;
  /** The first `n` bytes received. */
  head(n: number): Buffer;
  /** Resolves with the close code and reason, and when it came. */
  closed: Promise<{ code: number; reason: string; at: number }>;
}

export async function openClient(url: string, opts: WebSocket.ClientOptions = {}): Promise<TestClient> {
  const ws = new WebSocket(url, 'binary', opts);
  const chunks: Buffer[] = [];
  let bytes = 0;
  ws.on('message', (d: Buffer) => { chunks.push(d); bytes += d.length; });
  ws.on('error', () => { /* the close code tells */ });
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() }));
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, res) => reject(new Error(`refused with ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return {
    ws,
    received: () => bytes,
    digest: () => createHash('sha256').update(Buffer.concat(chunks)).digest('hex'),
    head: (n) => Buffer.concat(chunks).subarray(0, n),
    closed,
  };
}

/** Resolve when `cond()` holds, or fail with `what` after timeoutMs. */
export async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<number> {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - started;
}
