/**
 * When the command stops: `--run-once`, `--timeout`, `--idle-timeout`, signals, and the
 * wrapped command in `exit` mode. Everything ends in one idempotent `shutdown(code)` that
 * closes the server (sessions get 1001) and resolves the exit code `main` returns.
 *
 * Live sessions are counted here from the server's `session` / `sessionClose` events
 * (exactly one close per open), so the decisions do not depend on when the server updates
 * its own count.
 */
import type { Logger, TsockifyServer } from '@tsockify/core';

export interface LifecycleSettings {
  runOnce: boolean;
  /** Seconds; 0 = off. */
  timeout: number;
  idleTimeout: number;
  log: Logger;
  /** Runs first in shutdown (stop the wrapped command, ...). */
  beforeClose?: () => void;
  /** Runs last in shutdown (close log files). */
  afterClose?: () => void;
}

export interface Lifecycle {
  /** Resolves with the exit code once the server has closed. */
  done: Promise<number>;
  /** Begin a graceful stop; later calls are ignored. */
  shutdown(code: number, why: string): void;
}

export function runLifecycle(server: TsockifyServer, s: LifecycleSettings): Lifecycle {
  let live = 0;
  let finishing = false;
  let acceptingStopped = false;
  let timedOut = false;
  let idleTimer: NodeJS.Timeout | undefined;
  let timeoutTimer: NodeJS.Timeout | undefined;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => { resolveDone = resolve; });

  const stopAccepting = (): void => {
    if (acceptingStopped) return;
    acceptingStopped = true;
    server.stopAccepting().catch((err: unknown) => s.log.error({ err: String(err) }, 'error while closing the listener'));
  };

  const shutdown = (code: number, why: string): void => {
    if (finishing) return;
    finishing = true;
    clearTimeout(idleTimer);
    clearTimeout(timeoutTimer);
    s.log.info(why);
    s.beforeClose?.();
    server.close().then(
      () => {
        s.log.debug('server closed');
        s.afterClose?.();
        resolveDone(code);
      },
      (err: unknown) => {
        s.log.error({ err: String(err) }, 'error while closing');
        s.afterClose?.();
        resolveDone(code === 0 ? 1 : code);
      },
    );
  };

  const armIdle = (): void => {
    if (s.idleTimeout <= 0 || finishing) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (live === 0) shutdown(0, `listener exit due to --idle-timeout ${s.idleTimeout}`);
    }, s.idleTimeout * 1000);
  };

  server.on('session', () => {
    live++;
    clearTimeout(idleTimer);
    // websockify --run-once serves one connection in its own process: no second session.
    if (s.runOnce) stopAccepting();
  });
  server.on('sessionClose', (info) => {
    live--;
    if (s.runOnce) { shutdown(0, `${info.remoteAddress}: exiting due to --run-once`); return; }
    if (timedOut && live === 0) { shutdown(0, `last session ended after --timeout ${s.timeout}`); return; }
    if (live === 0) armIdle();
  });

  if (s.timeout > 0) {
    timeoutTimer = setTimeout(() => {
      timedOut = true;
      s.log.info(`listener exit due to --timeout ${s.timeout}`);
      stopAccepting();
      if (live === 0) shutdown(0, `no live sessions after --timeout ${s.timeout}: exiting`);
      else s.log.info({ sessions: live }, 'waiting for live sessions to end');
    }, s.timeout * 1000);
  }
  armIdle();

  return { done, shutdown };
}
