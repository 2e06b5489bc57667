/**
 * The tsockify command as a separate process, for tests that measure it from outside (RSS,
 * file descriptors) or signal it. It listens on 127.0.0.1 port 0 and the port is read from its
 * startup line; it is stopped by its PID only.
 */
import type { SpawnOptions } from 'node:child_process';
import { startTsockify, type Proc } from '../helpers/proc.js';

export interface Cli {
  proc: Proc;
  pid: number;
  port: number;
  /** stdout + stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<number | string>;
}

/**
 * Start `tsockify [options...] 127.0.0.1:0 [positionals...]`. `options` go before the source
 * address, `positionals` (a target, or nothing with a token plugin) after it.
 */
export async function startCli(options: string[], positionals: string[], spawn: SpawnOptions = {}): Promise<Cli> {
  const proc = startTsockify([...options, '127.0.0.1:0', ...positionals], spawn);
  try {
    const m = await proc.waitForOutput(/listening on 127\.0\.0\.1:(\d+)/, 15_000);
    return {
      proc,
      pid: proc.child.pid!,
      port: Number(m[1]),
      output: () => proc.stdout() + proc.stderr(),
      stop: (graceMs = 3000) => proc.stop(graceMs),
    };
  } catch (err) {
    await proc.stop(500);
    throw err;
  }
}
