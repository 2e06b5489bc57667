/**
 * `tsockify token sign|verify|keygen`: mint, explain and make keys for tsockify's signed
 * tokens (the `SignedToken` plugin; format in docs/tokens.md). A thin adapter over
 * `signToken` / `verifyToken` / `generateKey` from @tsockify/auth-plugins.
 *
 * Parsed with yargs, the project's CLI library. The main `tsockify` parser stays hand-written
 * (args.ts) because it must follow Python optparse, unique-prefix abbreviations included.
 *
 * Exit codes: 0 done (verify: the token is valid), 1 verify: the token is refused,
 * 2 usage or key problem (bad flag, unreadable keys, no key to sign with).
 */
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
// yargs 18 ships no typings for its main entry; @types/yargs (17.x, the newest published)
// describes the same factory and builder API, which 18 kept.
import yargs, { type ArgumentsCamelCase, type Argv, type InferredOptionTypes, type Options } from 'yargs';
import { UsageError } from './errors.js';
import type { MainIo } from './main.js';

type Io = Pick<MainIo, 'stdout' | 'stderr' | 'cwd'> & { stdin?: NodeJS.ReadableStream };

const COMMANDS = ['sign', 'verify', 'keygen'] as const;
const PRINT = ['all', 'token', 'viewer', 'novnc'] as const;
const ALGS = ['hs256', 'ed25519'] as const;
const CLAIMS = ['sub', 'iid'] as const;
const DEFAULT_TTL_SEC = 300;
const DEFAULT_URL = 'http://localhost:6080/';

// yargs wraps help text to the terminal, so each paragraph is one line here.
const ABOUT_TOKENS = "Tokens are tsockify's signed tokens, v1.KID.CLAIMS.SIGNATURE (docs/tokens.md), checked by "
  + '--token-plugin SignedToken --token-source KEYS[:MAX_LIFETIME[:once]].';
const ABOUT_KEYS = 'KEYS is a keys file, or a directory of keys files, with lines "kid: hs256:SECRET", '
  + '"kid: ed25519:PUBLIC" (verify only) or "kid: ed25519-private:SEED" (sign).';
const ABOUT_EXIT = 'Exit codes: 0 done (verify: valid), 1 verify: the token is refused, 2 usage or key error.';
const paragraphs = (...texts: string[]): string => texts.join('\n\n');
const either = (values: readonly string[]): string => `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;

/** `--NAME TEXT` as a whole number in [min, max], refused with a message naming the value. */
function wholeNumber(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      throw new UsageError(`invalid --${name} "${text}": expected a whole number from ${min} to ${max}`);
    }
    return Number(text);
  };
}

/**
 * `--NAME TEXT` as one of `values`. yargs' own `choices` check would word the refusal its way
 * ("Invalid values: Argument: ..."); a coerce runs first and keeps ours.
 */
function oneOf<T extends string>(name: string, values: readonly T[], normalize: (text: string) => string = (t) => t) {
  return (text: string): T => {
    const value = normalize(text);
    if (!(values as readonly string[]).includes(value)) throw new UsageError(`invalid --${name} "${text}": expected ${either(values)}`);
    return value as T;
  };
}

function baseUrl(text: string): URL {
  try {
    return new URL(text.endsWith('/') ? text : `${text}/`);
  } catch {
    throw new UsageError(`invalid --url "${text}": expected e.g. https://desktop.example.org/`);
  }
}

function claimList(text: string): Array<(typeof CLAIMS)[number]> {
  const claims = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const c of claims) if (!(CLAIMS as readonly string[]).includes(c)) throw new UsageError(`invalid --require "${c}": expected sub and/or iid`);
  return claims as Array<(typeof CLAIMS)[number]>;
}

const keysOption = {
  type: 'string', requiresArg: true, describe: 'keys file or directory (see KEYS below)',
  demandOption: '--keys KEYS is required (a keys file or directory)',
} as const satisfies Options;

