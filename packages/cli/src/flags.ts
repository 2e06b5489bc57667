/**
 * The command-line flag table: every option tsockify accepts, in one place. The parser
 * (`args.ts`) and the help text (`help.ts`) are both driven by this table, so a flag added
 * here is parsed, listed in `--help` and covered by the tests that walk the table.
 *
 * The `websockify` group is websockify 0.13's optparse table, in its order, with its option
 * names, metavars, defaults and (where they are true of tsockify) its help texts. The
 * `tsockify` group is what tsockify adds.
 */

/** How a flag's value is read. `boolean` flags take no value. */
export type FlagType =
  | 'boolean'
  /** Any string. */
  | 'string'
  /** An optparse integer (decimal, 0x hex, 0b binary, leading-0 octal), >= 0. */
  | 'int'
  /** A non-negative decimal number (fractions allowed), e.g. seconds. */
  | 'seconds'
  /** A positive byte count, optionally with a k/m/g suffix (powers of 1024). */
  | 'bytes'
  /** An optparse integer >= 1, or `auto` (kept as the string; the parser decides what it means). */
  | 'count'
  /** One of `choices`. */
  | 'choice';

export type FlagGroup = 'websockify' | 'tsockify';

export interface FlagSpec {
  /** Long name without the dashes, e.g. `cert`. */
  readonly name: string;
  /** Single-letter short forms without the dash, e.g. `['v']`. */
  readonly short?: readonly string[];
  /** Other long names for the same flag (none today; kept for renames). */
  readonly aliases?: readonly string[];
  readonly type: FlagType;
  /** The value when the flag is absent (booleans default to false). */
  readonly default?: string | number;
  /** Placeholder for the value in `--help`; optparse uses the upper-cased option name. */
  readonly metavar?: string;
  readonly choices?: readonly string[];
  /** May be given several times; the values are kept in order (joined by newlines in the token map). */
  readonly repeatable?: boolean;
  readonly help: string;
  readonly group: FlagGroup;
}

