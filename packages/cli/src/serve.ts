/**
 * The running command: logger, core options, server, startup lines, wrapped command,
 * signals and the lifecycle that decides the exit code. Loaded by `main` after parsing.
 *
 * A `--workers` worker runs this too, with three differences: its primary prints the
 * startup lines and warnings (once for all workers), it hears of `listening` and of each
 * session id over IPC, and a second SIGTERM does not cut its graceful close short (the
 * primary decides when to stop waiting).
 */
import { createServer, formatTarget, primeAllocator, type Logger, type SessionCloseInfo, type SessionInfo, type TsockifyServer } from '@tsockify/core';
import path from 'node:path';
import type { CliOptions } from './args.js';
import { loggerForCommand, type CliLogger } from './logging.js';
import { buildCoreOptions, closePlugins } from './config.js';
import { reportToParent } from './daemon.js';
import { forgetActivationEnv, systemdFdCount } from './activation.js';
import { findRebind, pickFreePort, startWrappedCommand, type WrappedCommand } from './wrap.js';
import { runLifecycle } from './lifecycle.js';
import type { MainIo } from './main.js';
import { leavePrimary, sendToPrimary, type WorkerRole } from './worker.js';

export async function runServer(cli: CliOptions, io: MainIo, daemonChild: boolean, worker?: WorkerRole): Promise<number> {
  // A daemon's stderr is /dev/null or the log file, which has its own destination; so is the
  // stderr of a daemon's workers, inherited from it.
  const logging = await loggerForCommand(cli, daemonChild || (worker !== undefined && cli.daemon) ? undefined : io.stderr);
  try {
    return await serve(cli, io, logging, daemonChild, worker);
  } catch (err) {
    logging.close();
    throw err;
  }
}