const signOptions = {
  keys: keysOption,
  kid: { type: 'string', requiresArg: true, describe: 'key to sign with; needed when KEYS holds several signing keys' },
  host: { type: 'string', requiresArg: true, describe: 'the VNC server the token opens', demandOption: '--host HOST is required (the VNC server the token opens)' },
  port: { type: 'string', requiresArg: true, describe: 'its port, 1-65535', demandOption: '--port PORT is required', coerce: wholeNumber('port', 1, 65535) },
  sub: { type: 'string', requiresArg: true, describe: 'the user (sub claim)' },
  iid: { type: 'string', requiresArg: true, describe: 'the instance id (iid claim)' },
  jti: { type: 'string', requiresArg: true, describe: 'the token id (jti claim)' },
  ttl: { type: 'string', requiresArg: true, describe: 'seconds until the token expires', defaultDescription: String(DEFAULT_TTL_SEC), coerce: wholeNumber('ttl', 1) },
  exp: { type: 'string', requiresArg: true, describe: 'expiry as a Unix time, instead of --ttl', coerce: wholeNumber('exp', 1) },
  url: { type: 'string', requiresArg: true, describe: 'base URL of the page that serves the viewers', defaultDescription: DEFAULT_URL, coerce: baseUrl },
  print: { type: 'string', requiresArg: true, describe: 'what to print', choices: PRINT, defaultDescription: 'all', coerce: oneOf('print', PRINT) },
} as const satisfies Record<string, Options>;

const verifyOptions = {
  keys: keysOption,
  'max-lifetime': { type: 'string', requiresArg: true, describe: 'longest exp - iat accepted, in seconds (as --token-source KEYS:MAX_LIFETIME)', coerce: wholeNumber('max-lifetime', 1) },
  'clock-skew': { type: 'string', requiresArg: true, describe: 'how far iat may be ahead of this clock, in seconds', coerce: wholeNumber('clock-skew', 0) },
  require: { type: 'string', requiresArg: true, describe: 'claims that must be present: sub, iid or sub,iid', coerce: claimList },
  now: { type: 'string', requiresArg: true, describe: 'check as of this Unix time instead of the clock', coerce: wholeNumber('now', 0) },
} as const satisfies Record<string, Options>;

const keygenOptions = {
  alg: { type: 'string', requiresArg: true, describe: 'key type', choices: ALGS, defaultDescription: 'hs256', coerce: oneOf('alg', ALGS, (t) => t.toLowerCase()) },
  kid: { type: 'string', requiresArg: true, describe: 'key id', defaultDescription: 'k + today as YYYYMMDD' },
  out: { type: 'string', requiresArg: true, describe: 'write the key to FILE instead of printing it' },
} as const satisfies Record<string, Options>;

type SignArgs = ArgumentsCamelCase<InferredOptionTypes<typeof signOptions>>;
type VerifyArgs = ArgumentsCamelCase<InferredOptionTypes<typeof verifyOptions> & { token: string }>;
type KeygenArgs = ArgumentsCamelCase<InferredOptionTypes<typeof keygenOptions>>;

export async function runTokenCommand(argv: string[], io: Io): Promise<number> {
  // Handlers report their exit code here: yargs' handler return value is ignored.
  let code = 0;
  const cli = tokenParser(io, {
    sign: async (args) => { code = await sign(args, io); },
    verify: async (args) => { code = await verify(args, io); },
    keygen: async (args) => { code = await keygen(args, io); },
  });
  try {
    let output = '';
    // With a parse callback yargs hands back --help text instead of writing to process.stdout.
    await cli.parseAsync(argv, {}, (_err, _args, text) => { output = text; });
    if (output) io.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
    return code;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'TSOCK_CLI_USAGE' || e.code === 'TSOCK_ERR_INVALID_OPTION') {
      io.stderr.write(`tsockify token: ${e.message} (see 'tsockify token --help')\n`);
      return 2;
    }
    throw err;
  }
}

