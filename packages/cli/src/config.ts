/**
 * CliOptions → the core's TsockifyOptions. Every file the options name is read or checked
 * here, at startup, and a failure names the flag and the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { AuthPlugin, Logger, ListenOptions, Target, TokenPlugin, TsockifyOptions } from '@tsockify/core';
import type { CliOptions, ListenSpec, SslVersion } from './args.js';
import { StartupError } from './errors.js';

const MIN_VERSION: Record<SslVersion, 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' | undefined> = {
  default: undefined,
  tlsv1_1: 'TLSv1.1',
  tlsv1_2: 'TLSv1.2',
  tlsv1_3: 'TLSv1.3',
};

/** What the caller must log about how the options were read (TLS off for want of a cert...). */
export interface BuiltConfig {
  options: TsockifyOptions;
  /** websockify's settings lines (`  - SSL/TLS support`...), for the startup log. */
  settings: string[];
  warnings: string[];
  tlsEnabled: boolean;
}

export interface BuildContext {
  cwd: string;
  logger: Logger;
  /** The target to use in wrap mode without `--wrap-target` (a free port picked by the caller). */
  wrapTarget?: { host: string; port: number };
  /** In a `--workers` worker: this worker's share of the session ids. */
  sessionIds?: { first: number; step: number };
  /** In a `--workers` worker: the cookie-sealing key the primary made for every worker. */
  cookieSecret?: Buffer;
}

/** Cookie keys shorter than this are refused (the core's own floor). */
const MIN_COOKIE_SECRET = 16;

/**
 * `--cookie-secret-file`: the file's bytes without trailing whitespace (a key written by
 * `echo` or an editor ends in a newline). A key others can read lets them seal cookies: warn.
 */
function readCookieSecret(file: string, cwd: string, warnings: string[]): Buffer {
  const raw = readOptionFile('--cookie-secret-file', file, cwd);
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d || raw[end - 1] === 0x20 || raw[end - 1] === 0x09)) end--;
  const key = raw.subarray(0, end);
  if (key.length < MIN_COOKIE_SECRET) {
    throw new StartupError(
      `--cookie-secret-file "${file}" holds ${key.length} bytes: a cookie key needs at least ${MIN_COOKIE_SECRET}`,
      'write 32 random bytes to it, e.g. head -c 32 /dev/urandom | base64 > FILE',
    );
  }
  const mode = fs.statSync(path.resolve(cwd, file)).mode;
  if ((mode & 0o077) !== 0) {
    warnings.push(`--cookie-secret-file "${file}" can be read by other users (mode ${(mode & 0o777).toString(8)}): whoever reads it can seal cookies; chmod 600 it`);
  }
  return key;
}

export function readOptionFile(flag: string, file: string, cwd: string): Buffer {
  const abs = path.resolve(cwd, file);
  try {
    return fs.readFileSync(abs);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a directory' : e.message;
    throw new StartupError(`cannot read ${flag} file "${file}": ${why}`, 'check the path and its permissions', { cause: err });
  }
}

export function listenOptions(listen: ListenSpec, preferIpv6: boolean): ListenOptions {
  switch (listen.kind) {
    case 'tcp': return { ...(listen.host !== undefined ? { host: listen.host } : {}), port: listen.port, preferIpv6 };
    case 'unix': return { unixPath: listen.path, unixMode: listen.mode };
    case 'fd': return { fd: listen.fd };
  }
}

