/**
 * The orchestrator: one invocation, rounds interleaved subject by subject (tsockify,
 * websockify, raw TCP, ws→ws, the TCP and ws reference relays, then again), every cell with
 * a fresh proxy.
 * Helpers run as separate processes: the target (greeting/echo/push/sink over TCP and
 * over a ws server) and the client (a `ws` client with the `binary` subprotocol).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Rpc } from './ipc.js';
import { describeMachine, type Machine } from './machine.js';
import { runs, TRIM_ENV, type ScenarioName, type SubjectName } from './metrics.js';
import { cpuSeconds, descendants, fdCount, forkHelper, freePort, settleDescendants, stablePssKiB, startLogged, stop, waitForPort, type Owned } from './proc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
/** tsx's loader as a file URL, for processes started outside the bench package's directory. */
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;

export interface BenchOptions {
  rounds: number;
  scenarios: ScenarioName[];
  subjects: SubjectName[];
  /** Measured part of each throughput, round-trip and setup phase. */
  durationMs: number;
  /** Unmeasured lead-in of each phase (JIT, TCP windows). */
  warmupMs: number;
  /** Concurrent sessions in the parallel setup phase. */
  parallel: number;
  /** Idle tiers: how many sessions to hold. */
  idleCounts: number[];
  /** Time allowed to open one idle tier. */
  idleTimeLimitMs: number;
  idleConcurrency: number;
  rttMaxCount: number;
  setupMaxCount: number;
  sessionTimeoutMs: number;
  /** Where the logs of every process go. */
  workDir: string;
  websockifyBin: string;
  tsockifyBin: string;
  log(line: string): void;
  /** Stops the run between phases (SIGINT/SIGTERM): every process started is still stopped. */
  signal?: AbortSignal;
}

export interface IdleDetail {
  subject: SubjectName;
  round: number;
  asked: number;
  held: number;
  echoing: number;
  failed: number;
  seconds: number;
  pssBeforeKiB: number;
  pssHeldKiB: number;
  processes: number;
  fds: number;
  firstError?: string;
  skipped?: string;
}

export interface Results {
  machine: Machine;
  /** Where every process's log went. */
  workDir: string;
  startedAt: string;
  seconds: number;
  rounds: number;
  subjects: SubjectName[];
  scenarios: ScenarioName[];
  idleCounts: number[];
  durationMs: number;
  parallel: number;
  /** values[metric][subject][round] */
  values: Record<string, Partial<Record<SubjectName, Array<number | undefined>>>>;
  idle: IdleDetail[];
  /** Things that went wrong but did not stop the run (a refused session, a skipped tier). */
  notes: string[];
  /** Load average when the run ended. */
  loadAtEnd?: string;
  /** Base descriptors of an idle tsockify and the hard limit: the ceiling on held sessions. */
  fdCeiling?: { baseFds: number; hardLimit: number; maxSessions: number };
}

