import { InvalidOptionError } from '@tsockify/core';
import { invalidSource, splitSourceFields } from './source.js';

export const REDIS_GRAMMAR = 'host[:port[:db[:password[:namespace]]]]';

/** The connection settings written in a `TokenRedis` `--token-source`. */
export interface RedisSource {
  host: string;
  /** Default 6379. */
  port: number;
  /** Default 0. */
  db: number;
  password?: string;
  /** Keys are `namespace:token`; without one, the token is the key. */
  namespace?: string;
}

/**
 * Parse a `TokenRedis` `--token-source`: `host[:port[:db[:password[:namespace]]]]`, empty
 * fields taking their defaults (websockify 0.13). Errors name the grammar and never print the
 * password.
 */
export function parseRedisSource(source: string | undefined): RedisSource {
  if (source === undefined || source === '') throw invalidSource('--token-source', 'TokenRedis', source, REDIS_GRAMMAR);
  const fields = splitSourceFields(source);
  const shown = fields.length >= 4 && fields[3] ? [...fields.slice(0, 3), '***', ...fields.slice(4)].join(':') : source;
  const fail = (detail: string): InvalidOptionError => invalidSource('--token-source', 'TokenRedis', source, REDIS_GRAMMAR, detail, shown);
  if (fields.length > 5) throw fail(`${fields.length} fields, at most 5`);
  const [host = '', port = '', db = '', password = '', namespace = ''] = fields;
  if (host.length === 0) throw fail('the host is empty');
  // A quoted IPv6 address may come bracketed: `"[::1]":6379`.
  const result: RedisSource = { host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port: 6379, db: 0 };
  if (port !== '') {
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw fail(`port "${port}" is not a number from 1 to 65535`);
    result.port = Number(port);
  }
  if (db !== '') {
    if (!/^\d+$/.test(db)) throw fail(`db "${db}" is not a number`);
    result.db = Number(db);
  }
  if (password !== '') result.password = password;
  if (namespace !== '') result.namespace = namespace;
  return result;
}