export async function buildCoreOptions(cli: CliOptions, ctx: BuildContext): Promise<BuiltConfig> {
  const { cwd, logger } = ctx;
  const settings: string[] = [];
  const warnings: string[] = [];
  const options: TsockifyOptions = { listen: listenOptions(cli.listen, cli.preferIpv6), logger };

  if (cli.web.root !== undefined) {
    const root = path.resolve(cwd, cli.web.root);
    if (!isDirectory(root)) throw new StartupError(`--web directory "${cli.web.root}" not found`, 'give the folder to serve, e.g. --web /usr/share/novnc');
    settings.push(`  - Web server${cli.web.fileOnly ? ' (no directory listings)' : ''}. Web root: ${root}`);
    options.web = { root, fileOnly: cli.web.fileOnly, auth: cli.web.auth, ...(cli.web.index !== undefined ? { index: cli.web.index } : {}) };
  }
  if (cli.web.viewer) {
    let mounts;
    try {
      const { viewerMounts } = await import('@tsockify/viewer');
      // With --web the folder keeps `/` and the viewer moves to /viewer/.
      mounts = viewerMounts(cli.web.root !== undefined ? '/viewer/' : '/');
    } catch (err) {
      throw new StartupError(`cannot find the built-in viewer: ${(err as Error).message}`, 'reinstall tsockify (the @novnc/novnc package is missing)', { cause: err });
    }
    options.web = { ...(options.web ?? { fileOnly: cli.web.fileOnly }), mounts };
    settings.push(`  - Built-in viewer at ${cli.web.root !== undefined ? '/viewer/' : '/'}`);
  }

  // TLS is on when the certificate file exists, as in websockify (whose default is ./self.pem).
  const certPath = path.resolve(cwd, cli.tls.cert);
  let tlsEnabled = false;
  if (fs.existsSync(certPath)) {
    const cert = readOptionFile('--cert', cli.tls.cert, cwd);
    const key = cli.tls.key !== undefined ? readOptionFile('--key', cli.tls.key, cwd) : undefined;
    let ca: string | Buffer | undefined;
    if (cli.tls.cafile !== undefined) ca = readOptionFile('--cafile', cli.tls.cafile, cwd);
    else if (cli.tls.verifyClient) ca = tls.rootCertificates.join('\n'); // websockify: the system default CAs
    const minVersion = MIN_VERSION[cli.tls.sslVersion];
    const tlsOptions = {
      cert,
      ...(key !== undefined ? { key } : {}),
      ...(cli.tls.keyPassword !== undefined ? { passphrase: cli.tls.keyPassword } : {}),
      sslOnly: cli.tls.sslOnly,
      verifyClient: cli.tls.verifyClient,
      ...(ca !== undefined ? { ca } : {}),
      ...(minVersion !== undefined ? { minVersion } : {}),
      ...(cli.tls.ciphers !== undefined ? { ciphers: cli.tls.ciphers } : {}),
    };
    checkSecureContext(cli, tlsOptions);
    options.tls = tlsOptions;
    tlsEnabled = true;
    settings.push('  - SSL/TLS support');
    if (cli.tls.sslOnly) settings.push('  - Deny non-SSL/TLS connections');
  } else {
    settings.push('  - No SSL/TLS support (no cert file)');
    if (cli.tls.certGiven) warnings.push(`TLS is off: --cert file "${cli.tls.cert}" not found (websockify does the same; fix the path to enable wss://)`);
    for (const f of ['key', 'keyPassword', 'cafile', 'verifyClient', 'ciphers'] as const) {
      if (cli.tls[f]) warnings.push(`--${f === 'keyPassword' ? 'key-password' : f === 'verifyClient' ? 'verify-client' : f === 'ciphers' ? 'ssl-ciphers' : f} has no effect without a --cert file`);
    }
  }

  if (cli.targetTls) {
    const t = cli.targetTls;
    let ca: Buffer | undefined;
    if (t.caFile !== undefined) {
      ca = readOptionFile('--target-ca', t.caFile, cwd);
      try {
        new X509Certificate(ca);
      } catch {
        throw new StartupError(`--target-ca file "${t.caFile}" holds no PEM certificate`, 'give the CA or the server certificate in PEM form');
      }
    }
    options.targetTls = {
      ...(ca !== undefined ? { ca } : {}),
      ...(t.fingerprint256 !== undefined ? { fingerprint256: t.fingerprint256, checkServerIdentity: false } : {}),
    };
  }

  options.target = undefined;
  switch (cli.target.kind) {
    case 'tcp': options.target = { host: cli.target.host, port: cli.target.port } satisfies Target; break;
    case 'unix': options.target = { unixSocket: path.resolve(cwd, cli.target.path) }; break;
    case 'wrap-auto':
      if (!ctx.wrapTarget) throw new Error('wrap mode needs a target port');
      options.target = ctx.wrapTarget;
      break;
    case 'token': break; // loaded last, below
  }
  if (options.target === undefined) delete options.target;
  if (cli.hostToken) options.hostToken = true;

  if (cli.record !== undefined) {
    const record = path.resolve(cwd, cli.record);
    if (!isDirectory(path.dirname(record))) {
      throw new StartupError(`--record folder "${path.dirname(record)}" not found`, 'create it, or record elsewhere');
    }
    options.record = record;
    settings.push(`  - Recording to '${record}.*'`);
  }
  if (cli.traffic) options.traffic = true;
  if (cli.heartbeat > 0) options.heartbeatMs = cli.heartbeat * 1000;
  if (cli.maxMessageSize !== undefined) options.maxMessageSize = cli.maxMessageSize;
  // Checked by the core when the server is created (a bad entry names the grammar).
  if (cli.targets.allow !== undefined) options.allowTargets = cli.targets.allow;
  if (cli.targets.allowLoopback) options.allowLoopbackTargets = true;
  if (cli.targets.allowLinkLocal) options.allowLinkLocalTargets = true;
  if (cli.cookieExchange) {
    const { path: page, cookieName, secretFile } = cli.cookieExchange;
    const secret = secretFile !== undefined ? readCookieSecret(secretFile, ctx.cwd, warnings) : ctx.cookieSecret;
    options.cookieExchange = {
      ...(page !== undefined ? { path: page } : {}),
      ...(cookieName !== undefined ? { cookieName } : {}),
      ...(secret !== undefined ? { secret } : {}),
    };
    settings.push(`  - Cookie exchange at ${page ?? '/'}${secretFile !== undefined ? ` (key from ${secretFile})` : ''}`);
  }
  if (cli.pluginTimeout !== undefined) options.pluginTimeoutMs = Math.round(cli.pluginTimeout * 1000);
  if (cli.connectTimeout !== undefined) options.connectTimeoutMs = Math.round(cli.connectTimeout * 1000);
  if (cli.handshakeTimeout !== undefined) options.headersTimeoutMs = Math.round(cli.handshakeTimeout * 1000);
  if (cli.maxConnections !== undefined) options.maxConnections = cli.maxConnections;
  if (cli.maxConnectionsPerClient !== undefined) options.maxConnectionsPerClient = cli.maxConnectionsPerClient;
  if (cli.sessionIdleTimeout !== undefined) options.sessionIdleTimeoutMs = Math.round(cli.sessionIdleTimeout * 1000);
  if (ctx.sessionIds !== undefined) options.sessionIds = ctx.sessionIds;
  // Plugins last: they may open connections (Redis) that a later error would leave behind.
  if (cli.target.kind === 'token') options.tokenPlugin = await loadTokenPlugin(cli.target.plugin, cli.target.source, ctx);
  if (cli.auth) {
    try {
      options.authPlugin = await loadAuthPlugin(cli.auth.plugin, cli.auth.source, ctx);
    } catch (err) {
      await closePlugins(options);
      throw err;
    }
  }
  return { options, settings, warnings, tlsEnabled };
}

