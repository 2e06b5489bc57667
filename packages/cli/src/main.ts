/**
 * The `tsockify` command: argv → CliOptions → core options → a running server → exit code.
 *
 * `main` returns the exit code instead of calling process.exit, so it can be driven from
 * tests; only the signal path forces an exit, and only when something still holds the
 * event loop after the graceful close.
 *
 * With `--workers N` (N > 1) the same argv leads three ways: the process started becomes the
 * primary (`workers.ts`), each process it forks is a worker that serves (`serve.ts`), and a
 * `-D` daemon's background copy is the primary.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { parseArgs, type CliOptions } from './args.js';
import { CliError, StartupError, formatCliError } from './errors.js';
import { helpText } from './help.js';
import { daemonize, isDaemonChild, reportToParent } from './daemon.js';
import { leavePrimary, sendToPrimary, takeWorkerRole } from './worker.js';

/** What `main` touches outside itself; tests pass their own. */
export interface MainIo {
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean; fd?: number };
  env: NodeJS.ProcessEnv;
  cwd: string;
  pid: number;
  /** Install SIGTERM/SIGINT/SIGHUP handlers (the real command does; in-process tests do not). */
  signals: boolean;
}

export function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function main(argv: string[], ioOverrides: Partial<MainIo> = {}): Promise<number> {
  const io: MainIo = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    pid: process.pid,
    signals: true,
    ...ioOverrides,
  };
  // `tsockify token sign|verify|keygen`: its own small command, loaded on demand.
  if (argv[0] === 'token') {
    const { runTokenCommand } = await import('./token-command.js');
    return runTokenCommand(argv.slice(1), io);
  }
  // A worker forked by a `--workers` primary serves; the primary reports for it.
  const worker = takeWorkerRole(io.env);
  const daemonChild = worker === undefined && isDaemonChild(io.env);
  const fail = async (err: CliError): Promise<number> => {
    if (worker) {
      // The primary prints it once, instead of every worker printing it.
      await sendToPrimary({ type: 'error', code: err.code, message: err.message, hint: err.hint, exitCode: err.exitCode });
      leavePrimary();
      return err.exitCode;
    }
    const text = formatCliError(err);
    io.stderr.write(`${text}\n`);
    if (daemonChild) reportToParent({ type: 'error', text, exitCode: err.exitCode });
    return err.exitCode;
  };

  let cli: CliOptions;
  try {
    const parsed = parseArgs(argv, { env: io.env, pid: io.pid, cwd: io.cwd });
    if (parsed.kind === 'help') { io.stdout.write(helpText()); return 0; }
    if (parsed.kind === 'version') { io.stdout.write(`tsockify ${version()}\n`); return 0; }
    cli = parsed.options;
  } catch (err) {
    if (err instanceof CliError) return fail(err);
    throw err;
  }

  if (cli.daemon && !daemonChild && !worker) {
    return daemonize(argv, { logFile: cli.log.file, cwd: io.cwd, env: io.env, stderr: io.stderr });
  }

  try {
    if (cli.workers > 1 && !worker) {
      const { runPrimary } = await import('./workers.js');
      return await runPrimary(cli, argv, io, daemonChild);
    }
    // The server side is loaded only now, so that usage errors and --help answer quickly.
    const { runServer } = await import('./serve.js');
    return await runServer(cli, io, daemonChild, worker);
  } catch (err) {
    if (err instanceof CliError) return fail(err);
    // The core's InvalidOptionError and ListenError messages already say what and how.
    if (isTsockifyError(err)) return fail(new StartupError(err.message, undefined, { cause: err }));
    throw err;
  }
}

/** The core's TsockifyError, told by its code so that the core is not loaded up front. */
function isTsockifyError(err: unknown): err is Error & { code: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && code.startsWith('TSOCK_ERR_');
}
