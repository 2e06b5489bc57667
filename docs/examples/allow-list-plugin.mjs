// A token plugin whose tokens only work from listed client networks.
//
//   tsockify --token-plugin ./docs/examples/allow-list-plugin.mjs \
//            --token-source ./docs/examples/allow-list-tokens.json 127.0.0.1:6080
//
// The token source is a JSON file, one entry per token:
//
//   {
//     "alice-desk": {
//       "target": "127.0.0.1:5901",          host:port, [v6]:port or unix_socket:/path
//       "from": ["127.0.0.0/8", "::1/128"],  client networks allowed to use the token
//       "user": "alice",                     optional, shown in the session log lines
//       "expires": "2030-01-01T00:00:00Z"    optional; live sessions end (1008) when it passes
//     }
//   }
//
// The file is read at startup (a bad file stops tsockify with a message) and again whenever
// it changes, so tokens can be added and revoked without a restart.
//
// What the client gets:
//   unknown token                          401 "unknown token"        (return null)
//   expired token                          401 "token expired"        (TokenInvalidError)
//   token used from another network        403, no body               (AuthenticationError)
//   token file gone or broken after start  503 "token table unavailable" (PluginUnavailableError)
//
// This file is exercised by test/packaging/example-plugin.test.ts.
import { readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import {
  AuthenticationError,
  InvalidOptionError,
  PluginUnavailableError,
  TokenInvalidError,
  parseHostPort,
} from '@tsockify/core';

const GRAMMAR = 'a JSON file {"TOKEN": {"target": "host:port", "from": ["CIDR", ...], "user"?: "...", "expires"?: "ISO date"}}';

/**
 * The factory tsockify calls with `--token-source` and `{ logger }`. It may be async: a bad
 * source must fail here, at startup, never at the first connection.
 *
 * @param {string | undefined} source
 * @param {{ logger?: import('@tsockify/core').Logger }} [options]
 * @returns {Promise<import('@tsockify/core').TokenPlugin>}
 */
export async function createTokenPlugin(source, options = {}) {
  if (!source) throw new InvalidOptionError(`AllowListTokens needs --token-source: ${GRAMMAR}`);
  const file = path.resolve(source);
  let table = parseTable(await readText(file, true), file);
  let mtimeMs = (await stat(file)).mtimeMs;
  options.logger?.info({ file, tokens: table.size }, 'AllowListTokens: token table loaded');

  /** Re-read the file when it changed. A file that breaks later fails closed (503). */
  async function current() {
    let st;
    try {
      st = await stat(file);
    } catch (err) {
      throw new PluginUnavailableError('token table unavailable', { cause: err });
    }
    if (st.mtimeMs !== mtimeMs) {
      try {
        table = parseTable(await readText(file, false), file);
      } catch (err) {
        throw new PluginUnavailableError('token table unavailable', { cause: err });
      }
      mtimeMs = st.mtimeMs;
    }
    return table;
  }

  return {
    name: 'AllowListTokens',

    async lookup(token, ctx) {
      const entry = (await current()).get(token);
      if (!entry) return null;
      if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
        throw new TokenInvalidError('token expired');
      }
      const client = unmapIpv4(ctx.remoteAddress);
      if (!entry.from.check(client, net.isIPv6(client) ? 'ipv6' : 'ipv4')) {
        // The message becomes the HTTP reason phrase ("403 token not allowed from this address"); no body.
        ctx.log.info({ client, user: entry.user }, 'AllowListTokens: token used from a network it is not allowed from');
        throw new AuthenticationError('token not allowed from this address', 403);
      }
      return {
        ...entry.target,
        ...(entry.user !== undefined ? { meta: { subject: entry.user } } : {}),
        ...(entry.expiresAt !== undefined ? { expiresAt: entry.expiresAt } : {}),
      };
    },

    close() {
      table = new Map();
    },
  };
}

async function readText(file, atStartup) {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (!atStartup) throw err;
    throw new InvalidOptionError(`invalid --token-source "${file}": ${err.code ?? err.message}; expected ${GRAMMAR}`);
  }
}

/** Parse and check the whole file. A mistake names the entry by its position, never by its token (a secret). */
function parseTable(text, file) {
  let json;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidOptionError(`invalid --token-source "${file}": ${err.message}; expected ${GRAMMAR}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidOptionError(`invalid --token-source "${file}": expected ${GRAMMAR}`);
  }
  const table = new Map();
  for (const [token, e] of Object.entries(json)) {
    const bad = (why) => new InvalidOptionError(`invalid --token-source "${file}": entry #${table.size + 1}: ${why}`);
    if (typeof e?.target !== 'string') throw bad('"target" must be "host:port"');
    const target = e.target.startsWith('unix_socket:')
      ? { unixSocket: e.target.slice('unix_socket:'.length) }
      : parseHostPort(e.target);
    if (!Array.isArray(e.from) || e.from.length === 0) throw bad('"from" must list at least one CIDR');
    const from = new net.BlockList();
    for (const cidr of e.from) {
      const [address, bits] = String(cidr).split('/');
      const family = net.isIPv6(address) ? 'ipv6' : net.isIPv4(address) ? 'ipv4' : undefined;
      const prefix = Number(bits ?? (family === 'ipv6' ? 128 : 32));
      if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv6' ? 128 : 32)) {
        throw bad(`"${cidr}" is not a CIDR such as 10.0.0.0/8 or fd00::/8`);
      }
      from.addSubnet(address, prefix, family);
    }
    let expiresAt;
    if (e.expires !== undefined) {
      expiresAt = Date.parse(e.expires);
      if (Number.isNaN(expiresAt)) throw bad('"expires" must be an ISO date such as 2030-01-01T00:00:00Z');
    }
    table.set(token, { target, from, user: typeof e.user === 'string' ? e.user : undefined, expiresAt });
  }
  return table;
}

/** A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d. */
function unmapIpv4(address) {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1] : address;
}
