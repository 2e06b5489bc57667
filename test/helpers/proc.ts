import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const tsockifyBin = path.join(repoRoot, 'packages/cli/bin/tsockify.js');

export interface Proc {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the combined output matches, rejects on exit or timeout. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or signal name) once the process ends. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after graceMs; resolves when it has exited. Only this PID is signalled. */
  stop(graceMs?: number): Promise<number | string>;
}

/** Start a process we own and keep its output. */
export function startProcess(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (d: Buffer) => { out += d.toString('latin1'); for (const l of listeners) l(); });
  child.stderr?.on('data', (d: Buffer) => { err += d.toString('latin1'); for (const l of listeners) l(); });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => { resolve(code ?? signal ?? -1); for (const l of listeners) l(); });
  });
  let done = false;
  void exited.then(() => { done = true; });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForOutput(re, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = (out + err).match(re);
          if (m) { cleanup(); resolve(m); return; }
          if (done) { cleanup(); reject(new Error(`${cmd} exited before printing ${re}; output:\n${out}${err}`)); }
        };
        const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for ${re} from ${cmd}; output:\n${out}${err}`)); }, timeoutMs);
        const cleanup = () => { clearTimeout(timer); listeners.delete(check); };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 3000) {
      if (done) return exited;
      child.kill('SIGTERM');
      const t = setTimeout(() => { if (!done) child.kill('SIGKILL'); }, graceMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

/** Run `node packages/cli/bin/tsockify.js ...args`. */
export function startTsockify(args: string[], opts: SpawnOptions = {}): Proc {
  return startProcess(process.execPath, [tsockifyBin, ...args], opts);
}