/** The websockify options (0.13), in websockify's order. */
const WEBSOCKIFY_FLAGS: readonly FlagSpec[] = [
  { name: 'help', short: ['h'], type: 'boolean', group: 'websockify', help: 'show this help message and exit' },
  { name: 'verbose', short: ['v'], type: 'boolean', group: 'websockify', help: 'verbose messages (debug log level, one line per request)' },
  { name: 'traffic', type: 'boolean', group: 'websockify', help: 'per frame traffic' },
  { name: 'record', type: 'string', metavar: 'FILE', group: 'websockify', help: 'record sessions to FILE.[session_number]' },
  { name: 'daemon', short: ['D'], type: 'boolean', group: 'websockify', help: 'become a daemon (background process); startup errors are still reported here' },
  { name: 'run-once', type: 'boolean', group: 'websockify', help: 'handle a single WebSocket connection and exit' },
  { name: 'timeout', type: 'int', default: 0, metavar: 'TIMEOUT', group: 'websockify', help: 'after TIMEOUT seconds exit when not connected' },
  { name: 'idle-timeout', type: 'int', default: 0, metavar: 'IDLE_TIMEOUT', group: 'websockify', help: 'server exits after TIMEOUT seconds if there are no active connections' },
  { name: 'cert', type: 'string', default: 'self.pem', metavar: 'CERT', group: 'websockify', help: 'SSL certificate file (TLS is on when this file exists)' },
  { name: 'key', type: 'string', metavar: 'KEY', group: 'websockify', help: 'SSL key file (if separate from cert)' },
  { name: 'key-password', type: 'string', metavar: 'KEY_PASSWORD', group: 'websockify', help: 'SSL key password' },
  { name: 'ssl-only', type: 'boolean', group: 'websockify', help: 'disallow non-encrypted client connections' },
  { name: 'ssl-target', type: 'boolean', group: 'websockify', help: 'connect to SSL target as SSL client' },
  { name: 'verify-client', type: 'boolean', group: 'websockify', help: 'require encrypted client to present a valid certificate' },
  {
    name: 'cafile', type: 'string', metavar: 'FILE', group: 'websockify',
    help: 'file of concatenated certificates of authorities trusted for validating clients (only effective with --verify-client). If omitted, system default list of CAs is used.',
  },
  {
    name: 'ssl-version', type: 'choice', default: 'default', choices: ['default', 'tlsv1_1', 'tlsv1_2', 'tlsv1_3'],
    metavar: 'SSL_VERSION', group: 'websockify', help: 'minimum TLS version to use (default, tlsv1_1, tlsv1_2, tlsv1_3)',
  },
  {
    name: 'ssl-ciphers', type: 'string', metavar: 'SSL_CIPHERS', group: 'websockify',
    help: 'list of ciphers allowed for connection. For a list of supported ciphers run `openssl ciphers`',
  },
  { name: 'unix-listen', type: 'string', metavar: 'FILE', group: 'websockify', help: 'listen to unix socket' },
  { name: 'unix-listen-mode', type: 'string', metavar: 'UNIX_LISTEN_MODE', group: 'websockify', help: 'specify mode for unix socket (defaults to 0600)' },
  { name: 'unix-target', type: 'string', metavar: 'FILE', group: 'websockify', help: 'connect to unix socket target' },
  { name: 'inetd', type: 'boolean', group: 'websockify', help: 'inetd mode, receive listening socket from stdin' },
  { name: 'web', type: 'string', metavar: 'DIR', group: 'websockify', help: 'run webserver on same port. Serve files from DIR.' },
  { name: 'web-auth', type: 'boolean', group: 'websockify', help: 'require authentication to access webserver.' },
  {
    name: 'wrap-mode', type: 'choice', default: 'exit', choices: ['exit', 'ignore', 'respawn'], metavar: 'MODE', group: 'websockify',
    help: 'action to take when the wrapped program exits or daemonizes: exit (default), ignore, respawn',
  },
  { name: 'prefer-ipv6', short: ['6'], type: 'boolean', group: 'websockify', help: 'prefer IPv6 when resolving source_addr' },
  { name: 'libserver', type: 'boolean', group: 'websockify', help: 'accepted for compatibility and ignored (tsockify has one server engine)' },
  {
    name: 'target-config', type: 'string', metavar: 'FILE', group: 'websockify',
    help: "Configuration file containing valid targets in the form 'token: host:port' or, alternatively, a directory containing configuration files of this form (DEPRECATED: use `--token-plugin TokenFile --token-source path/to/token/file` instead)",
  },
  {
    name: 'token-plugin', type: 'string', metavar: 'CLASS', group: 'websockify',
    help: 'a built-in token plugin such as TokenFile, or the path or package name of a plugin module, to process tokens into host:port pairs',
  },
  { name: 'token-source', type: 'string', metavar: 'ARG', group: 'websockify', help: 'an argument to be passed to the token plugin on instantiation' },
  { name: 'host-token', type: 'boolean', group: 'websockify', help: 'use the host HTTP header as token instead of the token URL query parameter' },
  {
    name: 'auth-plugin', type: 'string', metavar: 'CLASS', group: 'websockify',
    help: 'a built-in auth plugin such as BasicHTTPAuth, or the path or package name of a plugin module, to determine if a connection is allowed',
  },
  { name: 'auth-source', type: 'string', metavar: 'ARG', group: 'websockify', help: 'an argument to be passed to the auth plugin on instantiation' },
  { name: 'heartbeat', type: 'int', default: 0, metavar: 'INTERVAL', group: 'websockify', help: 'send a ping to the client every INTERVAL seconds' },
  { name: 'log-file', type: 'string', metavar: 'FILE', group: 'websockify', help: 'File where logs will be saved (appended; SIGHUP re-opens it)' },
  {
    name: 'syslog', type: 'string', metavar: 'SERVER', group: 'websockify',
    help: 'Log to syslog server. SERVER can be local socket, such as /dev/log, or a UDP host:port pair.',
  },
  {
    name: 'legacy-syslog', type: 'boolean', group: 'websockify',
    help: 'Use the old syslog protocol instead of RFC 5424. Use this if the messages produced by tsockify seem abnormal.',
  },
  { name: 'file-only', type: 'boolean', group: 'websockify', help: 'use this to disable directory listings in web server.' },
];

