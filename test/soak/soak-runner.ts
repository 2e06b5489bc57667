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

export interface SoakOptions {
  cycles: number;
  /** Parallel workers for the cycles. */
  cycleConcurrency: number;
  concurrent: number;
  /** Stop a phase that runs longer than this (ms); the report says so. */
  phaseTimeoutMs: number;
  /** Progress lines (the script prints them; the test keeps quiet). */
  progress?: (line: string) => void;
}

export interface Snapshot { fds: number; rssKiB: number }

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

async function settle(pid: number, baselineFds: number, timeoutMs = 15_000): Promise<Snapshot> {
  const deadline = Date.now() + timeoutMs;
  while (fdCount(pid) > baselineFds && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // Give the allocator a moment after the last close before reading RSS.
  await new Promise((r) => setTimeout(r, 500));
  return snapshot(pid);
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const say = opts.progress ?? (() => {});
  const target = await startTargetProcess();
  let cli: Cli | undefined;
  try {
    cli = await startCli([], [`127.0.0.1:${target.port}`]);
    const pid = cli.pid;
    // Warm up (JIT, pools), then the baseline.
    for (let i = 0; i < 200; i++) await cycle(cli.port, i);
    const baseline = await settle(pid, Infinity, 0);
    say(`baseline: ${baseline.fds} fds, RSS ${(baseline.rssKiB / 1024).toFixed(1)} MiB`);

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
    const afterCycles = await settle(pid, baseline.fds);
    say(`cycles: ${done}/${opts.cycles} in ${cycleSeconds.toFixed(1)} s (${(done / cycleSeconds).toFixed(0)}/s), ${failed} failed; after: ${afterCycles.fds} fds, RSS ${(afterCycles.rssKiB / 1024).toFixed(1)} MiB`);

    // Phase 2: concurrent sessions, opened in batches, all held, all checked, all closed.
    const fdLimit = fdLimitOf(pid);
    const cStarted = Date.now();
    const open: WebSocket[] = [];
    const refusals: Record<string, number> = {};
    let refused = 0;
    const openOne = (n: number): Promise<void> => new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${cli!.port}/`, 'binary', { localAddress: SOURCES[n % SOURCES.length], perMessageDeflate: false });
      const fail = (why: string): void => { refused++; refusals[why] = (refusals[why] ?? 0) + 1; ws.terminate(); resolve(); };
      const timer = setTimeout(() => fail('timeout'), 15_000);
      ws.once('open', () => { clearTimeout(timer); open.push(ws); resolve(); });
      ws.once('unexpected-response', (_q, res) => { clearTimeout(timer); res.resume(); fail(`status ${res.statusCode}`); });
      ws.on('error', (err) => { clearTimeout(timer); fail((err as NodeJS.ErrnoException).code ?? err.message); });
    });
    for (let i = 0; i < opts.concurrent && Date.now() - cStarted < opts.phaseTimeoutMs; i += 250) {
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
    const peak = snapshot(pid);
    say(`concurrent: ${open.length} open (${refused} refused: ${JSON.stringify(refusals)}), ${relayed} relayed; peak ${peak.fds} fds, RSS ${(peak.rssKiB / 1024).toFixed(1)} MiB`);
    await Promise.all(open.map((ws) => new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000);
    })));
    const cSeconds = (Date.now() - cStarted) / 1000;
    const afterConcurrent = await settle(pid, baseline.fds);
    say(`after closing all: ${afterConcurrent.fds} fds, RSS ${(afterConcurrent.rssKiB / 1024).toFixed(1)} MiB`);

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
        opened: open.length,
        refused,
        refusals,
        relayedAfterOpen: relayed,
        peak,
        seconds: cSeconds,
        after: afterConcurrent,
        bytesPerSession: open.length > 0 ? Math.round(((peak.rssKiB - baseline.rssKiB) * 1024) / open.length) : 0,
      },
      alive,
      proxyErrors,
    };
  } finally {
    await cli?.stop(5000);
    await target.stop();
  }
}
