/** Pieces the CLI process tests share: a started tsockify, a ws round trip, log parsing. */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { freePort, waitForPort } from '../helpers/net.js';
import { startTsockify, type Proc } from '../helpers/proc.js';
import type { SpawnOptions } from 'node:child_process';

export interface Running {
  proc: Proc;
  port: number;
  url(pathAndQuery?: string): string;
}

const started = new Set<Proc>();
after(async () => {
  // A failed test must not leave a tsockify behind: stop only the PIDs started here.
  await Promise.all([...started].map((p) => p.stop(1000)));
});

/** Track a process so that it is stopped after the suite at the latest. */
export function track(p: Proc): Proc {
  started.add(p);
  void p.exited.then(() => started.delete(p));
  return p;
}

/**
 * Start `tsockify 127.0.0.1:<free port> ...args` (JSON logs: stderr is a pipe) and wait until
 * its startup line is out.
 */
export async function startListening(args: string[], opts: SpawnOptions = {}): Promise<Running> {
  const port = await freePort();
  const proc = track(startTsockify([`127.0.0.1:${port}`, ...args], { env: { ...process.env, NO_COLOR: '1' }, ...opts }));
  await proc.waitForOutput(/tsockify: listening on/);
  return { proc, port, url: (p = '/websockify') => `ws://127.0.0.1:${port}${p}` };
}

/** Open a ws client; rejects with the HTTP status when the handshake is refused. */
export function openWs(url: string, opts: { protocols?: string[]; ca?: Buffer } = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? ['binary'], { handshakeTimeout: 5000, ...(opts.ca ? { ca: opts.ca } : {}) });
    ws.once('open', () => { ws.removeAllListeners('error'); ws.on('error', () => { /* reported through close */ }); resolve(ws); });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      reject(new Error(`HTTP ${res.statusCode}`));
      ws.terminate();
    });
  });
}

/** Send one message, wait for its echo, close normally; resolves with the echo. */
export async function echoRoundTrip(ws: WebSocket, payload: string): Promise<string> {
  const echoed = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no echo within 3 s')), 3000);
    ws.once('message', (d: Buffer) => { clearTimeout(t); resolve(d.toString()); });
    ws.send(Buffer.from(payload));
  });
  return echoed;
}

export function closeWs(ws: WebSocket, code = 1000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    ws.once('close', (c: number, r: Buffer) => resolve({ code: c, reason: r.toString() }));
    if (ws.readyState === WebSocket.OPEN) ws.close(code);
  });
}

export function waitClose(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (c: number, r: Buffer) => resolve({ code: c, reason: r.toString() })));
}

/** The JSON log lines in a process's stderr (other lines are skipped). */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try { out.push(JSON.parse(line) as Record<string, unknown>); } catch { /* a partial line */ }
  }
  return out;
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tsockify-cli-${prefix}-`));
}

/** A listening TCP socket on 127.0.0.1 whose fd can be handed to a child (inetd, systemd). */
export async function listeningFd(): Promise<{ server: net.Server; fd: number; port: number }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  return { server, fd, port: (server.address() as net.AddressInfo).port };
}

export async function until(cond: () => boolean, what: () => string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export { freePort, waitForPort };