/** Release what the plugins hold when startup fails after they were made. */
export async function closePlugins(options: TsockifyOptions): Promise<void> {
  for (const p of [options.tokenPlugin, options.authPlugin]) {
    try {
      await p?.close?.();
    } catch {
      // Startup already failed; that error is the one to report.
    }
  }
}

/** Fail at startup, naming the files, when the key does not fit the certificate or the password is wrong. */
function checkSecureContext(cli: CliOptions, t: { cert: Buffer; key?: Buffer; passphrase?: string; ciphers?: string; minVersion?: string }): void {
  try {
    tls.createSecureContext({
      cert: t.cert,
      key: t.key ?? t.cert,
      ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}),
    });
  } catch (err) {
    const files = cli.tls.key !== undefined ? `--cert "${cli.tls.cert}" / --key "${cli.tls.key}"` : `--cert "${cli.tls.cert}"`;
    const msg = (err as Error).message;
    const hint = /bad decrypt|bad password|passphrase/i.test(msg)
      ? 'the --key-password is wrong or missing'
      : cli.tls.key === undefined
        ? 'the file must hold the certificate and its private key in PEM form, or give the key with --key'
        : 'the key must be the private key of the certificate, both in PEM form';
    throw new StartupError(`cannot use ${files}: ${msg}`, hint, { cause: err });
  }
  if (t.ciphers !== undefined) {
    try {
      tls.createSecureContext({ ciphers: t.ciphers });
    } catch (err) {
      throw new StartupError(`invalid --ssl-ciphers "${t.ciphers}": ${(err as Error).message}`, 'see `openssl ciphers` for the names', { cause: err });
    }
  }
}

async function loadTokenPlugin(name: string, source: string | undefined, ctx: BuildContext): Promise<TokenPlugin> {
  // Loaded on demand: the plugins pull in HTTP, JWT and Redis clients.
  const { createTokenPlugin } = await import('@tsockify/auth-plugins');
  try {
    return await createTokenPlugin(name, source, { logger: ctx.logger, cwd: ctx.cwd });
  } catch (err) {
    throw new StartupError(`cannot start --token-plugin ${name}: ${(err as Error).message}`, 'check --token-plugin and --token-source', { cause: err });
  }
}

async function loadAuthPlugin(name: string, source: string | undefined, ctx: BuildContext): Promise<AuthPlugin> {
  const { createAuthPlugin } = await import('@tsockify/auth-plugins');
  try {
    return await createAuthPlugin(name, source, { logger: ctx.logger, cwd: ctx.cwd });
  } catch (err) {
    throw new StartupError(`cannot start --auth-plugin ${name}: ${(err as Error).message}`, 'check --auth-plugin and --auth-source', { cause: err });
  }
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