/** What tsockify adds. */
const TSOCKIFY_FLAGS: readonly FlagSpec[] = [
  { name: 'version', type: 'boolean', group: 'tsockify', help: "show tsockify's version and exit" },
  { name: 'viewer', type: 'boolean', group: 'tsockify', help: 'serve the built-in noVNC viewer at / (connects back to this tsockify)' },
  { name: 'web-index', type: 'string', metavar: 'FILE', group: 'tsockify', help: 'file served for / when the --web DIR has no index.html, e.g. vnc.html' },
  {
    name: 'log-format', type: 'choice', choices: ['pretty', 'json'], metavar: 'FORMAT', group: 'tsockify',
    help: 'pretty (human-readable) or json (one JSON object a line); default: pretty on a terminal, json otherwise',
  },
  {
    name: 'max-message-size', type: 'bytes', metavar: 'BYTES', group: 'tsockify',
    help: 'largest WebSocket message accepted from a client; bigger ones close the session with 1009 (suffix k, m or g allowed; default 4m)',
  },
  { name: 'connect-timeout', type: 'seconds', metavar: 'SECONDS', group: 'tsockify', help: 'give up dialling the target after SECONDS (default 10)' },
  { name: 'handshake-timeout', type: 'seconds', metavar: 'SECONDS', group: 'tsockify', help: 'drop clients that take longer than SECONDS to send their request headers (default 5)' },
  {
    name: 'max-connections', type: 'int', metavar: 'N', group: 'tsockify',
    help: 'most sessions at once; more are refused with 503 (default 16384, 0 = no limit); with --workers, per worker',
  },
  {
    name: 'max-connections-per-client', type: 'int', metavar: 'N', group: 'tsockify',
    help: 'most sessions from one client address; more are refused with 429 (default 0 = no limit); with --workers, per worker',
  },
  {
    name: 'session-idle-timeout', type: 'seconds', metavar: 'SECONDS', group: 'tsockify',
    help: "close a session with 1000 'Idle timeout' after SECONDS without bytes either way (default 0 = off)",
  },
  {
    name: 'target-ca', type: 'string', metavar: 'FILE', group: 'tsockify',
    help: "with --ssl-target: trust the CA certificates (PEM) in FILE instead of the system's; a self-signed server certificate works here too",
  },
  {
    name: 'target-fingerprint', type: 'string', metavar: 'SHA256', group: 'tsockify',
    help: "with --ssl-target: accept exactly the server certificate with this SHA-256 fingerprint (hex, colons optional), whoever signed it",
  },
  {
    name: 'allow-target', type: 'string', metavar: 'CIDR[:PORTS]', group: 'tsockify', repeatable: true,
    help: 'only dial targets in this address range and port range, e.g. 10.0.0.0/8:5900-5999 or [fd00::]/8:5901 (repeatable); checked on the resolved address actually dialled; with a token plugin, loopback is then denied unless --allow-loopback-targets',
  },
  { name: 'allow-loopback-targets', type: 'boolean', group: 'tsockify', help: 'with a token plugin and --allow-target: also allow loopback addresses and unix socket targets' },
  { name: 'allow-link-local-targets', type: 'boolean', group: 'tsockify', help: 'with a token plugin: allow link-local targets (169.254/16, fe80::/10); cloud metadata addresses stay denied' },
  {
    name: 'cookie-exchange', type: 'boolean', group: 'tsockify',
    help: 'with a token plugin: a page request GET /?token=X is answered with an HttpOnly, SameSite=Strict cookie and a redirect to the page without the token; the WebSocket then authenticates by the cookie',
  },
  { name: 'cookie-exchange-path', type: 'string', metavar: 'PATH', group: 'tsockify', help: 'the page that trades ?token= for the cookie (default /; e.g. /vnc.html for noVNC); implies --cookie-exchange' },
  { name: 'cookie-name', type: 'string', metavar: 'NAME', group: 'tsockify', help: 'name of the --cookie-exchange cookie (default tsockify_token)' },
  { name: 'cookie-secret-file', type: 'string', metavar: 'FILE', group: 'tsockify', help: 'the key that seals --cookie-exchange cookies (at least 16 bytes; trailing whitespace ignored), shared by every gateway behind one load balancer; default: random per process, so cookies do not survive a restart; implies --cookie-exchange' },
  {
    name: 'workers', type: 'count', default: 1, metavar: 'N', group: 'tsockify',
    help: 'serve with N worker processes sharing the listening port, so sessions spread over CPU cores and open-file limits ' +
      '(auto = one per CPU; default 1 = one process). The connection limits apply to each worker',
  },
  { name: 'plugin-timeout', type: 'seconds', metavar: 'SECONDS', group: 'tsockify', help: 'answer 503 when a token or auth plugin takes longer than SECONDS (default 5)' },
  {
    name: 'wrap-target', type: 'string', metavar: 'HOST:PORT', group: 'tsockify',
    help: 'in wrap mode: where the wrapped command listens (default: a free port on 127.0.0.1, passed to the command as $TSOCKIFY_TARGET_PORT and through rebind.so when found)',
  },
];

export const FLAGS: readonly FlagSpec[] = [...WEBSOCKIFY_FLAGS, ...TSOCKIFY_FLAGS];

/**
 * Long names websockify itself knows. A prefix that websockify resolves to exactly one of
 * these keeps that meaning even when a tsockify flag shares it (`--log` stays `--log-file`
 * although `--log-format` exists), so existing scripts keep working.
 */
export const WEBSOCKIFY_LONG_NAMES: ReadonlySet<string> = new Set(
  WEBSOCKIFY_FLAGS.flatMap((f) => [f.name, ...(f.aliases ?? [])]),
);

/** The four invocation forms, as websockify 0.13 prints them. */
export const USAGE_LINES: readonly string[] = [
  '[options] [source_addr:]source_port target_addr:target_port',
  '[options] --token-plugin=CLASS [source_addr:]source_port',
  '[options] --unix-target=FILE [source_addr:]source_port',
  '[options] [source_addr:]source_port -- WRAP_COMMAND_LINE',
  'token sign|verify|keygen [options]   (see tsockify token --help)',
];

export function findFlag(longName: string): FlagSpec | undefined {
  return FLAGS.find((f) => f.name === longName || (f.aliases?.includes(longName) ?? false));
}

export function findShortFlag(letter: string): FlagSpec | undefined {
  return FLAGS.find((f) => f.short?.includes(letter) ?? false);
}