interface Handlers {
  sign: (args: SignArgs) => Promise<void>;
  verify: (args: VerifyArgs) => Promise<void>;
  keygen: (args: KeygenArgs) => Promise<void>;
}

function tokenParser(io: Io, handlers: Handlers): Argv {
  const columns = (io.stdout as { columns?: number }).columns;
  return yargs()
    .scriptName('tsockify token')
    .usage('Usage: $0 <command> [options]')
    .command('sign', 'mint a token and print it with ready URLs for the built-in viewer (--viewer) and noVNC (--web)',
      (y: Argv) => y.options(signOptions).conflicts('ttl', 'exp').epilogue(paragraphs(
        'The URLs are BASE_URL/?token=... (built-in viewer) and BASE_URL/vnc.html?autoconnect=1&path=websockify%3Ftoken%3D... '
          + '(noVNC). Explain a token with "tsockify token verify".',
        ABOUT_KEYS, ABOUT_EXIT)),
      handlers.sign)
    .command('verify <token>', 'check a token (- reads it from stdin) and say why it fails',
      (y: Argv) => y.positional('token', { type: 'string', demandOption: true, describe: 'the token, or - to read it from stdin' })
        // yargs re-parses positionals as `--token VALUE`, where a lone "-" looks like a flag and
        // the value becomes "" (yargs/yargs#1312, yargs/yargs-parser#381); nargs makes it taken.
        .nargs('token', 1)
        .options(verifyOptions)
        .epilogue(paragraphs(
          'A refused token is explained: expired and since when, bad signature, unknown key id, malformed, '
            + 'which claim is missing. Mint one with "tsockify token sign".',
          ABOUT_KEYS, ABOUT_EXIT)),
      handlers.verify)
    .command('keygen', 'print a new key line',
      (y: Argv) => y.options(keygenOptions).epilogue(paragraphs(
        'hs256 (default) serves the portal and tsockify alike. ed25519 prints a signing line for the portal and a '
          + 'verifying line for tsockify, which then cannot mint. --out FILE writes the signing line to FILE (mode 0600) '
          + 'and, for ed25519, the verifying line to FILE.pub.',
        ABOUT_EXIT)),
      handlers.keygen)
    .demandCommand(1, `give a token command: ${either(COMMANDS)}`)
    .strict()
    // An unknown first word, named as such before validation would call it an "Unknown
    // argument". Inside a command the first word is that command. (yargs' strictCommands() would also misname a surplus
    // positional inside a command, e.g. `verify TOKEN extra`, as an unknown command.)
    .middleware((args) => {
      const [first] = args._;
      if (first !== undefined && !(COMMANDS as readonly string[]).includes(String(first))) {
        throw new UsageError(`unknown token command "${first}": expected ${either(COMMANDS)}`);
      }
    }, true)
    .parserConfiguration({
      // As node:util parseArgs did: a repeated option takes its last value, and --no-X is no
      // shorthand (there are no boolean options, so it could only turn a string into false).
      'duplicate-arguments-array': false,
      'boolean-negation': false,
    })
    .help('help')
    .alias('help', 'h')
    .version(false)
    .exitProcess(false)
    .wrap(Math.min(100, columns ?? 80))
    .epilogue(paragraphs(ABOUT_TOKENS, ABOUT_KEYS, ABOUT_EXIT))
    .fail((msg, err) => {
      if (err instanceof UsageError) throw err; // from a coerce: our message already
      if (err && err.name !== 'YError') throw err;
      // Some yargs messages run over lines (a missing option, then the custom text for it).
      throw new UsageError((msg || err?.message || 'invalid arguments').split('\n').map((l) => l.trim()).filter(Boolean).join('; '));
    });
}

async function loadKeys(keysPath: string, io: Io) {
  const { loadKeyRing } = await import('@tsockify/auth-plugins');
  return loadKeyRing(path.resolve(io.cwd, keysPath));
}

