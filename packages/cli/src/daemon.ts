/**
 * `-D/--daemon`. Node cannot fork(), so the foreground process starts a detached copy of
 * itself (same argv, same working directory, a new session via setsid, stdin from
 * /dev/null, stdout and stderr to `--log-file` or /dev/null) and waits on an IPC channel
 * until the copy reports that it is listening, or why it could not start. So unlike
 * websockify, whose errors after the fork are lost, startup errors (a bad certificate, a
 * plugin that cannot load) still reach the terminal and the exit code.
 *
 * websockify also chdir()s to `/` (or the --web folder) and sets umask 0; tsockify keeps the
 * working directory, so relative paths in the command line mean the same in the daemon.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set in the detached copy's environment; it then serves instead of detaching again. */
export const DAEMON_CHILD_ENV = 'TSOCKIFY_DAEMON_CHILD';

export type DaemonMessage =
  | { type: 'ready'; addresses: string[] }
  | { type: 'error'; text: string; exitCode: number };

const binPath = fileURLToPath(new URL('../bin/tsockify.js', import.meta.url));

export function isDaemonChild(env: NodeJS.ProcessEnv): boolean {
  return env[DAEMON_CHILD_ENV] === '1';
}

/** In the detached copy: tell the waiting parent how startup went, then let it go. */
export function reportToParent(msg: DaemonMessage): void {
  if (typeof process.send !== 'function' || !process.connected) return;
  process.send(msg, () => {
    if (process.connected) process.disconnect();
  });
}

/**
 * In the foreground: start the detached copy and wait for its report. Returns the exit code
 * for the foreground process; error text goes to `stderr`.
 */
export async function daemonize(
  argv: readonly string[],
  opts: { logFile: string | undefined; cwd: string; env: NodeJS.ProcessEnv; stderr: NodeJS.WritableStream },
): Promise<number> {
  let out: number | 'ignore' = 'ignore';
  if (opts.logFile) {
    try {
      out = fs.openSync(path.resolve(opts.cwd, opts.logFile), 'a');
    } catch (err) {
      opts.stderr.write(`tsockify: cannot open --log-file "${opts.logFile}": ${(err as NodeJS.ErrnoException).code} (check that its folder exists and is writable)\n`);
      return 1;
    }
  }
  const child = spawn(process.execPath, [...process.execArgv, binPath, ...argv], {
    cwd: opts.cwd,
    env: { ...opts.env, [DAEMON_CHILD_ENV]: '1' },
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
  });
  if (typeof out === 'number') fs.closeSync(out);
  return await new Promise<number>((resolve) => {
    let settled = false;
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      resolve(code);
    };
    child.on('message', (m: DaemonMessage) => {
      if (m.type === 'ready') {
        opts.stderr.write(`tsockify: running in the background as pid ${child.pid}, listening on ${m.addresses.join(', ')}\n`);
        finish(0);
      } else {
        opts.stderr.write(`${m.text}\n`);
        finish(m.exitCode);
      }
    });
    child.on('error', (err) => {
      opts.stderr.write(`tsockify: cannot start the background process: ${err.message}\n`);
      finish(1);
    });
    child.on('exit', (code, signal) => {
      opts.stderr.write(`tsockify: the background process ended (${signal ?? `exit code ${code}`}) before it was listening${opts.logFile ? ` (see ${opts.logFile})` : ''}\n`);
      finish(code || 1);
    });
  });
}
