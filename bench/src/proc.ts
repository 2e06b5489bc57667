/**
 * Processes the benchmark owns, and what /proc says about them. Every process started here
 * is stopped by its PID (and its descendants by theirs): never by name.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { TRIM_ENV } from './metrics.js';

const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Clock ticks per second for /proc/PID/stat (USER_HZ; 100 on every Linux we run on). */
const CLK_TCK = 100;

export interface Owned {
  pid: number;
  child: ChildProcess;
  exited: Promise<void>;
}

function own(child: ChildProcess): Owned {
  if (child.pid === undefined) throw new Error('process did not start');
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return { pid: child.pid, child, exited };
}

/**
 * Start `cmd args` with its output appended to `logFile`, with the soft open-files limit
 * raised to the hard limit first (a proxy holding 10,000 sessions needs two descriptors
 * each). `exec` keeps the PID the program's own, so /proc readings are the program's.
 */
export function startLogged(cmd: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): Owned {
  const fd = fs.openSync(logFile, 'a');
  const child = spawn('/bin/bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'bench', cmd, ...args], {
    stdio: ['ignore', fd, fd],
    env,
  });
  fs.closeSync(fd);
  return own(child);
}

/**
 * Fork a TypeScript helper (target or client) with an IPC channel. The helpers are the load
 * generators and the baselines' endpoints: they run with glibc's trim threshold raised (TRIM_ENV)
 * so that none of them falls into the page-fault mode described in the profiling notes and
 * becomes the bottleneck of a phase. Every subject is measured against the same helpers.
 */
export function forkHelper(file: string, args: string[], logFile: string): Owned {
  const fd = fs.openSync(logFile, 'a');
  // `--import tsx` resolves from the working directory: the bench package has tsx.
  const child = fork(file, args, {
    cwd: benchDir,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...TRIM_ENV },
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  fs.closeSync(fd);
  return own(child);
}

/** The PIDs of every live descendant of `root` (websockify forks one child per session). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (!stat) continue;
    const list = children.get(stat.ppid);
    if (list) list.push(stat.pid);
    else children.set(stat.ppid, [stat.pid]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime, ticks. */
  own: number;
  /** cutime + cstime of reaped children, ticks. */
  reaped: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): field n is f[n - 3].
  return {
    pid,
    ppid: Number(f[1]),
    own: Number(f[11]) + Number(f[12]),
    reaped: Number(f[13]) + Number(f[14]),
  };
}

/**
 * CPU seconds used so far by `root` and its descendants: their own user+system time, plus
 * what reaped children left in the root's cutime+cstime (websockify's per-session children
 * exit and are reaped during a phase).
 */
export function cpuSeconds(root: number): number {
  const r = readStat(root);
  if (!r) return NaN;
  let ticks = r.own + r.reaped;
  for (const pid of descendants(root)) ticks += readStat(pid)?.own ?? 0;
  return ticks / CLK_TCK;
}

/**
 * Wait (bounded) until `root` has at most `max` live descendants. A child that exited is a
 * zombie until its parent reaps it, and a zombie's /proc stat shows no CPU time: only once
 * reaped does its time appear in the parent's cutime+cstime, where cpuSeconds finds it.
 */
export async function settleDescendants(root: number, max: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (descendants(root).length > max && Date.now() < deadline) await sleep(25);
}

/** Proportional set size of `root` and its descendants in KiB, from smaps_rollup. */
export function pssKiB(root: number): { kib: number; processes: number } {
  let kib = 0;
  let processes = 0;
  for (const pid of [root, ...descendants(root)]) {
    try {
      const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
      const m = /^Pss:\s+(\d+) kB/m.exec(text);
      if (m) {
        kib += Number(m[1]);
        processes++;
      }
    } catch {
      // Gone between the listing and the read: a session child that just exited.
    }
  }
  return { kib, processes };
}

/**
 * PSS once it stops moving: a process that just started or just opened thousands of
 * sessions is still compiling and collecting for a moment. Samples every 150 ms until two
 * in a row differ by less than `tolKiB`, or `maxWaitMs` passed; returns the last sample.
 */
export async function stablePssKiB(root: number, maxWaitMs: number, tolKiB = 64): Promise<{ kib: number; processes: number }> {
  const deadline = Date.now() + maxWaitMs;
  let last = pssKiB(root);
  while (Date.now() < deadline) {
    await sleep(150);
    const next = pssKiB(root);
    const settled = Math.abs(next.kib - last.kib) < tolKiB && next.processes === last.processes;
    last = next;
    if (settled) break;
  }
  return last;
}

/** Open file descriptors of one process. */
export function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * SIGTERM the process, SIGKILL it after `graceMs`; then the same for any descendant it left
 * (listed before the signal, each signalled by its own PID).
 */
export async function stop(p: Owned, graceMs = 2000): Promise<void> {
  const kids = descendants(p.pid);
  if (p.child.exitCode === null && p.child.signalCode === null) {
    p.child.kill('SIGTERM');
    const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
    await p.exited;
    clearTimeout(t);
  }
  for (const pid of kids) {
    if (alive(pid)) {
      try { process.kill(pid, 'SIGTERM'); } catch { /* exited meanwhile */ }
    }
  }
  const deadline = Date.now() + graceMs;
  for (const pid of kids) {
    while (alive(pid) && Date.now() < deadline) await sleep(20);
    if (alive(pid)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* exited meanwhile */ }
    }
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Resolve once 127.0.0.1:port accepts; reject after `timeoutMs` or when `p` exits. */
export async function waitForPort(port: number, p: Owned, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void p.exited.then(() => { exited = true; });
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (exited) throw new Error(`process ${p.pid} exited before listening on ${port}`);
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(25);
  }
}