async function serve(cli: CliOptions, io: MainIo, logging: CliLogger, daemonChild: boolean, worker: WorkerRole | undefined): Promise<number> {
  const log = (worker ? logging.logger.child({ worker: worker.slot }) : logging.logger) as unknown as Logger;
  if (!worker) for (const w of cli.warnings) log.warn(w);
  // On the thread pool while the server starts (packages/core/src/allocator.ts).
  const { skipped } = primeAllocator(io.env);
  if (skipped !== undefined) log.debug(`glibc trim threshold left as it is: ${skipped}`);

  const childEnv: NodeJS.ProcessEnv = { ...io.env };
  if (cli.listen.kind === 'fd' && cli.listen.from === 'systemd') {
    forgetActivationEnv(childEnv);
    if (cli.ignoredSource !== undefined) log.info(`using the socket passed by systemd (LISTEN_FDS); ignoring ${cli.ignoredSource}`);
    const n = systemdFdCount(io.env);
    if (n > 1) log.warn(`systemd passed ${n} sockets; only the first (fd 3) is used`);
  }

  let wrapTarget: { host: string; port: number } | undefined;
  if (cli.target.kind === 'wrap-auto') wrapTarget = { host: '127.0.0.1', port: await pickFreePort() };
  else if (cli.wrap && cli.target.kind === 'tcp') wrapTarget = { host: cli.target.host, port: cli.target.port };

  const built = await buildCoreOptions(cli, {
    cwd: io.cwd,
    logger: log,
    wrapTarget,
    ...(worker ? { sessionIds: { first: worker.firstSession, step: worker.count }, cookieSecret: worker.cookieSecret } : {}),
  });
  if (!worker) for (const w of built.warnings) log.warn(w);
  let server: TsockifyServer;
  try {
    server = createServer(built.options);
  } catch (err) {
    await closePlugins(built.options);
    throw err;
  }
  // Attach before any await: a listener error must not be an unhandled 'error' event.
  server.on('error', (err) => log.error({ err: err.message }, `server error: ${err.message}`));
  server.on('session', (info) => logSessionOpen(log, info));
  server.on('sessionClose', (info) => logSessionClose(log, info));
  if (worker) reportSessionIds(server);

  const dst = describeTarget(cli, wrapTarget);
  if (!worker) {
    log.info('WebSocket server settings:');
    log.info(describeListen(cli));
    for (const line of built.settings) log.info(line);
    if (cli.daemon) log.info('  - Backgrounding (daemon)');
  }

  let addresses: string[];
  try {
    addresses = await server.listen();
  } catch (err) {
    // Releases the plugins; the listen error is the one to report.
    await server.close().catch((closeErr: unknown) => log.debug({ err: String(closeErr) }, 'close after a failed listen'));
    throw err;
  }
  let wrapped: WrappedCommand | undefined;
  const lifecycle = runLifecycle(server, {
    runOnce: cli.runOnce,
    timeout: cli.timeout,
    idleTimeout: cli.idleTimeout,
    log,
    beforeClose: () => wrapped?.stop(),
    afterClose: () => logging.close(),
  });
  // Before the startup line: whoever reads it may signal us at once.
  const removeSignals = io.signals ? installSignals(server, lifecycle.shutdown, logging, log, cli, daemonChild, worker !== undefined) : () => {};

  if (worker) {
    log.debug({ addresses }, `worker ${worker.slot} listening`);
    await sendToPrimary({ type: 'listening', addresses });
    const code = await lifecycle.done;
    removeSignals();
    leavePrimary();
    return code;
  }
  const src = cli.listen.kind === 'fd' ? (cli.listen.from === 'inetd' ? 'inetd' : 'systemd socket') : addresses.join(', ');
  log.info(`  - proxying from ${src} to ${dst}${cli.targetTls ? ' (using SSL)' : ''}`);
  log.info({ addresses, target: dst, tls: built.tlsEnabled }, `tsockify: listening on ${addresses.join(', ')} proxying to ${dst}`);
  if (daemonChild) reportToParent({ type: 'ready', addresses });

  if (cli.wrap) {
    const rebindLib = cli.target.kind === 'wrap-auto' && cli.listen.kind === 'tcp' ? findRebind(io.env) : undefined;
    if (cli.target.kind === 'wrap-auto') {
      log.info(
        rebindLib
          ? `wrapped command: its bind on port ${server.port} is moved to ${wrapTarget!.port} by ${rebindLib}`
          : `wrapped command must listen on 127.0.0.1:${wrapTarget!.port} ($TSOCKIFY_TARGET_PORT); websockify's rebind.so was not found`,
      );
    }
    wrapped = startWrappedCommand({
      command: cli.wrap.command,
      mode: cli.wrap.mode,
      env: childEnv,
      target: cli.target.kind === 'unix' ? { unixSocket: path.resolve(io.cwd, cli.target.path) } : wrapTarget,
      ...(rebindLib ? { rebind: { library: rebindLib, listenPort: server.port } } : {}),
      stdinIgnore: cli.listen.kind === 'fd' && cli.listen.fd === 0,
      log,
      onExit: (status) => lifecycle.shutdown(status, `wrapped command exited with status ${status}: exiting (--wrap-mode exit)`),
    });
  }

  const code = await lifecycle.done;
  removeSignals();
  return code;
}

