/**
 * argv → a typed `CliOptions`, with websockify's positional forms, checks and messages.
 *
 * Tokenizing (prefixes, `=`/space, clusters, `--`) is in `tokenize.ts`, hand-written because
 * yargs fights optparse semantics (see there). This file applies websockify_init()'s checks
 * in websockify's order, so the same bad command line gets the same first complaint, then
 * tsockify's own checks. Nothing here touches the network; the only outside facts it reads
 * are the environment (systemd socket activation), whether the `--cert` file exists
 * (`--ssl-only`) and the CPU count (`--workers auto`), all injectable for tests.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from './errors.js';
import { tokenize, parseOptparseInt, type FlagValue } from './tokenize.js';
import { systemdListenFd } from './activation.js';

export { tokenize, matchLongName } from './tokenize.js';

/** Where tsockify listens. */
export type ListenSpec =
  /** TCP; `host` undefined means every interface, IPv4 and IPv6. */
  | { kind: 'tcp'; host: string | undefined; port: number }
  | { kind: 'unix'; path: string; mode: number }
  /** An inherited listening socket: fd 0 with `--inetd`, fd 3 from systemd (LISTEN_FDS). */
  | { kind: 'fd'; fd: number; from: 'inetd' | 'systemd' };

/** Where sessions go. */
export type TargetSpec =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string }
  /** Chosen per connection by a token plugin. `fromTargetConfig`: set by the deprecated `--target-config`. */
  | { kind: 'token'; plugin: string; source: string | undefined; fromTargetConfig: boolean }
  /** Wrap mode without `--wrap-target`: a free port on 127.0.0.1, picked at startup and handed to the command. */
  | { kind: 'wrap-auto' };

export type WrapMode = 'exit' | 'ignore' | 'respawn';
export type SslVersion = 'default' | 'tlsv1_1' | 'tlsv1_2' | 'tlsv1_3';

export interface CliOptions {
  listen: ListenSpec;
  /** The `[source_addr:]source_port` given while a systemd socket was inherited: not used, logged. */
  ignoredSource: string | undefined;
  preferIpv6: boolean;
  target: TargetSpec;
  /** Wrap mode: the command after `--` and what to do when it exits. */
  wrap: { command: string[]; mode: WrapMode } | undefined;
  hostToken: boolean;
  auth: { plugin: string; source: string | undefined } | undefined;
  tls: {
    /** The certificate file; TLS is on only if it exists (websockify's rule). */
    cert: string;
    /** False when `--cert` was not given and `cert` is the default `self.pem`. */
    certGiven: boolean;
    key: string | undefined;
    keyPassword: string | undefined;
    sslOnly: boolean;
    verifyClient: boolean;
    cafile: string | undefined;
    sslVersion: SslVersion;
    ciphers: string | undefined;
  };
  /** Set with `--ssl-target`. */
  targetTls: { caFile: string | undefined; fingerprint256: string | undefined } | undefined;
  web: { root: string | undefined; index: string | undefined; fileOnly: boolean; auth: boolean; viewer: boolean };
  record: string | undefined;
  traffic: boolean;
  verbose: boolean;
  log: { format: 'pretty' | 'json' | undefined; file: string | undefined; syslog: string | undefined; legacySyslog: boolean };
  daemon: boolean;
  runOnce: boolean;
  /** Seconds; 0 = off. */
  timeout: number;
  idleTimeout: number;
  heartbeat: number;
  /** `--allow-target` entries, in order, and the special-address overrides. */
  targets: { allow: string[] | undefined; allowLoopback: boolean; allowLinkLocal: boolean };
  /** `--cookie-exchange`: the page path and cookie name (undefined = the defaults). */
  cookieExchange: { path: string | undefined; cookieName: string | undefined; secretFile: string | undefined } | undefined;
  /** Seconds. */
  pluginTimeout: number | undefined;
  maxMessageSize: number | undefined;
  /** Seconds. */
  connectTimeout: number | undefined;
  handshakeTimeout: number | undefined;
  maxConnections: number | undefined;
  maxConnectionsPerClient: number | undefined;
  /** Seconds. */
  sessionIdleTimeout: number | undefined;
  /** Processes that serve (`--workers`, `auto` resolved); 1 = this process alone, no cluster. */
  workers: number;
  /** Things to log once the logger exists (deprecated or ignored flags). */
  warnings: string[];
}

