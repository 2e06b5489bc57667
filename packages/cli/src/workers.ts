/**
 * `--workers N`: this process becomes the primary of N worker processes (node:cluster,
 * round-robin) that each run the ordinary serve path (`serve.ts`) on one shared listening
 * socket. Sessions then spread over CPU cores, and over the per-process open-files limit
 * (a session holds two descriptors).
 *
 * The primary serves nothing. It checks the options as a single process would, so that a
 * bad command line fails before any fork and with the same message; prints the startup
 * lines once, when every worker listens; forwards SIGTERM/SIGINT (as SIGTERM) and SIGHUP;
 * and restarts a worker that dies, unless workers die too often.
 *
 * Session ids stay unique across workers: worker k of N numbers its sessions k, k + N,
 * k + 2N, ... (the core's `sessionIds`), and a restarted worker continues after the last id
 * its slot reported. `--cookie-exchange` gets one sealing key, made here, for every worker.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, removeStaleSocket, type Logger, type TokenPlugin, type TsockifyServer } from '@tsockify/core';
import type { CliOptions } from './args.js';
import { buildCoreOptions, closePlugins, type BuiltConfig } from './config.js';
import { reportToParent } from './daemon.js';
import { CliError, UsageError } from './errors.js';
import { loggerForCommand, type CliLogger } from './logging.js';
import type { MainIo } from './main.js';
import { describeListen, describeTarget } from './serve.js';
import { workerEnv, type WorkerMessage } from './worker.js';

/** Wait before starting a worker again, so that a crash loop does not spin. */
const RESTART_DELAY_MS = 1000;
/** More deaths than MAX_RESTARTS within RESTART_WINDOW_MS: something is wrong that a restart will not fix. */
const RESTART_WINDOW_MS = 60_000;
const MAX_RESTARTS = 5;
/** After this long a stopping worker is killed (each worker also gives its sessions at most ~5 s). */
const STOP_GRACE_MS = 10_000;
/**
 * A worker reports its highest session id once a second, so a restarted one starts this many
 * of its ids past the last report: more sessions than a worker opens in a second, by far.
 */
const ID_MARGIN = 100_000;

const binPath = fileURLToPath(new URL('../bin/tsockify.js', import.meta.url));

export async function runPrimary(cli: CliOptions, argv: readonly string[], io: MainIo, daemonChild: boolean): Promise<number> {
  const logging = await loggerForCommand(cli, daemonChild ? undefined : io.stderr);
  try {
    return await supervise(cli, argv, io, logging, daemonChild);
  } finally {
    logging.close();
  }
}

async function supervise(cli: CliOptions, argv: readonly string[], io: MainIo, logging: CliLogger, daemonChild: boolean): Promise<number> {
  const log = logging.logger as unknown as Logger;
  for (const w of cli.warnings) log.warn(w);
  const built = await checkOptions(cli, io, log);
  for (const w of built.warnings) log.warn(w);
  // The primary binds for every worker (node's cluster), so it clears the way first.
  if (cli.listen.kind === 'unix') removeStaleSocket(path.resolve(io.cwd, cli.listen.path));

  log.info('WebSocket server settings:');
  log.info(describeListen(cli));
  for (const line of built.settings) log.info(line);
  if (cli.daemon) log.info('  - Backgrounding (daemon)');
  log.info(`  - ${cli.workers} worker processes`);

  cluster.setupPrimary({ exec: binPath, args: [...argv], execArgv: process.execArgv });
  // Without --cookie-secret-file (which every worker reads itself), one random key for all.
  const sharedKey = cli.cookieExchange && cli.cookieExchange.secretFile === undefined ? randomBytes(32) : undefined;
  const pool = new WorkerPool(cli.workers, log, sharedKey);
  // Before the first fork: a signal during startup must reach the workers too.
  const removeSignals = io.signals ? installSignals(pool, logging, log, cli, daemonChild) : () => {};
  try {
    const addresses = await pool.start();
    if (addresses !== undefined) {
      const dst = describeTarget(cli, undefined);
      log.info(`  - proxying from ${addresses.join(', ')} to ${dst}${cli.targetTls ? ' (using SSL)' : ''}`);
      log.info(
        { addresses, target: dst, tls: built.tlsEnabled, workers: pool.pids() },
        `tsockify: listening on ${addresses.join(', ')} proxying to ${dst}`,
      );
      if (daemonChild) reportToParent({ type: 'ready', addresses });
    }
    const code = await pool.done;
    // A worker's startup error is the command's error: main prints it as it would its own.
    if (pool.startFailure) throw pool.startFailure;
    return code;
  } finally {
    removeSignals();
  }
}

