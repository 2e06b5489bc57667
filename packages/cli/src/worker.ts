/**
 * The worker side of `--workers`: what the primary (`workers.ts`) tells a worker through its
 * environment, and what the worker reports back over the cluster's IPC channel. A worker
 * otherwise runs the ordinary serve path (`serve.ts`) on the listening socket the cluster
 * shares.
 */
import cluster from 'node:cluster';
import type { CliErrorCode } from './errors.js';

/** Set by the primary for each worker: `{"slot":k,"count":N,"firstSession":n}`. */
export const WORKER_ENV = 'TSOCKIFY_WORKER';
/** The cookie-sealing key (hex) the primary made for all its workers. Removed once read; never logged. */
export const COOKIE_SECRET_ENV = 'TSOCKIFY_WORKER_COOKIE_SECRET';

export interface WorkerRole {
  /** 1 to `count`; a restarted worker keeps its slot. */
  slot: number;
  count: number;
  /** This worker's session ids are `firstSession`, `firstSession + count`, ... */
  firstSession: number;
  /** Set with `--cookie-exchange`: a cookie sealed by one worker opens in every other. */
  cookieSecret: Buffer | undefined;
}

/** What a worker tells the primary. */
export type WorkerMessage =
  | { type: 'listening'; addresses: string[] }
  /** The highest session id used so far (sent at most once a second; see serve.ts). */
  | { type: 'session'; id: number }
  /** Why the worker could not start: the CliError main would have printed. */
  | { type: 'error'; code: CliErrorCode; message: string; hint: string | undefined; exitCode: number };

/**
 * This process's role when it is a worker forked by a tsockify primary, else undefined. The
 * cookie secret is removed from `env` (and process.env) here, so that nothing started later
 * inherits it.
 */
export function takeWorkerRole(env: NodeJS.ProcessEnv): WorkerRole | undefined {
  if (!cluster.isWorker || env[WORKER_ENV] === undefined) return undefined;
  const { slot, count, firstSession } = JSON.parse(env[WORKER_ENV]) as Omit<WorkerRole, 'cookieSecret'>;
  const hex = env[COOKIE_SECRET_ENV];
  delete env[COOKIE_SECRET_ENV];
  delete process.env[COOKIE_SECRET_ENV];
  return { slot, count, firstSession, cookieSecret: hex ? Buffer.from(hex, 'hex') : undefined };
}

/** The environment the primary gives a worker (merged into its own by cluster.fork). */
export function workerEnv(role: WorkerRole): Record<string, string> {
  const { slot, count, firstSession } = role;
  return {
    [WORKER_ENV]: JSON.stringify({ slot, count, firstSession }),
    ...(role.cookieSecret ? { [COOKIE_SECRET_ENV]: role.cookieSecret.toString('hex') } : {}),
  };
}

/** Send to the primary; resolves once sent (or at once when the primary is gone). */
export function sendToPrimary(msg: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (typeof process.send !== 'function' || !process.connected) { resolve(); return; }
    process.send(msg, undefined, {}, () => resolve());
  });
}

/**
 * Let go of the primary once this worker is done (served, or failed to start). The cluster's
 * IPC channel holds the event loop, so without this a finished worker would never exit.
 */
export function leavePrimary(): void {
  if (process.connected) cluster.worker?.disconnect();
}