export type ParseResult = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; options: CliOptions };

export interface ParseContext {
  env?: NodeJS.ProcessEnv;
  pid?: number;
  cwd?: string;
  fileExists?: (file: string) => boolean;
  /** What `--workers auto` means (default: os.availableParallelism()). */
  cpuCount?: () => number;
}

const USAGE_HINT = "see 'tsockify --help' for the usage forms";

export function parseArgs(argv: readonly string[], ctx: ParseContext = {}): ParseResult {
  const env = ctx.env ?? process.env;
  const pid = ctx.pid ?? process.pid;
  const cwd = ctx.cwd ?? process.cwd();
  const fileExists = ctx.fileExists ?? existsSync;

  const tokens = tokenize(argv);
  if (tokens.stop) return { kind: tokens.stop };
  const v = tokens.values;
  const str = (name: string): string | undefined => v.get(name) as string | undefined;
  const flag = (name: string): boolean => v.get(name) === true;
  const num = (name: string): number | undefined => v.get(name) as number | undefined;
  const warnings: string[] = [];

  // websockify_init()'s checks, in its order and with its words.
  if (str('token-source') !== undefined && str('token-plugin') === undefined) {
    throw new UsageError('You must use --token-plugin to use --token-source', 'add --token-plugin CLASS, e.g. --token-plugin TokenFile');
  }
  if (flag('host-token') && str('token-plugin') === undefined && str('target-config') === undefined) {
    throw new UsageError('You must use --token-plugin to use --host-token', 'add --token-plugin CLASS and --token-source ARG');
  }
  if (str('auth-source') !== undefined && str('auth-plugin') === undefined) {
    throw new UsageError('You must use --auth-plugin to use --auth-source', 'add --auth-plugin CLASS, e.g. --auth-plugin BasicHTTPAuth');
  }
  if (flag('web-auth') && str('auth-plugin') === undefined) {
    throw new UsageError('You must use --auth-plugin to use --web-auth', 'add --auth-plugin CLASS, or drop --web-auth');
  }
  if (flag('web-auth') && str('web') === undefined) {
    throw new UsageError('You must use --web to use --web-auth', 'add --web DIR, or drop --web-auth');
  }
  if (flag('legacy-syslog') && str('syslog') === undefined) {
    throw new UsageError('You must use --syslog to use --legacy-syslog', 'add --syslog SERVER, e.g. --syslog /dev/log');
  }
  const syslog = str('syslog');
  if (syslog !== undefined && syslog.includes(':')) {
    const portText = syslog.slice(syslog.lastIndexOf(':') + 1);
    if (parseOptparseInt(portText) === undefined) {
      throw new UsageError('Error parsing syslog port', `got "${syslog}"; expected HOST:PORT with a numeric port, or a socket path such as /dev/log`);
    }
  }

  // --target-config is the deprecated spelling of --token-plugin TokenFile --token-source FILE.
  let tokenPlugin = str('token-plugin');
  let tokenSource = str('token-source');
  let fromTargetConfig = false;
  const targetConfig = str('target-config');
  if (targetConfig !== undefined) {
    if (tokenPlugin !== undefined) warnings.push(`--target-config overrides --token-plugin ${tokenPlugin} (as in websockify); drop one of them`);
    warnings.push('--target-config is deprecated: use --token-plugin TokenFile --token-source FILE');
    tokenPlugin = 'TokenFile';
    tokenSource = path.resolve(cwd, targetConfig);
    fromTargetConfig = true;
  }

  const cert = str('cert') ?? 'self.pem';
  if (flag('ssl-only') && !fileExists(path.resolve(cwd, cert))) {
    throw new UsageError(`SSL only and ${cert} not found`, 'point --cert at your certificate (PEM), or drop --ssl-only');
  }

  // Positionals: [source] [target], or [source] -- COMMAND...
  const wrapCommand = tokens.afterDashDash !== undefined && tokens.afterDashDash.length > 0 ? tokens.afterDashDash : undefined;
  const positionals = [...tokens.positionals];
  if (wrapCommand && positionals.length === 0) {
    // websockify takes the source from the first argument after `--` too (`websockify -- 6080 cmd`).
    positionals.push(...wrapCommand.splice(0, 1));
  }
  const unixTarget = str('unix-target');
  const needsTarget = !(wrapCommand || unixTarget !== undefined || tokenPlugin !== undefined);

  let listen: ListenSpec;
  let ignoredSource: string | undefined;
  const systemdFd = flag('inetd') || str('unix-listen') !== undefined ? undefined : systemdListenFd(env, pid);
  if (flag('inetd')) {
    listen = { kind: 'fd', fd: 0, from: 'inetd' };
    if (str('unix-listen') !== undefined) warnings.push('--unix-listen is ignored with --inetd');
  } else if (str('unix-listen') !== undefined) {
    listen = { kind: 'unix', path: str('unix-listen')!, mode: parseUnixMode(str('unix-listen-mode')) };
  } else if (systemdFd !== undefined) {
    listen = { kind: 'fd', fd: systemdFd, from: 'systemd' };
    // The unit's command line may still name the port: it is optional here, and unused.
    const expected = needsTarget ? 1 : 0;
    if (positionals.length > expected) ignoredSource = positionals.shift();
  } else {
    if (positionals.length < 1) throw new UsageError('Too few arguments', `expected [source_addr:]source_port; ${USAGE_HINT}`);
    listen = parseSource(positionals.shift()!);
  }

  let target: TargetSpec;
  if (tokenPlugin !== undefined) {
    target = { kind: 'token', plugin: tokenPlugin, source: tokenSource, fromTargetConfig };
  } else if (unixTarget !== undefined) {
    target = { kind: 'unix', path: unixTarget };
  } else if (wrapCommand) {
    target = { kind: 'wrap-auto' };
  } else {
    if (positionals.length < 1) throw new UsageError('Too few arguments', `expected target_addr:target_port after the source port; ${USAGE_HINT}`);
    target = parseTarget(positionals.shift()!);
  }

  if (positionals.length > 0) {
    throw new UsageError(
      'Too many arguments',
      wrapCommand
        ? `unexpected "${positionals[0]}": in wrap mode only [source_addr:]source_port goes before --, the command after it`
        : `unexpected "${positionals[0]}"; ${needsTarget ? USAGE_HINT : 'a token plugin, --unix-target or a wrapped command chooses the target, so give no target_addr:target_port'}`,
    );
  }

  // tsockify's own checks.
  if (unixTarget !== undefined && tokenPlugin !== undefined) {
    throw new UsageError('--unix-target and --token-plugin cannot be combined', 'give one; a token plugin can return unix_socket:/path targets itself');
  }
  const wrapTarget = str('wrap-target');
  if (wrapTarget !== undefined) {
    if (!wrapCommand) throw new UsageError('You must use -- WRAP_COMMAND_LINE to use --wrap-target', 'put the command to run after --');
    if (target.kind !== 'wrap-auto') throw new UsageError('--wrap-target cannot be combined with --unix-target or --token-plugin', 'give one target');
    target = parseTarget(wrapTarget, '--wrap-target');
  }
  if (str('target-ca') !== undefined && !flag('ssl-target')) {
    throw new UsageError('You must use --ssl-target to use --target-ca', 'add --ssl-target');
  }
  if (str('target-fingerprint') !== undefined && !flag('ssl-target')) {
    throw new UsageError('You must use --ssl-target to use --target-fingerprint', 'add --ssl-target');
  }
  const fingerprint = str('target-fingerprint') === undefined ? undefined : normaliseFingerprint(str('target-fingerprint')!);
  if (str('web-index') !== undefined && str('web') === undefined) {
    throw new UsageError('You must use --web to use --web-index', 'add --web DIR, or drop --web-index');
  }
  if (flag('libserver')) warnings.push('--libserver is ignored: tsockify has one server engine');
  // The flag that turned the exchange on, for the messages (each of them implies --cookie-exchange).
  const cookieFlag = flag('cookie-exchange') ? '--cookie-exchange'
    : (['cookie-exchange-path', 'cookie-name', 'cookie-secret-file'] as const).map((n) => `--${n}`).find((n) => str(n.slice(2)) !== undefined);
  const cookieExchange = cookieFlag !== undefined;
  if (cookieExchange && target.kind !== 'token') {
    throw new UsageError(`You must use --token-plugin to use ${cookieFlag}`, 'the cookie holds a token: add --token-plugin CLASS');
  }
  if (cookieExchange && flag('host-token')) throw new UsageError(`${cookieFlag} cannot be combined with --host-token`, 'give one');
  const workersGiven = v.get('workers') as number | 'auto' | undefined;
  const workers = workersGiven === 'auto' ? Math.max(1, (ctx.cpuCount ?? os.availableParallelism)()) : workersGiven ?? 1;
  // `auto` is checked as if it were many, so that a command line is refused on every machine or on none.
  if (workersGiven === 'auto' || workers > 1) {
    checkWorkers({
      runOnce: flag('run-once'), timeout: num('timeout') ?? 0, idleTimeout: num('idle-timeout') ?? 0, listen, wrap: wrapCommand !== undefined,
    });
  }

  return {
    kind: 'run',
    options: {
      listen,
      ignoredSource,
      preferIpv6: flag('prefer-ipv6'),
      target,
      wrap: wrapCommand ? { command: wrapCommand, mode: (str('wrap-mode') ?? 'exit') as WrapMode } : undefined,
      hostToken: flag('host-token'),
      auth: str('auth-plugin') !== undefined ? { plugin: str('auth-plugin')!, source: str('auth-source') } : undefined,
      tls: {
        cert,
        certGiven: v.has('cert'),
        key: str('key'),
        keyPassword: str('key-password'),
        sslOnly: flag('ssl-only'),
        verifyClient: flag('verify-client'),
        cafile: str('cafile'),
        sslVersion: (str('ssl-version') ?? 'default') as SslVersion,
        ciphers: str('ssl-ciphers'),
      },
      targetTls: flag('ssl-target') ? { caFile: str('target-ca'), fingerprint256: fingerprint } : undefined,
      web: { root: str('web'), index: str('web-index'), fileOnly: flag('file-only'), auth: flag('web-auth'), viewer: flag('viewer') },
      record: str('record'),
      traffic: flag('traffic'),
      verbose: flag('verbose'),
      log: {
        format: str('log-format') as 'pretty' | 'json' | undefined,
        file: str('log-file'),
        syslog,
        legacySyslog: flag('legacy-syslog'),
      },
      daemon: flag('daemon'),
      runOnce: flag('run-once'),
      timeout: num('timeout') ?? 0,
      idleTimeout: num('idle-timeout') ?? 0,
      heartbeat: num('heartbeat') ?? 0,
      targets: {
        allow: str('allow-target')?.split('\n'),
        allowLoopback: flag('allow-loopback-targets'),
        allowLinkLocal: flag('allow-link-local-targets'),
      },
      cookieExchange: cookieExchange
        ? { path: str('cookie-exchange-path'), cookieName: str('cookie-name'), secretFile: str('cookie-secret-file') }
        : undefined,
      pluginTimeout: num('plugin-timeout'),
      maxMessageSize: num('max-message-size'),
      connectTimeout: num('connect-timeout'),
      handshakeTimeout: num('handshake-timeout'),
      maxConnections: num('max-connections'),
      maxConnectionsPerClient: num('max-connections-per-client'),
      sessionIdleTimeout: num('session-idle-timeout'),
      workers,
      warnings,
    },
  };
}