function installSignals(
  server: TsockifyServer,
  shutdown: (code: number, why: string) => void,
  logging: CliLogger,
  log: Logger,
  cli: CliOptions,
  daemonChild: boolean,
  inWorker: boolean,
): () => void {
  let signalled = false;
  const onStop = (signal: NodeJS.Signals): void => {
    // A worker may get the signal twice: from its primary and from whoever signalled the
    // whole process group (Ctrl-C, systemd's KillMode=control-group). The primary forces
    // the exit with SIGKILL when it stops waiting.
    if (signalled && inWorker) return;
    if (signalled) {
      // A second signal: the operator does not want to wait for sessions to close.
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    signalled = true;
    shutdown(0, `${signal} received: closing ${server.sessionCount} session(s) and exiting`);
    // If a socket still holds the event loop after the graceful close, do not hang.
    setTimeout(() => process.exit(0), 5000).unref();
  };
  const onHup = (): void => {
    logging.reopen();
    log.info('SIGHUP: log file re-opened');
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  // SIGHUP keeps its default (terminate) unless there is a log file to re-open or we are a
  // daemon (or a daemon's worker), as the primary of --workers decides it too.
  const handleHup = cli.log.file !== undefined || daemonChild || (inWorker && cli.daemon);
  if (handleHup) process.on('SIGHUP', onHup);
  return () => {
    process.removeListener('SIGTERM', onStop);
    process.removeListener('SIGINT', onStop);
    if (handleHup) process.removeListener('SIGHUP', onHup);
  };
}

export function describeListen(cli: CliOptions): string {
  switch (cli.listen.kind) {
    case 'tcp': return `  - Listen on ${cli.listen.host ?? ''}:${cli.listen.port}`;
    case 'unix': return `  - Listen on unix socket ${cli.listen.path}`;
    case 'fd': return cli.listen.from === 'inetd' ? '  - Listen for inetd connections' : '  - Listen on the socket passed by systemd (fd 3)';
  }
}

export function describeTarget(cli: CliOptions, wrapTarget: { host: string; port: number } | undefined): string {
  const t = cli.target;
  const base = t.kind === 'tcp' ? formatTarget({ host: t.host, port: t.port })
    : t.kind === 'unix' ? `unix:${t.path}`
      : t.kind === 'token' ? `targets generated by ${t.plugin}`
        : '';
  if (cli.wrap) return `'${cli.wrap.command.join(' ')}' (${t.kind === 'wrap-auto' ? `port ${wrapTarget!.port}` : base})`;
  return base;
}

/** Log lines carry the client, target and counts; never the token (the path has no query). */
function logSessionOpen(log: Logger, info: SessionInfo): void {
  const client = clientOf(info);
  log.info(
    { session: info.id, client, target: info.target, path: info.path, ...(info.meta ? { meta: info.meta } : {}) },
    `session ${info.id} opened: ${client} -> ${info.target}`,
  );
}

function logSessionClose(log: Logger, info: SessionCloseInfo): void {
  const client = clientOf(info);
  const seconds = (info.durationMs / 1000).toFixed(1);
  log.info(
    {
      session: info.id, client, target: info.target, code: info.code, reason: info.reason, initiator: info.initiator,
      bytesToTarget: info.bytesToTarget, bytesToClient: info.bytesToClient, durationMs: info.durationMs,
      ...(info.error ? { error: info.error } : {}), ...(info.meta ? { meta: info.meta } : {}),
    },
    `session ${info.id} closed: ${client} -> ${info.target}, ${info.code}${info.reason ? ` ${info.reason}` : ''} (${info.initiator}), ` +
      `${info.bytesToTarget} bytes to target, ${info.bytesToClient} bytes to client, ${seconds} s`,
  );
}

function clientOf(info: SessionInfo): string {
  // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; show them as IPv4.
  const addr = info.remoteAddress.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  return addr.includes(':') ? `[${addr}]:${info.remotePort}` : `${addr}:${info.remotePort}`;
}

/**
 * In a worker: tell the primary the highest session id used so far, at most once a second (a
 * message per session would cost the primary an IPC round per connection). A restarted worker
 * starts far enough past the last report (workers.ts, ID_MARGIN) to never reuse an id.
 */
function reportSessionIds(server: TsockifyServer): void {
  let highest = 0;
  let reported = 0;
  server.on('session', (info) => { if (info.id > highest) highest = info.id; });
  const timer = setInterval(() => {
    if (highest === reported) return;
    reported = highest;
    void sendToPrimary({ type: 'session', id: highest });
  }, SESSION_REPORT_MS);
  timer.unref();
  server.once('close', () => clearInterval(timer));
}

/** How often a worker reports its highest session id. */
const SESSION_REPORT_MS = 1000;
