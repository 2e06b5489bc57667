/**
 * Integrity under backpressure: N random bytes each way through a tsockify process at once,
 * with a deliberately slow reader on one side. SHA-256 of what arrives must equal what was
 * sent (nothing lost, duplicated or reordered), and the proxy's resident memory, sampled from
 * /proc/PID/status every 50 ms, must stay bounded: without backpressure the proxy would hold
 * most of the slow direction's bytes.
 *
 * Used by test/soak/backpressure.test.ts (64 MiB) and scripts/soak.ts (1 GiB).
 */
import { createHash, randomFillSync, type Hash } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import WebSocket from 'ws';
import { startCli, type Cli } from './cli.js';
import { rssKiB } from '../faults/leaks.js';

export interface IntegrityOptions {
  /** Bytes each way. */
  bytes: number;
  /** Whose reader is slow. */
  slow: 'client' | 'target';
  /** The slow reader's rate, bytes per second. */
  slowRate: number;
  /** Give up after this long (ms). */
  timeoutMs?: number;
}

export interface IntegrityResult {
  slow: 'client' | 'target';
  bytes: number;
  seconds: number;
  clientToTarget: { sent: string; received: string; bytes: number };
  targetToClient: { sent: string; received: string; bytes: number };
  /** VmRSS of the proxy before the run and its maximum during it, KiB. */
  rssBaselineKiB: number;
  rssMaxKiB: number;
  rssGrowthKiB: number;
  /**
   * The most bytes the fast writer was ever ahead of the slow reader (written to the kernel but
   * not yet read). Without backpressure the writer finishes at once and this nears `bytes`;
   * with it, it is bounded by the proxy's high-water mark plus the kernel socket buffers.
   */
  maxLeadBytes: number;
}

const CHUNK = 64 * 1024;
const WARM_UPS = 3;

/** A source of random chunks that hashes what it hands out. */
class RandomSource {
  readonly hash: Hash = createHash('sha256');
  left: number;
  constructor(total: number) { this.left = total; }
  next(): Buffer | undefined {
    if (this.left <= 0) return undefined;
    const c = randomFillSync(Buffer.allocUnsafe(Math.min(CHUNK, this.left)));
    this.left -= c.length;
    this.hash.update(c);
    return c;
  }
}

/** Pause/resume a reader so that it consumes at most `rate` bytes per second. */
class Throttle {
  private readonly started = Date.now();
  private consumed = 0;
  private paused = false;
  constructor(private readonly rate: number, private readonly pause: () => void, private readonly resume: () => void) {}
  took(n: number): void {
    this.consumed += n;
    const due = (this.consumed / this.rate) * 1000 - (Date.now() - this.started);
    if (due > 5 && !this.paused) {
      this.paused = true;
      this.pause();
      setTimeout(() => { this.paused = false; this.resume(); }, due);
    }
  }
}