async function sign(args: SignArgs, io: Io): Promise<number> {
  const ring = await loadKeys(args.keys, io);
  const signers = [...ring.values()].filter((k) => k.alg === 'HS256' || k.privateKey !== undefined);
  let key;
  if (args.kid !== undefined) {
    key = ring.get(args.kid);
    if (!key) throw new UsageError(`no key "${args.kid}" in ${args.keys} (keys: ${[...ring.keys()].join(', ')})`);
  } else if (signers.length === 1) {
    key = signers[0]!;
  } else {
    throw new UsageError(signers.length === 0
      ? `${args.keys} holds no key that can sign (Ed25519 public keys only verify; give the ed25519-private line)`
      : `${args.keys} holds several signing keys: choose one with --kid (${signers.map((k) => k.kid).join(', ')})`);
  }
  const { signToken } = await import('@tsockify/auth-plugins');
  const token = signToken({
    host: args.host,
    port: args.port,
    ...(args.sub !== undefined ? { sub: args.sub } : {}),
    ...(args.iid !== undefined ? { iid: args.iid } : {}),
    ...(args.jti !== undefined ? { jti: args.jti } : {}),
    ...(args.exp !== undefined ? { exp: args.exp } : { ttlSec: args.ttl ?? DEFAULT_TTL_SEC }),
  }, key);

  const base = args.url ?? baseUrl(DEFAULT_URL);
  const viewer = new URL(`?token=${encodeURIComponent(token)}`, base).href;
  const novnc = new URL(`vnc.html?autoconnect=1&path=${encodeURIComponent(`websockify?token=${encodeURIComponent(token)}`)}`, base).href;
  const printWhat = args.print ?? 'all';
  if (printWhat === 'token') io.stdout.write(`${token}\n`);
  else if (printWhat === 'viewer') io.stdout.write(`${viewer}\n`);
  else if (printWhat === 'novnc') io.stdout.write(`${novnc}\n`);
  else io.stdout.write(`${token}\n\nbuilt-in viewer (--viewer): ${viewer}\nnoVNC (--web):              ${novnc}\n`);
  return 0;
}

async function verify(args: VerifyArgs, io: Io): Promise<number> {
  const token = args.token === '-' ? (await readAll(io.stdin ?? process.stdin)).trim() : args.token;
  const ring = await loadKeys(args.keys, io);

  const { verifyToken, decodeTokenUnverified, SignedTokenError, formatDuration: duration } = await import('@tsockify/auth-plugins');
  const { tokenHash } = await import('@tsockify/core');
  const now = args.now !== undefined ? args.now * 1000 : Date.now();
  const out = io.stdout;
  out.write(`token hash: ${tokenHash(token)} (as tsockify logs it)\n`);
  try {
    const v = verifyToken(token, ring, {
      now,
      ...(args.maxLifetime !== undefined ? { maxLifetimeSec: args.maxLifetime } : {}),
      ...(args.clockSkew !== undefined ? { clockSkewSec: args.clockSkew } : {}),
      requireClaims: args.require ?? [],
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

async function keygen(args: KeygenArgs, io: Io): Promise<number> {
  const alg = args.alg ?? 'hs256';
  const kid = args.kid ?? `k${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`;
  const { generateKey, formatKeyLine } = await import('@tsockify/auth-plugins');
  const key = generateKey(kid, alg === 'hs256' ? 'HS256' : 'Ed25519');
  const signing = formatKeyLine(key);
  const verifying = alg === 'ed25519' ? formatKeyLine(key, true) : undefined;
  if (args.out !== undefined) {
    const file = path.resolve(io.cwd, args.out);
    writeFileSync(file, `${signing}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    if (verifying) writeFileSync(`${file}.pub`, `${verifying}\n`, { mode: 0o644, flag: 'wx' });
    io.stderr.write(verifying
      ? `wrote the signing key to ${args.out} (portal only) and the verifying key to ${args.out}.pub (for --token-source)\n`
      : `wrote key "${kid}" to ${args.out}: the same file serves the portal and --token-source\n`);
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
