/**
 * The proxies the differential suite runs against. Each test file does
 * `for (const proxy of proxies) describe(proxy.name, () => ...)`, so every wire-behaviour
 * test runs once against the real Python websockify and once against tsockify, with the same
 * argv. Where the two deliberately differ, see divergences.ts.
 *
 * COMPAT_PROXIES=websockify (or tsockify, or both comma-separated) narrows the list.
 */
import { existsSync, readFileSync } from 'node:fs';
import { freePort } from '../helpers/net.js';
import { startProcess, startTsockify, type Proc } from '../helpers/proc.js';

export type ProxyName = 'websockify' | 'tsockify';

/** Placeholder in an argv list: replaced by `127.0.0.1:<free port>` when the proxy starts. */
export const LISTEN = '@LISTEN@';

export interface RunningProxy {
  name: ProxyName;
  /** The TCP port it listens on (127.0.0.1). */
  port: number;
  proc: Proc;
  /** stdout + stderr so far. */
  output(): string;
  /** `ws://127.0.0.1:<port><path>` */
  url(path?: string): string;
  /** SIGTERM (SIGKILL after a grace period) to this PID only; resolves with the exit status. */
  stop(): Promise<number | string>;
}

export interface ProxyRun {
  code: number | string;
  output: string;
  /** True when the process had to be killed because it did not exit by itself. */
  timedOut: boolean;
}

export interface ProxyImpl {
  name: ProxyName;
  /**
   * Spawn the real command with `args` (LISTEN is replaced by `127.0.0.1:<free port>`) and
   * resolve once the port is listening. Readiness is read from /proc/net/tcp rather than by
   * connecting: a probe connection would count as websockify's session 1 (shifting
   * `--record` file numbers) and would be the one session of `--run-once`.
   */
  start(args: string[], opts?: { cwd?: string; timeoutMs?: number }): Promise<RunningProxy>;
  /** Run to completion (startup errors); kills it after `timeoutMs`. */
  run(args: string[], timeoutMs?: number): Promise<ProxyRun>;
}

export const WEBSOCKIFY_BIN = process.env.WEBSOCKIFY_BIN ?? '/usr/bin/websockify';

const live = new Set<Proc>();
process.once('exit', () => {
  // Last resort for a run interrupted mid-suite: signal only the PIDs this file started.
  for (const p of live) if (p.child.pid && p.child.exitCode === null) p.child.kill('SIGKILL');
});

function spawnProxy(name: ProxyName, args: string[], cwd?: string): Proc {
  if (name === 'websockify') {
    return startProcess(WEBSOCKIFY_BIN, args, {
      cwd,
      env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
    });
  }
  return startTsockify(args, { cwd, env: { ...process.env, NO_COLOR: '1' } });
}

/** Is some socket in LISTEN state on this TCP port (any address, v4 or v6)? */
function isListening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try { text = readFileSync(file, 'latin1'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 3 && cols[1]?.endsWith(`:${hex}`) && cols[3] === '0A') return true;
    }
  }
  return false;
}

async function waitListening(proc: Proc, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | string | undefined;
  void proc.exited.then((c) => { exited = c; });
  for (;;) {
    if (isListening(port)) return;
    if (exited !== undefined) {
      throw new Error(`exited (${exited}) before listening on ${port}; output:\n${proc.stdout()}${proc.stderr()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`not listening on ${port} after ${timeoutMs} ms; output:\n${proc.stdout()}${proc.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function makeImpl(name: ProxyName): ProxyImpl {
  return {
    name,
    async start(args, opts = {}) {
      if (name === 'websockify' && !existsSync(WEBSOCKIFY_BIN)) {
        throw new Error(`${WEBSOCKIFY_BIN} not found: apt-get install websockify, or set COMPAT_PROXIES=tsockify`);
      }
      const port = await freePort();
      const argv = args.map((a) => (a === LISTEN ? `127.0.0.1:${port}` : a));
      const proc = spawnProxy(name, argv, opts.cwd);
      live.add(proc);
      void proc.exited.then(() => live.delete(proc));
      try {
        await waitListening(proc, port, opts.timeoutMs ?? 10_000);
      } catch (err) {
        await proc.stop(1000);
        throw err;
      }
      return {
        name,
        port,
        proc,
        output: () => proc.stdout() + proc.stderr(),
        url: (path = '/') => `ws://127.0.0.1:${port}${path}`,
        stop: () => proc.stop(2000),
      };
    },
    async run(args, timeoutMs = 5000) {
      const port = await freePort();
      const argv = args.map((a) => (a === LISTEN ? `127.0.0.1:${port}` : a));
      const proc = spawnProxy(name, argv);
      live.add(proc);
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; void proc.stop(500); }, timeoutMs);
      const code = await proc.exited;
      clearTimeout(timer);
      live.delete(proc);
      return { code, output: proc.stdout() + proc.stderr(), timedOut };
    },
  };
}

const selected = (process.env.COMPAT_PROXIES ?? 'websockify,tsockify')
  .split(',').map((s) => s.trim()).filter(Boolean);

export const proxies: ProxyImpl[] = (['websockify', 'tsockify'] as const)
  .filter((n) => selected.includes(n))
  .map(makeImpl);
