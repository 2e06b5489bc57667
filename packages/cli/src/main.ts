/**
 * The `tsockify` command: argv → CliOptions → core options → a running server → exit code.
 *
 * `main` returns the exit code instead of calling process.exit, so it can be driven from
 * tests; only the signal path forces an exit, and only when something still holds the
 * event loop after the graceful close.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { parseArgs, type CliOptions } from './args.js';
import { CliError, formatCliError } from './errors.js';
import { helpText } from './help.js';
import { daemonize, isDaemonChild, reportToParent } from './daemon.js';

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
  const daemonChild = isDaemonChild(io.env);
  const fail = (text: string, code: number): number => {
    io.stderr.write(`${text}\n`);
    if (daemonChild) reportToParent({ type: 'error', text, exitCode: code });
    return code;
  };

  let cli: CliOptions;
  try {
    const parsed = parseArgs(argv, { env: io.env, pid: io.pid, cwd: io.cwd });
    if (parsed.kind === 'help') { io.stdout.write(helpText()); return 0; }
    if (parsed.kind === 'version') { io.stdout.write(`tsockify ${version()}\n`); return 0; }
    cli = parsed.options;
  } catch (err) {
    if (err instanceof CliError) return fail(formatCliError(err), err.exitCode);
    throw err;
  }

  if (cli.daemon && !daemonChild) {
    return daemonize(argv, { logFile: cli.log.file, cwd: io.cwd, env: io.env, stderr: io.stderr });
  }

  // The server side is loaded only now, so that usage errors and --help answer quickly.
  const { runServer } = await import('./serve.js');
  try {
    return await runServer(cli, io, daemonChild);
  } catch (err) {
    if (err instanceof CliError) return fail(formatCliError(err), err.exitCode);
    // The core's InvalidOptionError and ListenError messages already say what and how.
    if (isTsockifyError(err)) return fail(`tsockify: ${err.message}`, 1);
    throw err;
  }
}

/** The core's TsockifyError, told by its code so that the core is not loaded up front. */
function isTsockifyError(err: unknown): err is Error & { code: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && code.startsWith('TSOCK_ERR_');
}
