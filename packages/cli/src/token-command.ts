/**
 * `tsockify token sign|verify|keygen`: mint, explain and make keys for tsockify's signed
 * tokens (the `SignedToken` plugin; format in docs/tokens.md). A thin adapter over
 * `signToken` / `verifyToken` / `generateKey` from @tsockify/auth-plugins.
 *
 * Exit codes: 0 done (verify: the token is valid), 1 verify: the token is refused,
 * 2 usage or key problem (bad flag, unreadable keys, no key to sign with).
 */
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { MainIo } from './main.js';

const HELP = `Usage:
    tsockify token sign   --keys KEYS [--kid KID] --host HOST --port PORT [--sub USER]
                          [--iid INSTANCE] [--jti ID] [--ttl SECONDS | --exp UNIX_TIME]
                          [--url BASE_URL] [--print all|token|viewer|novnc]
    tsockify token verify --keys KEYS [--max-lifetime SECONDS] [--clock-skew SECONDS]
                          [--require sub,iid] [--now UNIX_TIME] TOKEN|-
    tsockify token keygen [--alg hs256|ed25519] [--kid KID] [--out FILE]

Tokens are tsockify's signed tokens, v1.KID.CLAIMS.SIGNATURE (docs/tokens.md), checked by
--token-plugin SignedToken --token-source KEYS[:MAX_LIFETIME[:once]].

KEYS is a keys file, or a directory of keys files, with lines "kid: hs256:SECRET",
"kid: ed25519:PUBLIC" (verify only) or "kid: ed25519-private:SEED" (sign).

sign     mint a token and print it with ready URLs for the built-in viewer (--viewer) and
         noVNC (--web): BASE_URL/?token=... and BASE_URL/vnc.html?path=websockify%3Ftoken%3D...
         --ttl defaults to 300 seconds; --url to http://localhost:6080/.
verify   check a token (- reads it from stdin) and say why it fails: expired and since
         when, bad signature, unknown key id, malformed, which claim is missing.
keygen   print a new key line: hs256 (default) for the portal and tsockify alike; ed25519
         prints a signing line for the portal and a verifying line for tsockify, which then
         cannot mint. --out FILE writes the signing line to FILE (mode 0600) and, for
         ed25519, the verifying line to FILE.pub.

Exit codes: 0 done (verify: valid), 1 verify: the token is refused, 2 usage or key error.
`;

type Io = Pick<MainIo, 'stdout' | 'stderr' | 'cwd'> & { stdin?: NodeJS.ReadableStream };

class TokenUsageError extends Error {}

export async function runTokenCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      io.stdout.write(HELP);
      return sub === undefined ? 2 : 0;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(HELP);
      return 0;
    }
    switch (sub) {
      case 'sign': return await sign(rest, io);
      case 'verify': return await verify(rest, io);
      case 'keygen': return await keygen(rest, io);
      default: throw new TokenUsageError(`unknown token command "${sub}": expected sign, verify or keygen`);
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    if (err instanceof TokenUsageError || e.code === 'TSOCK_ERR_INVALID_OPTION' || e.code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`tsockify token: ${e.message} (see 'tsockify token --help')\n`);
      return 2;
    }
    throw err;
  }
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, positionals = false) {
  return parseArgs({ args, options, strict: true, allowPositionals: positionals });
}

function int(name: string, text: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new TokenUsageError(`invalid --${name} "${text}": expected a whole number from ${min} to ${max}`);
  return Number(text);
}

async function loadKeys(keysPath: string | undefined, io: Io) {
  if (keysPath === undefined) throw new TokenUsageError('--keys KEYS is required (a keys file or directory)');
  const { loadKeyRing } = await import('@tsockify/auth-plugins');
  return loadKeyRing(path.resolve(io.cwd, keysPath));
}

async function sign(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    keys: { type: 'string' }, kid: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
    sub: { type: 'string' }, iid: { type: 'string' }, jti: { type: 'string' }, ttl: { type: 'string' }, exp: { type: 'string' },
    url: { type: 'string' }, print: { type: 'string' },
  });
  if (values.host === undefined) throw new TokenUsageError('--host HOST is required (the VNC server the token opens)');
  const port = int('port', values.port, 1, 65535);
  if (port === undefined) throw new TokenUsageError('--port PORT is required');
  if (values.ttl !== undefined && values.exp !== undefined) throw new TokenUsageError('give --ttl or --exp, not both');
  const printWhat = values.print ?? 'all';
  if (!['all', 'token', 'viewer', 'novnc'].includes(printWhat)) throw new TokenUsageError(`invalid --print "${printWhat}": expected all, token, viewer or novnc`);
  const base = values.url ?? 'http://localhost:6080/';
  let baseUrl: URL;
  try {
    baseUrl = new URL(base.endsWith('/') ? base : `${base}/`);
  } catch {
    throw new TokenUsageError(`invalid --url "${base}": expected e.g. https://desktop.example.org/`);
  }

  const ring = await loadKeys(values.keys, io);
  const signers = [...ring.values()].filter((k) => k.alg === 'HS256' || k.privateKey !== undefined);
  let key;
  if (values.kid !== undefined) {
    key = ring.get(values.kid);
    if (!key) throw new TokenUsageError(`no key "${values.kid}" in ${values.keys} (keys: ${[...ring.keys()].join(', ')})`);
  } else if (signers.length === 1) {
    key = signers[0]!;
  } else {
    throw new TokenUsageError(signers.length === 0
      ? `${values.keys} holds no key that can sign (Ed25519 public keys only verify; give the ed25519-private line)`
      : `${values.keys} holds several signing keys: choose one with --kid (${signers.map((k) => k.kid).join(', ')})`);
  }
  const { signToken } = await import('@tsockify/auth-plugins');
  const token = signToken({
    host: values.host,
    port,
    ...(values.sub !== undefined ? { sub: values.sub } : {}),
    ...(values.iid !== undefined ? { iid: values.iid } : {}),
    ...(values.jti !== undefined ? { jti: values.jti } : {}),
    ...(values.exp !== undefined ? { exp: int('exp', values.exp, 1) } : { ttlSec: int('ttl', values.ttl, 1) ?? 300 }),
  }, key);

  const viewer = new URL(`?token=${encodeURIComponent(token)}`, baseUrl).href;
  const novnc = new URL(`vnc.html?autoconnect=1&path=${encodeURIComponent(`websockify?token=${encodeURIComponent(token)}`)}`, baseUrl).href;
  if (printWhat === 'token') io.stdout.write(`${token}\n`);
  else if (printWhat === 'viewer') io.stdout.write(`${viewer}\n`);
  else if (printWhat === 'novnc') io.stdout.write(`${novnc}\n`);
  else io.stdout.write(`${token}\n\nbuilt-in viewer (--viewer): ${viewer}\nnoVNC (--web):              ${novnc}\n`);
  return 0;
}

