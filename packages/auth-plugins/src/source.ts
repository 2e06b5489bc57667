import type { Logger } from '@tsockify/core';
import { InvalidOptionError } from '@tsockify/core';

/** Options the registry passes to every built-in plugin it builds from a source string. */
export interface SourceOptions {
  /** For the plugin's own log lines (syntax errors, backend down and up). */
  logger?: Logger;
}

/** Which command-line flag a plugin's source string came from. */
export type SourceFlag = '--token-source' | '--auth-source';

/**
 * The startup error for a source string a plugin cannot use. It names the flag, the value
 * (unless the value may hold a secret: pass `shown` to print a redacted form, or `null` to
 * print none), the plugin and the grammar it expects.
 *
 * `invalid --token-source "x": TokenRedis expects host[:port[:db[:password[:namespace]]]]`
 */
export function invalidSource(
  flag: SourceFlag,
  plugin: string,
  value: string | undefined,
  grammar: string,
  detail?: string,
  shown: string | null = value ?? null,
): InvalidOptionError {
  if (value === undefined) {
    return new InvalidOptionError(`${plugin} needs ${flag}: ${plugin} expects ${grammar}`);
  }
  const what = shown === null ? flag : `${flag} ${JSON.stringify(shown)}`;
  return new InvalidOptionError(`invalid ${what}: ${plugin} expects ${grammar}${detail ? ` (${detail})` : ''}`);
}

/** The message of an unknown thrown value, for logs and wrapped errors. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The `code` of a Node.js system error (`ENOENT`, ...), if any. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Split a source on `:` as websockify's `parse_source_args` does: a field wrapped whole in
 * double quotes may hold colons (`host::::"first-ns:second-ns"`); an empty field keeps its
 * place (`host:::secret`).
 */
export function splitSourceFields(src: string): string[] {
  const fields: string[] = [];
  let pos = 0;
  for (;;) {
    let field: string | undefined;
    if (src[pos] === '"') {
      const close = src.indexOf('"', pos + 1);
      if (close > pos + 1 && (close + 1 === src.length || src[close + 1] === ':')) {
        field = src.slice(pos + 1, close);
        pos = close + 1;
      }
    }
    if (field === undefined) {
      const colon = src.indexOf(':', pos);
      const end = colon === -1 ? src.length : colon;
      field = src.slice(pos, end);
      pos = end;
    }
    fields.push(field);
    if (pos >= src.length) return fields;
    pos++; // the ':' after the field
  }
}
