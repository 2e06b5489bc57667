/**
 * The CLI's logger (the library only takes one): pino, to stderr as websockify logs to
 * stderr (stdout stays free for `--traffic`), plus `--log-file` and `--syslog`.
 *
 * Each destination picks its format: `--log-format` when given, otherwise pretty on a
 * terminal and JSON lines elsewhere (a file, a pipe, journald). Secrets are redacted by
 * name at any depth pino can express, and `token=` query values are scrubbed from strings.
 */
import type { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger as PinoLogger, type StreamEntry } from 'pino';
import type { CliOptions } from './args.js';
import { StartupError } from './errors.js';

export type LogFormat = 'pretty' | 'json';

export interface LoggerSettings {
  verbose: boolean;
  format: LogFormat | undefined;
  file: string | undefined;
  syslog: string | undefined;
  legacySyslog: boolean;
  /** Where console logs go (stderr); undefined writes none (a daemon's console is /dev/null). */
  console: (Writable & { isTTY?: boolean; fd?: number }) | undefined;
  /** The daemon facility for syslog, as websockify picks LOG_DAEMON with --daemon. */
  daemon: boolean;
}

export interface CliLogger {
  logger: PinoLogger;
  /** Re-open `--log-file` (SIGHUP after logrotate moved it). */
  reopen(): void;
  /** Flush and release the destinations. */
  close(): void;
}

/** Field names whose values never reach a log, compared without case. */
const SECRET_KEYS = new Set([
  'token', 'password', 'passphrase', 'keypassword', 'secret',
  'authorization', 'proxy-authorization', 'cookie', 'set-cookie',
]);

/** How deep `scrubObject` looks for secret fields (log objects here are shallow). */
const MAX_DEPTH = 4;

/** Replace the value of any `token=` query parameter in a string. */
export function scrubTokens(text: string): string {
  return text.replace(/([?&;]token=)[^&;#\s"']*/gi, '$1[redacted]');
}

/**
 * Redact secret fields (by name, any case, down to MAX_DEPTH levels) and `token=` values in
 * strings. Copies only what it changes. One pass over the log object: pino's path-based
 * `redact` with wildcards for every depth cost about a tenth of session-setup CPU.
 */
export function scrubObject(obj: Record<string, unknown>, depth = 0): Record<string, unknown> {
  let out = obj;
  for (const k in obj) {
    const v = obj[k];
    let clean: unknown = v;
    if (SECRET_KEYS.has(k.toLowerCase())) clean = '[redacted]';
    else if (typeof v === 'string') { if (/token=/i.test(v)) clean = scrubTokens(v); }
    else if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth + 1 < MAX_DEPTH && !(v instanceof Error)) {
      clean = scrubObject(v as Record<string, unknown>, depth + 1);
    }
    if (clean !== v) {
      if (out === obj) out = { ...obj };
      out[k] = clean;
    }
  }
  return out;
}

type PrettyFactory = (options: import('pino-pretty').PrettyOptions) => unknown;

function prettyStream(pinoPretty: PrettyFactory, destination: DestinationStream | number, colorize: boolean): DestinationStream {
  return pinoPretty({
    colorize,
    destination: destination as never,
    sync: true,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname,name',
    singleLine: true,
    // By default pino-pretty shows `err`/`error` only as Error objects with a stack; ours are
    // short strings (why a session failed), which it would drop.
    errorLikeObjectKeys: [],
  }) as unknown as DestinationStream;
}

/**
 * The command's logger as its options say, for every process the command runs (single, primary,
 * worker). `console` is stderr, or undefined where stderr is /dev/null (a daemon).
 */
export function loggerForCommand(cli: Pick<CliOptions, 'verbose' | 'log' | 'daemon'>, console: LoggerSettings['console']): Promise<CliLogger> {
  const { format, file, syslog, legacySyslog } = cli.log;
  return createCliLogger({ verbose: cli.verbose, format, file, syslog, legacySyslog, console, daemon: cli.daemon });
}

export async function createCliLogger(settings: LoggerSettings): Promise<CliLogger> {
  const level = settings.verbose ? 'debug' : 'info';
  const streams: StreamEntry[] = [];
  const closers: Array<() => void> = [];
  let fileDest: ReturnType<typeof pino.destination> | undefined;
  const wantsPretty = settings.format === 'pretty' || (settings.format === undefined && settings.console?.isTTY === true);
  const pretty: PrettyFactory | undefined = wantsPretty ? (await import('pino-pretty')).default : undefined;

  if (settings.console) {
    const tty = settings.console.isTTY === true;
    const format = settings.format ?? (tty ? 'pretty' : 'json');
    const raw = settings.console.fd !== undefined ? pino.destination({ fd: settings.console.fd, sync: true }) : (settings.console as unknown as DestinationStream);
    streams.push({ level, stream: format === 'pretty' ? prettyStream(pretty!, raw, tty) : raw });
  }
  if (settings.file) {
    try {
      fileDest = pino.destination({ dest: settings.file, append: true, sync: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new StartupError(`cannot open --log-file "${settings.file}": ${e.code ?? e.message}`, 'check that its folder exists and is writable', { cause: err });
    }
    const dest = fileDest;
    closers.push(() => dest.flushSync());
    streams.push({ level, stream: settings.format === 'pretty' ? prettyStream(pretty!, dest, false) : dest });
  }
  if (settings.syslog) {
    let stream: Writable;
    try {
      // Loaded on demand, like the pretty printer.
      const { createSyslogStream } = await import('./syslog.js');
      stream = createSyslogStream(settings.syslog, { legacy: settings.legacySyslog, facility: settings.daemon ? 'daemon' : 'user' });
    } catch (err) {
      throw new StartupError(`cannot log to --syslog "${settings.syslog}": ${(err as Error).message}`, 'give a socket path such as /dev/log or a UDP host:port', { cause: err });
    }
    closers.push(() => stream.end());
    streams.push({ level, stream: stream as unknown as DestinationStream });
  }

  const logger = pino(
    {
      name: 'tsockify',
      level,
      formatters: { log: (obj) => scrubObject(obj) },
      hooks: {
        logMethod(args, method) {
          const clean = args.map((a: unknown) => (typeof a === 'string' ? scrubTokens(a) : a));
          return method.apply(this, clean as Parameters<typeof method>);
        },
      },
    },
    pino.multistream(streams),
  );
  return {
    logger,
    reopen: () => fileDest?.reopen(),
    close: () => { for (const c of closers) c(); },
  };
}
