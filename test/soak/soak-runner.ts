/**
 * The soak: many connect/relay/close cycles, then many concurrent sessions, against the
 * tsockify command, with its file descriptors and resident memory read from /proc before,
 * during and after. The echo target runs in its own process so that each process holds at most
 * one socket per session. Bounded in count and in time.
 *
 * Used by test/soak/soak-short.test.ts (small numbers) and scripts/soak.ts (100,000 cycles,
 * 10,000 concurrent sessions).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import WebSocket from 'ws';
import { startCli, type Cli } from './cli.js';
import { fdCount, rssKiB } from '../faults/leaks.js';
import { connectInspector, inspectorUrl, type Inspector } from './inspector.js';

export interface SoakOptions {
  cycles: number;
  /** Parallel workers for the cycles. */
  cycleConcurrency: number;
  concurrent: number;
  /** How many times to open, check and close the concurrent sessions. Default 1. */
  concurrentRounds?: number;
  /** Stop a phase that runs longer than this (ms); the report says so. */
  phaseTimeoutMs: number;
  /**
   * Also read the proxy's heap after a forced GC, through the V8 inspector on a random
   * loopback port (see inspector.ts). Default true.
   */
  heap?: boolean;
  /** Progress lines (the script prints them; the test keeps quiet). */
  progress?: (line: string) => void;
}

export interface Snapshot {
  fds: number;
  rssKiB: number;
  /** V8 heap in use after a forced full GC (with `heap`), KiB. */
  heapUsedKiB?: number;
  /** Buffers and other external memory after that GC, KiB. */
  externalKiB?: number;
}

export interface SoakReport {
  baseline: Snapshot;
  cycles: {
    requested: number;
    done: number;
    failed: number;
    seconds: number;
    perSecond: number;
    /** Taken when half of the cycles were done: growth after it points at a leak. */
    midway: Snapshot | undefined;
    after: Snapshot;
    firstErrors: string[];
  };
  concurrent: {
    requested: number;
    /** What the proxy's RLIMIT_NOFILE allows (2 fds per session plus its own). */
    fdLimit: number;
    opened: number;
    refused: number;
    refusals: Record<string, number>;
    relayedAfterOpen: number;
    peak: Snapshot;
    seconds: number;
    after: Snapshot;
    /** Peak RSS above baseline, per open session, bytes. */
    bytesPerSession: number;
    /** Every round: RSS after a later round no higher than after the first means no per-session leak. */
    rounds: Array<{ opened: number; relayed: number; peak: Snapshot; after: Snapshot }>;
  };
  /** The proxy was alive at the end. */
  alive: boolean;
  proxyErrors: string[];
}

const TARGET_SOURCE = `
const net = require('node:net');
const s = net.createServer((c) => { c.on('error', () => {}); c.pipe(c); });
s.maxConnections = 1e6;
s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

/** An echo server in its own node process; resolves with its port. */
async function startTargetProcess(): Promise<{ port: number; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', TARGET_SOURCE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`echo target exited with ${code}`)));
  });
  return {
    port,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function snapshot(pid: number): Snapshot {
  return { fds: fdCount(pid), rssKiB: rssKiB(pid) };
}

/** fds and RSS, plus the heap after a forced full GC when an inspector is attached. */
async function measure(pid: number, inspector: Inspector | undefined): Promise<Snapshot> {
  const heap = inspector ? await inspector.readHeap() : undefined;
  return { ...snapshot(pid), ...(heap ? { heapUsedKiB: heap.heapUsedKiB, externalKiB: heap.externalKiB } : {}) };
}

const mib = (kib: number | undefined): string => (kib === undefined ? '?' : (kib / 1024).toFixed(1));
export function describeSnapshot(s: Snapshot): string {
  return `${s.fds} fds, RSS ${mib(s.rssKiB)} MiB${s.heapUsedKiB !== undefined ? `, heap ${mib(s.heapUsedKiB)} MiB + external ${mib(s.externalKiB)} MiB after GC` : ''}`;
}

/** The soft RLIMIT_NOFILE of a process. */
function fdLimitOf(pid: number): number {
  const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return m ? Number(m[1]) : Infinity;
}

/** Source addresses spread over 127.0.0.0/8, so client ports and TIME_WAIT entries are not all on one address. */
const SOURCES = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 1}`);

