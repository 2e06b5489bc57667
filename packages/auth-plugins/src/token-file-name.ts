import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger, RequestContext, Target, TokenPlugin } from '@tsockify/core';
import { InvalidOptionError, PluginUnavailableError, silentLogger } from '@tsockify/core';
import { errnoCode, errorMessage, invalidSource } from './source.js';
import { parseTargetText } from './target-text.js';
import type { SourceOptions } from './source.js';

export const TOKEN_FILE_NAME_GRAMMAR = 'a directory whose file names are tokens and whose files hold host:port';

export interface TokenFileNameOptions {
  /** The directory; each file in it is named by a token and holds `host:port`. */
  dir: string;
  logger?: Logger;
}

/**
 * websockify's `TokenFileName`: `--token-source` is a directory; the token is a file name in
 * it and the file holds the target (`host:port`, `[v6]:port` or `unix_socket:/path`). Read on
 * every lookup, so files added, edited or removed take effect at once.
 *
 * websockify takes the token's basename (`a/b` finds `b`); tsockify refuses any token that is
 * not a single file name (`/`, `\`, `.`, `..`, NUL), so one file answers to exactly one token.
 */
export class TokenFileName implements TokenPlugin {
  readonly name = 'TokenFileName';
  readonly dir: string;
  private readonly log: Logger;

  constructor(options: TokenFileNameOptions) {
    if (!options.dir) throw new InvalidOptionError('TokenFileName: options.dir is required');
    this.dir = path.resolve(options.dir);
    this.log = options.logger ?? silentLogger;
  }

  /** Build from a `--token-source` string; the directory must exist (as websockify checks). */
  static async fromSource(source: string | undefined, options: SourceOptions = {}): Promise<TokenFileName> {
    if (!source) throw invalidSource('--token-source', 'TokenFileName', source, TOKEN_FILE_NAME_GRAMMAR);
    const st = await stat(source).catch(() => undefined);
    if (!st?.isDirectory()) {
      throw invalidSource('--token-source', 'TokenFileName', source, TOKEN_FILE_NAME_GRAMMAR, 'not a directory');
    }
    return new TokenFileName({ dir: source, logger: options.logger });
  }

  async lookup(token: string, ctx?: RequestContext): Promise<Target | null> {
    if (!isFileName(token)) return null;
    const file = path.join(this.dir, token);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') return null;
      throw new PluginUnavailableError(`TokenFileName cannot read ${this.dir}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      return parseTargetText(text);
    } catch {
      (ctx?.log ?? this.log).warn({ dir: this.dir }, `Syntax error in a token file in ${this.dir}: expected host:port`);
      return null;
    }
  }
}

/** True when `name` is one plain file name: no separators, not `.`/`..`, no NUL. */
export function isFileName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);
}