export async function runIntegrity(opts: IntegrityOptions, cliArgs: string[] = []): Promise<IntegrityResult> {
  const { bytes, slow, slowRate } = opts;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const received = { client: createHash('sha256'), target: createHash('sha256') };
  const counts = { client: 0, target: 0 };
  const toTarget = new RandomSource(bytes);
  const toClient = new RandomSource(bytes);
  let resolveTarget!: () => void;
  const targetDone = new Promise<void>((r) => { resolveTarget = r; });
  let targetSocket: net.Socket | undefined;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const targetServer = net.createServer({ allowHalfOpen: true }, (s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    if (++connections <= WARM_UPS) {
      s.resume();
      s.on('end', () => s.end());
      return;
    }
    const throttle = slow === 'target' ? new Throttle(slowRate, () => s.pause(), () => s.resume()) : undefined;
    sockets.add(s);
    targetSocket = s;
    s.on('close', () => sockets.delete(s));
    s.on('end', () => s.end());
    s.on('data', (d: Buffer) => {
      received.target.update(d);
      counts.target += d.length;
      throttle?.took(d.length);
      if (counts.target >= bytes) resolveTarget();
    });
    const pump = (): void => {
      for (let c = toClient.next(); c; c = toClient.next()) {
        if (!s.write(c)) { s.once('drain', pump); return; }
      }
    };
    pump();
  });
  targetServer.listen(0, '127.0.0.1');
  await once(targetServer, 'listening');
  const targetPort = (targetServer.address() as net.AddressInfo).port;

  let cli: Cli | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    cli = await startCli(cliArgs, [`127.0.0.1:${targetPort}`]);
    const pid = cli.pid;
    // Warm the proxy up (first session, JIT) before taking the baseline.
    await warmUp(cli.port);
    await new Promise((r) => setTimeout(r, 200));
    const rssBaselineKiB = rssKiB(pid);
    let rssMaxKiB = rssBaselineKiB;
    let maxLeadBytes = 0;
    let wsRef: WebSocket | undefined;
    sampler = setInterval(() => {
      try { rssMaxKiB = Math.max(rssMaxKiB, rssKiB(pid)); } catch { /* exited */ }
      // Bytes on the wire (handed over minus still queued in this process) ahead of the slow reader.
      const lead = slow === 'client'
        ? (bytes - toClient.left) - (targetSocket?.writableLength ?? 0) - counts.client
        : (bytes - toTarget.left) - (wsRef?.bufferedAmount ?? 0) - counts.target;
      maxLeadBytes = Math.max(maxLeadBytes, lead);
    }, 20);

    const started = Date.now();
    const ws = new WebSocket(`ws://127.0.0.1:${cli.port}/`, 'binary', { perMessageDeflate: false });
    wsRef = ws;
    let resolveClient!: () => void;
    const clientDone = new Promise<void>((r) => { resolveClient = r; });
    const throttle = slow === 'client' ? new Throttle(slowRate, () => ws.pause(), () => ws.resume()) : undefined;
    ws.on('message', (d: Buffer) => {
      received.client.update(d);
      counts.client += d.length;
      throttle?.took(d.length);
      if (counts.client >= bytes) resolveClient();
    });
    let closedEarly: string | undefined;
    ws.on('close', (code, reason) => { if (counts.client < bytes || counts.target < bytes) closedEarly = `${code} ${reason.toString()}`; resolveClient(); resolveTarget(); });
    ws.on('error', () => {});
    await once(ws, 'open');
    // Keep at most 4 MiB queued in the client; ws has no 'drain', so poll the buffered amount.
    await new Promise<void>((resolve) => {
      const send = (): void => {
        while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 4 * 1024 * 1024) {
          const c = toTarget.next();
          if (!c) { resolve(); return; }
          ws.send(c);
        }
        if (ws.readyState !== WebSocket.OPEN) { resolve(); return; }
        setTimeout(send, 2);
      };
      send();
    });
    const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    const done = await Promise.race([Promise.all([clientDone, targetDone]), deadline]);
    const seconds = (Date.now() - started) / 1000;
    clearInterval(sampler);
    sampler = undefined;
    if (done === 'timeout') throw new Error(`integrity run did not finish within ${timeoutMs} ms (client got ${counts.client}, target got ${counts.target} of ${bytes})`);
    if (closedEarly) throw new Error(`session closed early: ${closedEarly} (client got ${counts.client}, target got ${counts.target} of ${bytes})`);
    ws.close(1000);
    await once(ws, 'close');
    return {
      slow,
      bytes,
      seconds,
      clientToTarget: { sent: toTarget.hash.digest('hex'), received: received.target.digest('hex'), bytes: counts.target },
      targetToClient: { sent: toClient.hash.digest('hex'), received: received.client.digest('hex'), bytes: counts.client },
      rssBaselineKiB,
      rssMaxKiB,
      rssGrowthKiB: rssMaxKiB - rssBaselineKiB,
      maxLeadBytes,
    };
  } finally {
    if (sampler) clearInterval(sampler);
    await cli?.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => targetServer.close(() => r()));
  }
}

async function warmUp(port: number): Promise<void> {
  for (let i = 0; i < WARM_UPS; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'binary');
    await once(ws, 'open');
    ws.send(Buffer.alloc(256 * 1024));
    ws.close(1000);
    await once(ws, 'close');
  }
}