/** One connect, echo, close cycle. Rejects with a short reason. */
function cycle(port: number, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const payload = randomBytes(32);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'binary', { localAddress: SOURCES[n % SOURCES.length], perMessageDeflate: false });
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('cycle timeout')); }, 10_000);
    ws.once('open', () => ws.send(payload));
    ws.once('message', (d: Buffer) => {
      if (!d.equals(payload)) { clearTimeout(timer); ws.terminate(); reject(new Error('echo mismatch')); return; }
      ws.close(1000);
    });
    ws.once('close', (code) => {
      clearTimeout(timer);
      if (code === 1000) resolve();
      else reject(new Error(`close ${code}`));
    });
    ws.once('unexpected-response', (_q, res) => { clearTimeout(timer); res.resume(); ws.terminate(); reject(new Error(`status ${res.statusCode}`)); });
    ws.on('error', (err) => { clearTimeout(timer); reject(new Error((err as NodeJS.ErrnoException).code ?? err.message)); });
  });
}

async function settle(pid: number, baselineFds: number, inspector: Inspector | undefined, timeoutMs = 15_000): Promise<Snapshot> {
  const deadline = Date.now() + timeoutMs;
  while (fdCount(pid) > baselineFds && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // Give the allocator a moment after the last close before reading RSS.
  await new Promise((r) => setTimeout(r, 500));
  return measure(pid, inspector);
}

interface RoundResult {
  opened: number;
  refused: number;
  refusals: Record<string, number>;
  relayed: number;
  peak: Snapshot;
  seconds: number;
  after: Snapshot;
}

/** Open `opts.concurrent` sessions in batches of 250, check each relays, hold them all, close them all. */
async function concurrentRound(cli: Cli, opts: SoakOptions, baselineFds: number, inspector: Inspector | undefined, say: (l: string) => void): Promise<RoundResult> {
  const pid = cli.pid;
  const started = Date.now();
  const open: WebSocket[] = [];
  const refusals: Record<string, number> = {};
  let refused = 0;
  const openOne = (n: number): Promise<void> => new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${cli.port}/`, 'binary', { localAddress: SOURCES[n % SOURCES.length], perMessageDeflate: false });
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      refused++;
      refusals[why] = (refusals[why] ?? 0) + 1;
      ws.terminate();
      resolve();
    };
    const timer = setTimeout(() => fail('timeout'), 15_000);
    ws.once('open', () => { clearTimeout(timer); settled = true; open.push(ws); resolve(); });
    ws.once('unexpected-response', (_q, res) => { clearTimeout(timer); res.resume(); fail(`status ${res.statusCode}`); });
    ws.on('error', (err) => { clearTimeout(timer); fail((err as NodeJS.ErrnoException).code ?? err.message); });
  });
  for (let i = 0; i < opts.concurrent && Date.now() - started < opts.phaseTimeoutMs; i += 250) {
    await Promise.all(Array.from({ length: Math.min(250, opts.concurrent - i) }, (_, j) => openOne(i + j)));
    if ((i / 250) % 8 === 7) say(`  concurrent: ${open.length} open, ${refused} refused, ${fdCount(pid)} fds, RSS ${(rssKiB(pid) / 1024).toFixed(1)} MiB`);
  }
  // Every open session still relays, all at once.
  let relayed = 0;
  await Promise.all(open.map((ws) => new Promise<void>((resolve) => {
    const payload = randomBytes(16);
    const timer = setTimeout(resolve, 30_000);
    ws.once('message', (d: Buffer) => { if (d.equals(payload)) relayed++; clearTimeout(timer); resolve(); });
    ws.send(payload);
  })));
  const peak = await measure(pid, inspector);
  await Promise.all(open.map((ws) => new Promise<void>((resolve) => {
    ws.once('close', () => resolve());
    ws.close(1000);
  })));
  const seconds = (Date.now() - started) / 1000;
  const after = await settle(pid, baselineFds, inspector);
  return { opened: open.length, refused, refusals, relayed, peak, seconds, after };
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const say = opts.progress ?? (() => {});
  const target = await startTargetProcess();
  let cli: Cli | undefined;
  let inspector: Inspector | undefined;
  try {
    const heap = opts.heap ?? true;
    cli = await startCli([], [`127.0.0.1:${target.port}`], heap ? { env: { ...process.env, NODE_OPTIONS: '--inspect=127.0.0.1:0' } } : {});
    const pid = cli.pid;
    if (heap) {
      const url = inspectorUrl(cli.output());
      if (!url) throw new Error(`no inspector URL in the proxy's output:\n${cli.output()}`);
      inspector = await connectInspector(url);
    }
    // Warm up (JIT, pools), then the baseline.
    for (let i = 0; i < 200; i++) await cycle(cli.port, i);
    const baseline = await settle(pid, Infinity, inspector, 0);
    say(`baseline: ${describeSnapshot(baseline)}`);

    // Phase 1: cycles.
    let next = 0;
    let done = 0;
    let failed = 0;
    const firstErrors: string[] = [];
    const started = Date.now();
    let lastReport = started;
    let midway: Snapshot | undefined;
    const worker = async (): Promise<void> => {
      while (next < opts.cycles && Date.now() - started < opts.phaseTimeoutMs) {
        const n = next++;
        try {
          await cycle(cli!.port, n);
          done++;
          if (midway === undefined && done >= opts.cycles / 2) midway = snapshot(pid);
        } catch (err) {
          failed++;
          if (firstErrors.length < 10) firstErrors.push(`cycle ${n}: ${(err as Error).message}`);
        }
        if (Date.now() - lastReport > 5000) {
          lastReport = Date.now();
          say(`  cycles: ${done} done, ${failed} failed, ${fdCount(pid)} fds, RSS ${(rssKiB(pid) / 1024).toFixed(1)} MiB`);
        }
      }
    };
    await Promise.all(Array.from({ length: opts.cycleConcurrency }, worker));
    const cycleSeconds = (Date.now() - started) / 1000;
    const afterCycles = await settle(pid, baseline.fds, inspector);
    say(`cycles: ${done}/${opts.cycles} in ${cycleSeconds.toFixed(1)} s (${(done / cycleSeconds).toFixed(0)}/s), ${failed} failed; after: ${describeSnapshot(afterCycles)}`);

    // Phase 2: concurrent sessions, opened in batches, all held, all checked, all closed;
    // repeated, so that memory kept after one round can be told from memory leaked per round.
    const fdLimit = fdLimitOf(pid);
    const rounds: RoundResult[] = [];
    for (let round = 1; round <= Math.max(1, opts.concurrentRounds ?? 1); round++) {
      const r = await concurrentRound(cli, opts, baseline.fds, inspector, say);
      rounds.push(r);
      say(`round ${round}: ${r.opened} open (${r.refused} refused: ${JSON.stringify(r.refusals)}), ${r.relayed} relayed; ` +
        `peak ${describeSnapshot(r.peak)}; after closing all: ${describeSnapshot(r.after)}`);
    }
    const first = rounds[0]!;
    const last = rounds.at(-1)!;

    const alive = cli.proc.child.exitCode === null;
    const proxyErrors = cli.output().split('\n').filter((l) => /"level":(50|60)/.test(l)).slice(0, 10);
    return {
      baseline,
      cycles: {
        requested: opts.cycles,
        done,
        failed,
        seconds: cycleSeconds,
        perSecond: done / cycleSeconds,
        midway,
        after: afterCycles,
        firstErrors,
      },
      concurrent: {
        requested: opts.concurrent,
        fdLimit,
        opened: first.opened,
        refused: first.refused,
        refusals: first.refusals,
        relayedAfterOpen: first.relayed,
        peak: first.peak,
        seconds: first.seconds,
        after: last.after,
        bytesPerSession: first.opened > 0 ? Math.round(((first.peak.rssKiB - baseline.rssKiB) * 1024) / first.opened) : 0,
        rounds: rounds.map((r) => ({ opened: r.opened, relayed: r.relayed, peak: r.peak, after: r.after })),
      },
      alive,
      proxyErrors,
    };
  } finally {
    // Disconnect first: a process with a debugger attached waits for it before exiting.
    await inspector?.close();
    await cli?.stop(5000);
    await target.stop();
  }
}