/**
 * Build the options and create (not start) a server from them, as each worker will, then
 * let it go. Also refuses one-time tokens kept in this process's memory: each worker would
 * keep its own and accept the same token once.
 */
async function checkOptions(cli: CliOptions, io: MainIo, log: Logger): Promise<BuiltConfig> {
  const built = await buildCoreOptions(cli, { cwd: io.cwd, logger: log });
  let server: TsockifyServer;
  try {
    await refuseMemoryReplay(built.options.tokenPlugin);
    server = createServer(built.options);
  } catch (err) {
    await closePlugins(built.options);
    throw err;
  }
  server.on('error', (err) => log.debug({ err: err.message }, 'closing the options check'));
  await server.close();
  return built;
}

async function refuseMemoryReplay(plugin: TokenPlugin | undefined): Promise<void> {
  if (plugin === undefined) return;
  const { SignedToken, MemoryReplayCache } = await import('@tsockify/auth-plugins');
  if (plugin instanceof SignedToken && plugin.replay instanceof MemoryReplayCache) {
    throw new UsageError(
      '--workers cannot be combined with one-time tokens remembered in memory (--token-source KEYS:LIFETIME:once)',
      'each worker would accept the same token once: keep the used token ids in Redis with ' +
        '--token-source KEYS:LIFETIME:once:REDIS_HOST[:PORT[:DB[:PASSWORD[:NAMESPACE]]]], or drop --workers',
    );
  }
}

interface Slot {
  /** 1 to count. */
  readonly n: number;
  worker: Worker | undefined;
  listening: boolean;
  /** The highest session id this slot has reported (n - count before the first). */
  lastSessionId: number;
  /** A worker has been started in this slot before (a fork now is a restart). */
  started: boolean;
  /** Why the worker said it could not start, until it exits. */
  failure: CliError | undefined;
  restartTimer: NodeJS.Timeout | undefined;
}

/** The workers, their restarts, and the stop that ends the command. */
class WorkerPool {
  /** Resolves with the exit code once every worker has exited after a stop. */
  readonly done: Promise<number>;
  /** Set when a worker failed before every worker listened. */
  startFailure: CliError | undefined;
  private readonly slots: Slot[];
  private state: 'starting' | 'running' | 'stopping' = 'starting';
  private exitCode = 0;
  private deaths: number[] = [];
  private stopTimer: NodeJS.Timeout | undefined;
  private resolveDone!: (code: number) => void;
  private settleStart: ((addresses: string[] | undefined) => void) | undefined;
  private addresses: string[] = [];

  constructor(
    private readonly count: number,
    private readonly log: Logger,
    private readonly cookieSecret: Buffer | undefined,
  ) {
    this.done = new Promise((resolve) => { this.resolveDone = resolve; });
    this.slots = Array.from({ length: count }, (_, i) => ({
      n: i + 1, worker: undefined, listening: false, lastSessionId: i + 1 - count, started: false, failure: undefined, restartTimer: undefined,
    }));
  }

  /** Fork every worker; resolves with the addresses once all listen, or undefined when the pool stopped first. */
  start(): Promise<string[] | undefined> {
    const started = new Promise<string[] | undefined>((resolve) => { this.settleStart = resolve; });
    for (const slot of this.slots) this.fork(slot);
    return started;
  }

  pids(): number[] {
    return this.slots.flatMap((s) => (s.worker?.process.pid !== undefined ? [s.worker.process.pid] : []));
  }

  /** Stop every worker (each closes its sessions with 1001), then resolve `done` with `code`. */
  stop(code: number, why: string, level: 'debug' | 'info' | 'error' = 'info'): void {
    if (this.state === 'stopping') return;
    this.state = 'stopping';
    this.exitCode = code;
    this.settleStart?.(undefined);
    this.log[level](why);
    for (const slot of this.slots) clearTimeout(slot.restartTimer);
    this.signal('SIGTERM');
    this.stopTimer = setTimeout(() => {
      this.log.warn(`workers still running ${STOP_GRACE_MS / 1000} s after SIGTERM: killing them`);
      this.signal('SIGKILL');
    }, STOP_GRACE_MS);
    this.checkDone();
  }

  /** Send a signal to every live worker. */
  signal(signal: NodeJS.Signals): void {
    for (const slot of this.slots) {
      // `worker.kill()` would disconnect first; a plain signal lets the worker close its sessions.
      if (slot.worker?.isDead() === false) slot.worker.process.kill(signal);
    }
  }