async function verify(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    keys: { type: 'string' }, 'max-lifetime': { type: 'string' }, 'clock-skew': { type: 'string' },
    require: { type: 'string' }, now: { type: 'string' },
  }, true);
  if (positionals.length !== 1) throw new TokenUsageError(positionals.length === 0 ? 'give the TOKEN to verify (or - to read it from stdin)' : 'give one TOKEN');
  const token = positionals[0] === '-' ? (await readAll(io.stdin ?? process.stdin)).trim() : positionals[0]!;
  const requireClaims = (values.require ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const c of requireClaims) if (c !== 'sub' && c !== 'iid') throw new TokenUsageError(`invalid --require "${c}": expected sub and/or iid`);
  const maxLifetimeSec = int('max-lifetime', values['max-lifetime'], 1);
  const clockSkewSec = int('clock-skew', values['clock-skew'], 0);
  const nowSec = int('now', values.now, 0);
  const ring = await loadKeys(values.keys, io);

  const { verifyToken, decodeTokenUnverified, SignedTokenError, formatDuration: duration } = await import('@tsockify/auth-plugins');
  const { tokenHash } = await import('@tsockify/core');
  const now = nowSec !== undefined ? nowSec * 1000 : Date.now();
  const out = io.stdout;
  out.write(`token hash: ${tokenHash(token)} (as tsockify logs it)\n`);
  try {
    const v = verifyToken(token, ring, {
      now,
      ...(maxLifetimeSec !== undefined ? { maxLifetimeSec } : {}),
      ...(clockSkewSec !== undefined ? { clockSkewSec } : {}),
      requireClaims: requireClaims as Array<'sub' | 'iid'>,
    });
    out.write(`valid: signed by key "${v.kid}" (${v.alg}); expires in ${duration(v.claims.exp - now / 1000)} (${iso(v.claims.exp)})\n`);
    out.write(`target: ${v.claims.host.includes(':') ? `[${v.claims.host}]` : v.claims.host}:${v.claims.port}\n`);
    out.write(`claims: ${JSON.stringify(v.claims)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof SignedTokenError)) throw err;
    out.write(`refused: ${err.message}: ${err.detail}\n`);
    out.write(`clients get: 401 ${err.message}\n`);
    try {
      const { kid, claims } = decodeTokenUnverified(token);
      // Shown for diagnosis only: nothing here is trustworthy until the token verifies.
      out.write(`unverified contents: key id "${kid}", claims ${JSON.stringify(claims)}\n`);
    } catch {
      // Not decodable: the reason above already says so.
    }
    return 1;
  }
}

async function keygen(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { alg: { type: 'string' }, kid: { type: 'string' }, out: { type: 'string' } });
  const alg = (values.alg ?? 'hs256').toLowerCase();
  if (alg !== 'hs256' && alg !== 'ed25519') throw new TokenUsageError(`invalid --alg "${values.alg}": expected hs256 or ed25519`);
  const kid = values.kid ?? `k${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`;
  const { generateKey, formatKeyLine } = await import('@tsockify/auth-plugins');
  const key = generateKey(kid, alg === 'hs256' ? 'HS256' : 'Ed25519');
  const signing = formatKeyLine(key);
  const verifying = alg === 'ed25519' ? formatKeyLine(key, true) : undefined;
  if (values.out !== undefined) {
    const file = path.resolve(io.cwd, values.out);
    writeFileSync(file, `${signing}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    if (verifying) writeFileSync(`${file}.pub`, `${verifying}\n`, { mode: 0o644, flag: 'wx' });
    io.stderr.write(verifying
      ? `wrote the signing key to ${values.out} (portal only) and the verifying key to ${values.out}.pub (for --token-source)\n`
      : `wrote key "${kid}" to ${values.out}: the same file serves the portal and --token-source\n`);
    return 0;
  }
  if (verifying) {
    io.stdout.write(`# Ed25519 key "${kid}". Signing line: for the portal only (it mints tokens):\n${signing}\n`);
    io.stdout.write(`# Verifying line: for tsockify's keys file (it cannot mint):\n${verifying}\n`);
  } else {
    io.stdout.write(`# HMAC-SHA256 key "${kid}": the same line goes to the portal and to tsockify's keys file (both can mint).\n${signing}\n`);
  }
  return 0;
}

function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => { text += d; });
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
}

function iso(sec: number): string {
  return new Date(sec * 1000).toISOString().replace('.000Z', 'Z');
}
