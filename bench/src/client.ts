/**
 * The benchmark client, run as its own process so that it never shares an event loop (or a
 * core, when the scheduler allows) with the proxy it measures. The orchestrator sends it one
 * scenario at a time over IPC; every scenario is bounded in time and in count.
 *
 * A connection is either `ws://...` (a `ws` client offering the `binary` subprotocol) or
 * `tcp://host:port` (the raw TCP baseline, straight to the target).
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { ACK, ACK_UNIT, CHUNK, GREETING, MODE_ECHO, MODE_PUSH, MODE_SINK } from './protocol.js';
import { serve } from './ipc.js';

/**
 * A zero mask lets ws send client frames without copying them (ws skips the XOR). The
 * server side does the same unmasking work either way; this only keeps the client cheap,
 * identically for every subject.
 */
const zeroMask = (mask: Buffer): void => { mask.fill(0); };

/** One connection to a subject, the same surface over WebSocket and raw TCP. */
interface Conn {
  /** Called with every chunk (TCP) or message (WebSocket) after the greeting. */
  onData: (d: Buffer) => void;
  send(d: Buffer, cb?: (err?: Error | null) => void): boolean;
  /** Bytes queued in this process, not yet taken by the kernel. */
  buffered(): number;
  /** Resolve when the transport can take more (only meaningful after send returned false). */
  whenWritable(cb: () => void): void;
  /** Orderly close (close handshake / FIN), resolves when the socket is closed. */
  close(): Promise<void>;
  /** Drop at once. */
  destroy(): void;
  closed: boolean;
}

interface OpenTimes {
  /** Request sent (connect started) to greeting received, in ms. */
  toFirstByteMs: number;
}

const now = (): number => performance.now();
/** Client-side queue bounds for WebSocket sends (TCP uses the socket's own 'drain'). */
const WS_HIGH_WATER = 1024 * 1024;
const WS_LOW_WATER = 256 * 1024;