/**
 * What `--workers` cannot serve: options that end the whole process on what one process
 * saw, and sockets or commands only one process can own. (One-time tokens kept in memory
 * are refused later, once the token plugin says how it keeps them: workers.ts.)
 */
function checkWorkers(o: { runOnce: boolean; timeout: number; idleTimeout: number; listen: ListenSpec; wrap: boolean }): void {
  if (o.runOnce) throw new UsageError('--workers cannot be combined with --run-once', '--run-once serves one connection in one process: drop --workers');
  for (const [name, value] of [['--timeout', o.timeout], ['--idle-timeout', o.idleTimeout]] as const) {
    if (value > 0) {
      throw new UsageError(
        `--workers cannot be combined with ${name}`,
        `${name} decides when the process exits from the sessions it sees, and each worker sees only its own: drop --workers, or drop ${name} and stop tsockify with SIGTERM`,
      );
    }
  }
  if (o.listen.kind === 'fd' && o.listen.from === 'inetd') {
    throw new UsageError('--workers cannot be combined with --inetd', 'the workers cannot share the socket passed on fd 0: give [source_addr:]source_port instead of --inetd, or drop --workers');
  }
  if (o.listen.kind === 'fd') {
    throw new UsageError(
      '--workers cannot be combined with systemd socket activation (LISTEN_FDS)',
      'the workers cannot share the socket systemd passes: start tsockify without its .socket unit and give [source_addr:]source_port, or drop --workers',
    );
  }
  if (o.wrap) {
    throw new UsageError(
      '--workers cannot be combined with a wrapped command (-- COMMAND)',
      'every worker would start its own COMMAND: start it separately and give target_addr:target_port, or drop --workers',
    );
  }
}

