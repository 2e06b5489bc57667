/**
 * Wrap mode: `tsockify [source_addr:]source_port -- COMMAND...` runs COMMAND and proxies to it.
 *
 * websockify LD_PRELOADs its rebind.so so that COMMAND's bind() on source_port lands on a
 * free port instead, and proxies there. tsockify does not ship a C library, so:
 * - with `--wrap-target HOST:PORT` it proxies there and COMMAND is expected to listen there;
 * - otherwise it picks a free port on 127.0.0.1 (as websockify does), tells COMMAND through
 *   $TSOCKIFY_TARGET_HOST / $TSOCKIFY_TARGET_PORT (`sh -c 'Xvnc :1 -rfbport $TSOCKIFY_TARGET_PORT'`),
 *   and, when websockify's rebind.so is installed ($TSOCKIFY_REBIND_SO, or the Debian/pip
 *   locations), preloads it with REBIND_OLD_PORT/REBIND_NEW_PORT exactly as websockify does,
 *   so commands written for websockify work unchanged.
 *
 * `--wrap-mode`: exit (tsockify stops when COMMAND exits, with COMMAND's status, where
 * websockify exits 0), ignore, respawn (websockify's throttle: when the last three starts
 * average less than 10 s ago, warn once and wait until they do not).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { Logger } from '@tsockify/core';
import type { WrapMode } from './args.js';

const REBIND_CANDIDATES = [
  '/usr/lib/websockify/rebind.so',
  '/usr/local/lib/websockify/rebind.so',
  '/usr/lib/x86_64-linux-gnu/websockify/rebind.so',
];

/** websockify's respawn throttle: the average of the last 3 start times must be 10 s old. */
const RESPAWN_WINDOW_MS = 10_000;

/** websockify's rebind.so, if installed and not disabled with TSOCKIFY_REBIND_SO="". */
export function findRebind(env: NodeJS.ProcessEnv): string | undefined {
  if (env.TSOCKIFY_REBIND_SO !== undefined) return env.TSOCKIFY_REBIND_SO === '' ? undefined : env.TSOCKIFY_REBIND_SO;
  return REBIND_CANDIDATES.find((p) => fs.existsSync(p));
}

/** A free TCP port on 127.0.0.1 (bind 0, read, release), as websockify picks its wrap port. */
export async function pickFreePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface WrapSettings {
  command: string[];
  mode: WrapMode;
  env: NodeJS.ProcessEnv;
  /** Where tsockify proxies to; passed to the command in the environment. */
  target: { host: string; port: number } | { unixSocket: string } | undefined;
  /** Preload websockify's rebind.so moving a bind on `listenPort` to `target.port`. */
  rebind?: { library: string; listenPort: number };
  /** Keep stdin away from the command (in --inetd mode it is the listening socket). */
  stdinIgnore: boolean;
  log: Logger;
  /** Called in `exit` mode when the command has ended, with its status (128+n for signal n). */
  onExit(status: number): void;
}

export interface WrappedCommand {
  /** Stop supervising and terminate the command (SIGTERM). */
  stop(): void;
}

export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? os.constants.signals[signal] : undefined;
  return n !== undefined ? 128 + n : 1;
}

export function startWrappedCommand(s: WrapSettings): WrappedCommand {
  const env: NodeJS.ProcessEnv = { ...s.env };
  delete env.TSOCKIFY_DAEMON_CHILD;
  if (s.target && 'port' in s.target) {
    env.TSOCKIFY_TARGET_HOST = s.target.host;
    env.TSOCKIFY_TARGET_PORT = String(s.target.port);
    if (s.rebind) {
      env.LD_PRELOAD = env.LD_PRELOAD ? `${s.rebind.library} ${env.LD_PRELOAD}` : s.rebind.library;
      env.REBIND_OLD_PORT = String(s.rebind.listenPort);
      env.REBIND_NEW_PORT = String(s.target.port);
    }
  } else if (s.target) {
    env.TSOCKIFY_TARGET_SOCKET = s.target.unixSocket;
  }
  const times = [0, 0, 0];
  let child: ChildProcess | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let warnedFast = false;
  const shown = s.command.join(' ');

  const run = (): void => {
    s.log.info(`Starting '${shown}'`);
    times.push(Date.now());
    times.shift();
    warnedFast = false;
    let ended = false;
    const c = spawn(s.command[0]!, s.command.slice(1), { env, stdio: [s.stdinIgnore ? 'ignore' : 'inherit', 'inherit', 'inherit'] });
    child = c;
    const onEnd = (status: number): void => {
      if (ended) return;
      ended = true;
      if (child === c) child = undefined;
      if (stopped) return;
      s.log.info({ status }, `Wrapped command exited (or daemon). Returned ${status}`);
      afterExit(status);
    };
    c.on('error', (err: NodeJS.ErrnoException) => {
      s.log.error({ err: err.message }, `cannot run '${shown}': ${err.code === 'ENOENT' ? 'command not found' : err.message}`);
      onEnd(err.code === 'ENOENT' ? 127 : 126);
    });
    c.on('exit', (code, signal) => onEnd(exitStatus(code, signal)));
  };

  const afterExit = (status: number): void => {
    if (s.mode === 'ignore') return;
    if (s.mode === 'exit') { s.onExit(status); return; }
    const avg = times.reduce((a, b) => a + b, 0) / times.length;
    const wait = avg + RESPAWN_WINDOW_MS - Date.now();
    if (wait > 0) {
      if (!warnedFast) s.log.warn(`Command respawning too fast (3 starts within ${RESPAWN_WINDOW_MS / 1000} s): waiting ${Math.ceil(wait / 1000)} s`);
      warnedFast = true;
      retry = setTimeout(() => { if (!stopped) run(); }, wait);
    } else {
      run();
    }
  };

  run();
  return {
    stop() {
      stopped = true;
      clearTimeout(retry);
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}