  private fork(slot: Slot): void {
    slot.restartTimer = undefined;
    slot.listening = false;
    slot.failure = undefined;
    const worker = cluster.fork(workerEnv({
      slot: slot.n, count: this.count, firstSession: this.nextFirstSession(slot), cookieSecret: this.cookieSecret,
    }));
    slot.started = true;
    slot.worker = worker;
    const pid = worker.process.pid;
    this.log.info({ worker: slot.n, workerPid: pid }, `worker ${slot.n} started (pid ${pid})`);
    worker.on('message', (m: WorkerMessage) => this.onMessage(slot, m));
    worker.on('error', (err) => this.log.warn({ worker: slot.n, err: err.message }, `worker ${slot.n}: ${err.message}`));
    worker.on('exit', (code, signal) => this.onExit(slot, pid, code, signal));
  }

  /** A first start begins at the slot's number; a restart well past the last id reported. */
  private nextFirstSession(slot: Slot): number {
    const first = slot.lastSessionId + this.count;
    return slot.started ? first + ID_MARGIN * this.count : first;
  }

  private onMessage(slot: Slot, m: WorkerMessage): void {
    switch (m.type) {
      case 'session':
        if (m.id > slot.lastSessionId) slot.lastSessionId = m.id;
        break;
      case 'listening':
        slot.listening = true;
        if (this.state === 'starting') {
          this.addresses = m.addresses;
          if (this.slots.every((s) => s.listening)) {
            this.state = 'running';
            this.settleStart?.(this.addresses);
          }
        } else {
          this.log.info({ worker: slot.n }, `worker ${slot.n} listening again`);
        }
        break;
      case 'error':
        slot.failure = new CliError(m.code, m.message, m.hint, m.exitCode);
        if (this.state === 'running') this.log.error({ worker: slot.n }, `worker ${slot.n} could not start: ${m.message}`);
        break;
    }
  }

  private onExit(slot: Slot, pid: number | undefined, code: number | null, signal: string | null): void {
    slot.worker = undefined;
    slot.listening = false;
    const how = signal ? `killed by ${signal}` : `exit code ${code}`;
    if (this.state === 'stopping') {
      this.log.info({ worker: slot.n, workerPid: pid, code, signal }, `worker ${slot.n} (pid ${pid}) exited (${how})`);
      this.checkDone();
      return;
    }
    if (this.state === 'starting') {
      this.startFailure = slot.failure
        ?? new CliError('TSOCK_CLI_STARTUP', `worker ${slot.n} (pid ${pid}) ended (${how}) before it was listening`, 'see the lines above', 1);
      this.stop(this.startFailure.exitCode, `worker ${slot.n} (pid ${pid}) could not start: stopping the other workers`, 'debug');
      return;
    }
    const now = Date.now();
    this.deaths = this.deaths.filter((t) => now - t < RESTART_WINDOW_MS);
    this.deaths.push(now);
    const fields = { worker: slot.n, workerPid: pid, code, signal };
    if (this.deaths.length > MAX_RESTARTS) {
      this.log.error(fields, `worker ${slot.n} (pid ${pid}) died (${how})`);
      this.stop(1, `workers died ${this.deaths.length} times within ${RESTART_WINDOW_MS / 1000} s: not restarting; stopping the other workers and exiting`, 'error');
      return;
    }
    this.log.error(fields, `worker ${slot.n} (pid ${pid}) died (${how}); restarting it in ${RESTART_DELAY_MS / 1000} s`);
    slot.restartTimer = setTimeout(() => this.fork(slot), RESTART_DELAY_MS);
  }

  private checkDone(): void {
    if (this.state !== 'stopping' || this.slots.some((s) => s.worker !== undefined)) return;
    clearTimeout(this.stopTimer);
    this.resolveDone(this.exitCode);
  }
}

function installSignals(pool: WorkerPool, logging: CliLogger, log: Logger, cli: CliOptions, daemonChild: boolean): () => void {
  let signalled = false;
  const onStop = (signal: NodeJS.Signals): void => {
    if (signalled) {
      // A second signal: the operator does not want to wait for sessions to close.
      pool.signal('SIGKILL');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    signalled = true;
    pool.stop(0, `${signal} received: stopping the workers (each closes its sessions) and exiting`);
  };
  const onHup = (): void => {
    logging.reopen();
    pool.signal('SIGHUP');
    log.info('SIGHUP: log file re-opened; passed on to the workers');
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  // As in one process: SIGHUP keeps its default (terminate) unless there is a log file to
  // re-open or we are a daemon. The workers then exit with us (their IPC channel closes).
  const handleHup = cli.log.file !== undefined || daemonChild;
  if (handleHup) process.on('SIGHUP', onHup);
  return () => {
    process.removeListener('SIGTERM', onStop);
    process.removeListener('SIGINT', onStop);
    if (handleHup) process.removeListener('SIGHUP', onHup);
  };
}