/** Split on the LAST colon and strip brackets, as websockify does (`[::1]:6080`, `::1:6080`). */
function splitHostPort(arg: string): { host: string; portText: string } | undefined {
  const i = arg.lastIndexOf(':');
  if (i < 0) return undefined;
  return { host: stripBrackets(arg.slice(0, i)), portText: arg.slice(i + 1) };
}

/** Python's `str.strip('[]')`. */
function stripBrackets(s: string): string {
  return s.replace(/^[[\]]+|[[\]]+$/g, '');
}

function parsePort(text: string, min: number): number | undefined {
  const t = text.trim();
  if (!/^\+?\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n >= min && n <= 65535 ? n : undefined;
}

function parseSource(arg: string): ListenSpec {
  const split = splitHostPort(arg);
  const host = split ? split.host : '';
  const port = parsePort(split ? split.portText : arg, 0);
  if (port === undefined) {
    throw new UsageError('Error parsing listen port', `got "${arg}"; expected [source_addr:]source_port with a port from 0 to 65535, e.g. 6080 or 127.0.0.1:6080`);
  }
  return { kind: 'tcp', host: host === '' ? undefined : host, port };
}

function parseTarget(arg: string, what = 'target'): TargetSpec {
  const split = splitHostPort(arg);
  if (!split || split.host === '') {
    throw new UsageError(`Error parsing ${what}`, `got "${arg}"; expected target_addr:target_port, e.g. localhost:5901 or [::1]:5901`);
  }
  const port = parsePort(split.portText, 1);
  if (port === undefined) {
    throw new UsageError(`Error parsing ${what} port`, `got "${arg}"; the port must be a number from 1 to 65535`);
  }
  return { kind: 'tcp', host: split.host, port };
}

function parseUnixMode(text: string | undefined): number {
  if (text === undefined) return 0o600;
  const t = text.trim().replace(/^0o/i, '');
  if (!/^[0-7]+$/.test(t) || parseInt(t, 8) > 0o7777) {
    throw new UsageError('Error parsing listen unix socket mode', `got "${text}"; expected octal permissions such as 0600 or 660`);
  }
  return parseInt(t, 8);
}

/** `AB:CD:...` (upper case, colons) from hex with or without colons; what Node's `fingerprint256` looks like. */
function normaliseFingerprint(text: string): string {
  const hex = text.trim().replace(/^sha256\s*fingerprint\s*=\s*/i, '').replace(/[:\s]/g, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new UsageError(
      `invalid --target-fingerprint "${text}"`,
      'expected 64 hex digits (colons optional), as printed by: openssl x509 -noout -fingerprint -sha256 -in server.pem',
    );
  }
  return hex.toUpperCase().match(/../g)!.join(':');
}

export type { FlagValue };