interface Subject {
  name: SubjectName;
  url: string;
  /** Whose CPU and PSS are measured: the proxy, or for a baseline the target (endpoint). */
  measuredPid: number;
  proxy: Owned | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class Target {
  readonly rpc: Rpc;
  tcpPort = 0;
  wsPort = 0;
  constructor(readonly proc: Owned) {
    this.rpc = new Rpc(proc.child, 'target');
  }
  static async start(o: BenchOptions): Promise<Target> {
    const t = new Target(forkHelper(path.join(here, 'target.ts'), [], path.join(o.workDir, 'target.log')));
    const ready = await t.rpc.ready();
    t.tcpPort = ready.tcpPort as number;
    t.wsPort = ready.wsPort as number;
    return t;
  }
}

async function startSubject(name: SubjectName, target: Target, o: BenchOptions): Promise<Subject> {
  if (name === 'tcp') return { name, url: `tcp://127.0.0.1:${target.tcpPort}`, measuredPid: target.proc.pid, proxy: undefined };
  if (name === 'ws') return { name, url: `ws://127.0.0.1:${target.wsPort}/`, measuredPid: target.proc.pid, proxy: undefined };
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const dest = `127.0.0.1:${target.tcpPort}`;
  const log = path.join(o.workDir, `${name}.log`);
  const proxy = name === 'tsockify' ? startLogged(process.execPath, [o.tsockifyBin, listen, dest], log)
    : name === 'tsockify-w2' ? startLogged(process.execPath, [o.tsockifyBin, '--workers', '2', listen, dest], log)
    : name === 'websockify' ? startLogged(o.websockifyBin, [listen, dest], log)
    : startReference(name, port, target.tcpPort, log);
  try {
    await waitForPort(port, proxy, 15_000);
  } catch (err) {
    await stop(proxy);
    throw err;
  }
  const url = name === 'tcp-relay' ? `tcp://127.0.0.1:${port}` : `ws://127.0.0.1:${port}/websockify`;
  return { name, url, measuredPid: proxy.pid, proxy };
}

/**
 * The Node references (tcp-relay.ts, ws-relay.ts). They get the raised trim threshold that the
 * tsockify CLI primes for itself: a ceiling should not fall into the page-fault mode of the
 * profiling notes.
 */
function startReference(name: 'tcp-relay' | 'ws-relay', port: number, targetPort: number, log: string): Owned {
  const args = ['--import', tsxLoader, path.join(here, `${name}.ts`), String(port), String(targetPort)];
  return startLogged(process.execPath, args, log, { ...process.env, ...TRIM_ENV });
}

async function stopSubject(s: Subject): Promise<void> {
  if (s.proxy) await stop(s.proxy);
}

function record(r: Results, metric: string, subject: SubjectName, round: number, value: number | undefined): void {
  const bySubject = (r.values[metric] ??= {});
  const arr = (bySubject[subject] ??= []);
  arr[round] = value !== undefined && Number.isFinite(value) ? value : undefined;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export async function runBenchmark(o: BenchOptions): Promise<Results> {
  fs.mkdirSync(o.workDir, { recursive: true });
  const t0 = Date.now();
  const results: Results = {
    machine: describeMachine(o.websockifyBin),
    workDir: o.workDir,
    startedAt: new Date(t0).toISOString(),
    seconds: 0,
    rounds: o.rounds,
    subjects: o.subjects,
    scenarios: o.scenarios,
    idleCounts: o.idleCounts,
    durationMs: o.durationMs,
    parallel: o.parallel,
    values: {},
    idle: [],
    notes: [],
  };
  if (o.subjects.includes('websockify') && !fs.existsSync(o.websockifyBin)) {
    throw new Error(`websockify not found at ${o.websockifyBin}: install it (apt-get install websockify) or pass --websockify PATH or leave it out with --subjects`);
  }
  const client = forkHelper(path.join(here, 'client.ts'), [], path.join(o.workDir, 'client.log'));
  const crpc = new Rpc(client.child, 'client');
  let target: Target | undefined;
  try {
    await crpc.ready();
    for (let round = 0; round < o.rounds; round++) {
      target = await Target.start(o);
      for (const scenario of o.scenarios) {
        for (const name of o.subjects) {
          if (!runs(name, scenario)) continue;
          if (o.signal?.aborted) throw new Error('interrupted');
          const label = `round ${round + 1}/${o.rounds} ${scenario} ${name}`;
          try {
            if (scenario === 'idle') {
              // A fresh target per idle cell: for the baselines its memory is the figure.
              await target.rpc.call('closeAll', {}, 5000).catch(() => undefined);
              await stop(target.proc);
              target = await Target.start(o);
              await runIdle(o, results, crpc, target, name, round, label);
            } else {
              const subject = await startSubject(name, target, o);
              try {
                await runCell(o, results, crpc, subject, scenario, round, label);
              } finally {
                await stopSubject(subject);
                await target.rpc.call('closeAll', {}, 5000).catch(() => undefined);
              }
            }
          } catch (err) {
            const msg = `${label}: ${(err as Error).message.split('\n')[0]}`;
            results.notes.push(msg);
            o.log(`  ! ${msg}`);
          }
        }
      }
      await stop(target.proc);
      target = undefined;
    }
  } finally {
    if (target) await stop(target.proc);
    await stop(client);
  }
  if (o.subjects.includes('tsockify') && o.scenarios.includes('idle')) results.fdCeiling = await measureFdCeiling(o);
  results.seconds = (Date.now() - t0) / 1000;
  results.loadAtEnd = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  return results;
}

async function runCell(o: BenchOptions, r: Results, crpc: Rpc, s: Subject, scenario: ScenarioName, round: number, label: string): Promise<void> {
  const bound = o.warmupMs + o.durationMs + o.sessionTimeoutMs + 15_000;
  switch (scenario) {
    case 'down':
    case 'up': {
      const kids = s.proxy ? descendants(s.measuredPid).length : 0;
      const cpu0 = s.proxy ? cpuSeconds(s.measuredPid) : NaN;
      const res = await crpc.call<{ bytes: number; seconds: number; totalBytes: number }>(scenario, { url: s.url, warmupMs: o.warmupMs, durationMs: o.durationMs }, bound);
      // websockify's session child must be reaped before its CPU time is visible.
      if (s.proxy) await settleDescendants(s.measuredPid, kids, 3000);
      const cpu1 = s.proxy ? cpuSeconds(s.measuredPid) : NaN;
      const mibs = res.bytes / MiB / res.seconds;
      record(r, scenario, s.name, round, mibs);
      if (s.proxy) record(r, `${scenario}.cpu`, s.name, round, (cpu1 - cpu0) / (res.totalBytes / GiB));
      o.log(`${label}: ${mibs.toFixed(1)} MiB/s${s.proxy ? `, ${((cpu1 - cpu0) / (res.totalBytes / GiB)).toFixed(2)} CPU s/GiB` : ''}`);
      break;
    }
    case 'rtt': {
      const res = await crpc.call<{ count: number; p50us: number; p99us: number }>('rtt', { url: s.url, warmupCount: 200, durationMs: o.durationMs, maxCount: o.rttMaxCount }, bound);
      record(r, 'rtt.p50', s.name, round, res.p50us);
      record(r, 'rtt.p99', s.name, round, res.p99us);
      o.log(`${label}: p50 ${Number(res.p50us).toFixed(1)} µs, p99 ${Number(res.p99us).toFixed(1)} µs over ${res.count}`);
      break;
    }
    case 'setup-seq':
    case 'setup-par': {
      const parallel = scenario === 'setup-seq' ? 1 : o.parallel;
      const res = await crpc.call<{ completed: number; failed: number; seconds: number; p50ms: number; p99ms: number; firstError?: string }>('setup', {
        url: s.url, parallel, warmupMs: o.warmupMs, durationMs: o.durationMs, maxCount: o.setupMaxCount, sessionTimeoutMs: o.sessionTimeoutMs, minCompleted: 5,
      }, bound + 2 * o.sessionTimeoutMs);
      const key = scenario === 'setup-seq' ? 'seq' : 'par';
      const rate = res.completed / res.seconds;
      record(r, `${key}.rate`, s.name, round, res.completed > 0 ? rate : undefined);
      record(r, `${key}.ttfb`, s.name, round, res.p50ms);
      if (res.failed > 0) r.notes.push(`${label}: ${res.failed} sessions failed (${res.firstError ?? 'unknown'})`);
      o.log(`${label}: ${rate.toFixed(1)} sessions/s (${res.completed} done, ${res.failed} failed), first byte p50 ${Number(res.p50ms).toFixed(2)} ms`);
      // websockify's session children may still be exiting: let them go before the next cell.
      await sleep(s.name === 'websockify' ? 300 : 50);
      break;
    }
    default:
      throw new Error(`scenario ${scenario} is not a single cell`);
  }
}

/** Hold each tier of idle sessions with a fresh subject; stop at the first tier it cannot hold. */
async function runIdle(o: BenchOptions, r: Results, crpc: Rpc, target: Target, name: SubjectName, round: number, label: string): Promise<void> {
  let toppedOut: number | undefined;
  for (const asked of o.idleCounts) {
    if (toppedOut !== undefined) {
      r.idle.push({ subject: name, round, asked, held: 0, echoing: 0, failed: 0, seconds: 0, pssBeforeKiB: NaN, pssHeldKiB: NaN, processes: 0, fds: NaN, skipped: `held only ${toppedOut} in the previous tier` });
      o.log(`${label} ${asked}: skipped (held only ${toppedOut} in the previous tier)`);
      continue;
    }
    const s = await startSubject(name, target, o);
    try {
      const before = await stablePssKiB(s.measuredPid, 3000);
      const open = await crpc.call<{ held: number; failed: number; seconds: number; firstError?: string }>('idleOpen', {
        url: s.url, count: asked, concurrency: o.idleConcurrency, timeLimitMs: o.idleTimeLimitMs, sessionTimeoutMs: o.sessionTimeoutMs,
      }, o.idleTimeLimitMs + o.sessionTimeoutMs + 15_000);
      // Let the last handshakes' garbage and websockify's forks settle before reading PSS.
      await sleep(300);
      const heldPss = await stablePssKiB(s.measuredPid, 3000);
      const fds = fdCount(s.measuredPid);
      const check = await crpc.call<{ echoing: number; held: number }>('idleCheck', { timeLimitMs: Math.max(2000, o.sessionTimeoutMs) }, o.sessionTimeoutMs + 30_000);
      await crpc.call('idleClose', { timeLimitMs: 2000 }, 15_000);
      const perSession = open.held > 0 ? (heldPss.kib - before.kib) / open.held : NaN;
      const d: IdleDetail = {
        subject: name, round, asked, held: open.held, echoing: check.echoing, failed: open.failed, seconds: open.seconds,
        pssBeforeKiB: before.kib, pssHeldKiB: heldPss.kib, processes: heldPss.processes, fds,
        ...(open.firstError !== undefined ? { firstError: open.firstError } : {}),
      };
      r.idle.push(d);
      record(r, `idle.${asked}.kib`, name, round, perSession);
      record(r, `idle.${asked}.held`, name, round, check.echoing);
      o.log(`${label} ${asked}: held ${open.held} (${check.echoing} echoing, ${open.failed} failed) in ${open.seconds.toFixed(1)} s; `
        + `${perSession.toFixed(2)} KiB/session PSS over ${heldPss.processes} process(es), ${fds} fds${open.firstError ? `; first error: ${open.firstError}` : ''}`);
      if (check.echoing < asked) toppedOut = check.echoing;
    } finally {
      await stopSubject(s);
      await target.rpc.call('closeAll', {}, 5000).catch(() => undefined);
      await sleep(200);
    }
  }
}

/**
 * How many sessions one tsockify process can hold at most here: each needs two descriptors
 * (client and target socket) under the hard open-files limit, less what an idle process
 * already has open.
 */
async function measureFdCeiling(o: BenchOptions): Promise<Results['fdCeiling']> {
  const port = await freePort();
  const p = startLogged(process.execPath, [o.tsockifyBin, `127.0.0.1:${port}`, '127.0.0.1:9'], path.join(o.workDir, 'tsockify.log'));
  try {
    await waitForPort(port, p, 15_000);
    await sleep(200);
    const baseFds = fdCount(p.pid);
    const limits = fs.readFileSync(`/proc/${p.pid}/limits`, 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits);
    const hardLimit = m && m[2] !== 'unlimited' ? Number(m[2]) : Infinity;
    return { baseFds, hardLimit, maxSessions: Math.floor((Math.min(hardLimit, Number(m?.[1] ?? hardLimit)) - baseFds) / 2) };
  } finally {
    await stop(p);
  }
}

export function defaultWorkDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-bench-'));
}