function openConn(url: string, timeoutMs: number): Promise<{ conn: Conn; times: OpenTimes }> {
  const t0 = now();
  return new Promise((resolve, reject) => {
    let settled = false;
    let got = 0;
    const greeting: Buffer[] = [];
    let conn: Conn;
    const timer = setTimeout(() => fail(new Error(`no greeting within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn?.destroy();
      reject(err);
    };
    // Until the greeting is complete, data is collected here; then handed to conn.onData.
    const preData = (d: Buffer): void => {
      if (settled) { conn.onData(d); return; }
      greeting.push(d);
      got += d.length;
      if (got < GREETING.length) return;
      settled = true;
      clearTimeout(timer);
      const all = Buffer.concat(greeting);
      const times = { toFirstByteMs: now() - t0 };
      resolve({ conn, times });
      if (all.length > GREETING.length) conn.onData(all.subarray(GREETING.length));
    };
    if (url.startsWith('tcp://')) {
      const u = new URL(url);
      const socket = net.connect({ host: u.hostname, port: Number(u.port), noDelay: true });
      let closedP: Promise<void> | undefined;
      conn = {
        onData: () => {},
        send: (d, cb) => socket.write(d, cb),
        buffered: () => socket.writableLength,
        whenWritable: (cb) => { socket.once('drain', cb); },
        close: () => {
          closedP ??= new Promise<void>((r) => {
            if (socket.destroyed) { r(); return; }
            socket.once('close', () => r());
            socket.end();
          });
          return closedP;
        },
        destroy: () => { socket.destroy(); },
        closed: false,
      };
      socket.on('data', preData);
      socket.on('error', (err) => fail(err));
      socket.once('close', () => { conn.closed = true; fail(new Error('closed before the greeting')); });
    } else {
      const ws = new WebSocket(url, 'binary', { perMessageDeflate: false, generateMask: zeroMask, handshakeTimeout: timeoutMs, maxPayload: 0 });
      let closedP: Promise<void> | undefined;
      // ws has no 'drain': a send's callback runs once its frame reached the kernel.
      const waiters: Array<() => void> = [];
      const onSent = (): void => {
        if (waiters.length > 0 && ws.bufferedAmount < WS_LOW_WATER) for (const w of waiters.splice(0)) w();
      };
      conn = {
        onData: () => {},
        send: (d, cb) => {
          ws.send(d, cb ? (err) => { cb(err); onSent(); } : onSent);
          return ws.bufferedAmount < WS_HIGH_WATER;
        },
        buffered: () => ws.bufferedAmount,
        whenWritable: (cb) => { waiters.push(cb); onSent(); },
        close: () => {
          closedP ??= new Promise<void>((r) => {
            if (ws.readyState === ws.CLOSED) { r(); return; }
            ws.once('close', () => r());
            ws.close(1000);
          });
          return closedP;
        },
        destroy: () => { ws.terminate(); },
        closed: false,
      };
      ws.on('message', preData);
      ws.on('error', (err) => fail(err));
      ws.once('close', () => { conn.closed = true; fail(new Error('closed before the greeting')); });
    }
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

interface FlowArgs { url: string; warmupMs: number; durationMs: number }

/** Downstream: the target pushes 64 KiB writes; count what arrives in the measured window. */
async function down(a: FlowArgs): Promise<{ bytes: number; seconds: number; totalBytes: number }> {
  const { conn } = await openConn(a.url, 5000);
  let total = 0;
  conn.onData = (d) => { total += d.length; };
  conn.send(Buffer.from([MODE_PUSH]));
  await sleep(a.warmupMs);
  const b0 = total;
  const t0 = now();
  await sleep(a.durationMs);
  const b1 = total;
  const t1 = now();
  conn.destroy();
  return { bytes: b1 - b0, seconds: (t1 - t0) / 1000, totalBytes: total };
}

/**
 * Upstream: 64 KiB messages to the sink, which acknowledges every MiB. Throughput counts
 * acknowledged bytes (delivered, not merely queued); at most 8 MiB are unacknowledged.
 */
async function up(a: FlowArgs): Promise<{ bytes: number; seconds: number; totalBytes: number }> {
  const { conn } = await openConn(a.url, 5000);
  const payload = randomBytes(CHUNK);
  const window = 8 * ACK_UNIT;
  let sent = 0;
  let acked = 0;
  let stopped = false;
  let waiting = false;
  const pump = (): void => {
    waiting = false;
    while (!stopped && !conn.closed && sent - acked < window) {
      sent += payload.length;
      if (!conn.send(payload)) {
        waiting = true;
        conn.whenWritable(pump);
        return;
      }
    }
  };
  conn.onData = (d) => {
    for (let i = 0; i < d.length; i++) if (d[i] === ACK) acked += ACK_UNIT;
    if (!waiting) pump();
  };
  conn.send(Buffer.from([MODE_SINK]));
  pump();
  await sleep(a.warmupMs);
  const b0 = acked;
  const t0 = now();
  await sleep(a.durationMs);
  const b1 = acked;
  const t1 = now();
  stopped = true;
  conn.destroy();
  return { bytes: b1 - b0, seconds: (t1 - t0) / 1000, totalBytes: sent };
}

/** Round trip: 64 bytes out, wait for all 64 back, one at a time. */
async function rtt(a: { url: string; warmupCount: number; durationMs: number; maxCount: number }): Promise<{ count: number; p50us: number; p99us: number; meanus: number }> {
  const { conn } = await openConn(a.url, 5000);
  const msg = randomBytes(64);
  conn.send(Buffer.from([MODE_ECHO]));
  const samples: number[] = [];
  let got = 0;
  let t0 = 0;
  let n = 0;
  const deadline = now() + a.durationMs;
  await new Promise<void>((resolve, reject) => {
    const fire = (): void => {
      got = 0;
      t0 = now();
      conn.send(msg);
    };
    conn.onData = (d) => {
      got += d.length;
      if (got < msg.length) return;
      const t = now();
      if (n++ >= a.warmupCount) samples.push((t - t0) * 1000);
      if (samples.length >= a.maxCount || t >= deadline) { resolve(); return; }
      fire();
    };
    setTimeout(() => reject(new Error('round trip stalled')), a.durationMs + 5000).unref();
    fire();
  });
  conn.destroy();
  samples.sort((x, y) => x - y);
  const mean = samples.reduce((s, v) => s + v, 0) / samples.length;
  return { count: samples.length, p50us: percentile(samples, 50), p99us: percentile(samples, 99), meanus: mean };
}

/**
 * Session setup: open, first byte from the target, orderly close; `parallel` loops at once.
 * Sessions started and finished in the measured window count; latency is request-to-first-
 * byte. A subject too slow to finish `minCompleted` sessions in the window gets more time
 * (up to one session timeout), and the window is stretched to match.
 */
async function setup(a: { url: string; parallel: number; warmupMs: number; durationMs: number; maxCount: number; sessionTimeoutMs: number; minCompleted: number }):
Promise<{ completed: number; failed: number; seconds: number; p50ms: number; p99ms: number; firstError?: string }> {
  const tStart = now();
  const tMeasure = tStart + a.warmupMs;
  const tEnd = tMeasure + a.durationMs;
  const tHardEnd = tEnd + a.sessionTimeoutMs;
  let tStop = tEnd;
  /** The last counted completion: the window's end when the count bound stopped the phase early. */
  let tLast = tMeasure;
  let completed = 0;
  let failed = 0;
  let firstError: string | undefined;
  let started = 0;
  const lat: number[] = [];
  const live = new Set<Conn>();
  const more = (): boolean => {
    const t = now();
    return started < a.maxCount && (t < tEnd || (completed < a.minCompleted && t < tHardEnd));
  };
  const loop = async (): Promise<void> => {
    while (more()) {
      const t0 = now();
      if (t0 >= tMeasure) started++;
      try {
        const { conn, times } = await openConn(a.url, a.sessionTimeoutMs);
        live.add(conn);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          conn.close(),
          new Promise<void>((_, reject) => { timer = setTimeout(() => reject(new Error('close timed out')), a.sessionTimeoutMs); }),
        ]).finally(() => { clearTimeout(timer); live.delete(conn); conn.destroy(); });
        const t1 = now();
        if (t0 >= tMeasure && (t1 <= tEnd || (completed < a.minCompleted && t1 <= tHardEnd))) {
          completed++;
          lat.push(times.toFirstByteMs);
          if (t1 > tStop) tStop = t1;
          if (t1 > tLast) tLast = t1;
        }
      } catch (err) {
        if (t0 >= tMeasure) failed++;
        firstError ??= (err as Error).message;
        // A refused or stalled session must not turn this loop into a busy spin.
        await sleep(5);
      }
    }
  };
  const loops: Promise<void>[] = [];
  for (let i = 0; i < a.parallel; i++) loops.push(loop());
  // Sessions still opening at the end are bounded by sessionTimeoutMs; then dropped.
  await Promise.race([Promise.all(loops), sleep(a.warmupMs + a.durationMs + 2 * a.sessionTimeoutMs + 1000)]);
  for (const c of live) c.destroy();
  lat.sort((x, y) => x - y);
  const end = started >= a.maxCount && tLast < tEnd ? tLast : tStop;
  return {
    completed,
    failed,
    seconds: (end - tMeasure) / 1000,
    p50ms: percentile(lat, 50),
    p99ms: percentile(lat, 99),
    ...(firstError !== undefined ? { firstError } : {}),
  };
}

/** Held sessions between idleOpen and idleClose. */
let held: Conn[] = [];
const PROBE = Buffer.from('idle-ok!');

/** Wait until `conn` has received `n` bytes (after the call), or fail after `ms`. */
function expectBytes(conn: Conn, n: number, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const t = setTimeout(() => reject(new Error('no echo')), ms);
    conn.onData = (d) => {
      got += d.length;
      if (got >= n) { clearTimeout(t); conn.onData = () => {}; resolve(); }
    };
  });
}

/** Open up to `count` sessions that each exchange a few bytes, and keep them. */
async function idleOpen(a: { url: string; count: number; concurrency: number; timeLimitMs: number; sessionTimeoutMs: number }):
Promise<{ held: number; failed: number; seconds: number; firstError?: string }> {
  held = [];
  const t0 = now();
  const deadline = t0 + a.timeLimitMs;
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  let consecutiveFailures = 0;
  const worker = async (): Promise<void> => {
    while (next < a.count && now() < deadline && consecutiveFailures < 200) {
      next++;
      try {
        const left = Math.max(100, Math.min(a.sessionTimeoutMs, deadline - now()));
        const { conn } = await openConn(a.url, left);
        const echoed = expectBytes(conn, PROBE.length + 1, left);
        conn.send(Buffer.concat([Buffer.from([MODE_ECHO]), Buffer.from('!'), PROBE]));
        try {
          await echoed;
        } catch (err) {
          conn.destroy();
          throw err;
        }
        held.push(conn);
        consecutiveFailures = 0;
      } catch (err) {
        failed++;
        consecutiveFailures++;
        firstError ??= (err as Error).message;
        await sleep(10);
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < a.concurrency; i++) workers.push(worker());
  await Promise.all(workers);
  return { held: held.length, failed, seconds: (now() - t0) / 1000, ...(firstError !== undefined ? { firstError } : {}) };
}

/** Every held session sends a few bytes and must get them back. */
async function idleCheck(a: { timeLimitMs: number }): Promise<{ echoing: number; held: number }> {
  let echoing = 0;
  await Promise.all(held.map(async (c) => {
    if (c.closed) return;
    const p = expectBytes(c, PROBE.length, a.timeLimitMs);
    c.send(PROBE);
    try {
      await p;
      echoing++;
    } catch { /* counted as not echoing */ }
  }));
  return { echoing, held: held.length };
}

async function idleClose(a: { timeLimitMs: number }): Promise<{ closed: number }> {
  const n = held.length;
  for (const c of held) c.destroy();
  held = [];
  await sleep(Math.min(a.timeLimitMs, 200));
  return { closed: n };
}

serve({ down, up, rtt, setup, idleOpen, idleCheck, idleClose }, {});
