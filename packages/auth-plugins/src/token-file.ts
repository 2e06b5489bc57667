import type { BigIntStats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger, RequestContext, Target, TokenPlugin } from '@tsockify/core';
import { InvalidOptionError, PluginUnavailableError, silentLogger } from '@tsockify/core';
import { FileCache } from './file-cache.js';
import { errnoCode, errorMessage, invalidSource, type SourceOptions } from './source.js';
import { parseTokenFile } from './token-file-format.js';

/** The `--token-source` grammar of `TokenFile` and `ReadOnlyTokenFile`. */
export const TOKEN_FILE_GRAMMAR = 'a token file or a directory of token files (lines "token: host:port")';

export interface TokenFileOptions {
  /** A token file, or a directory whose regular files (not recursive) are all token files. */
  path: string;
  /** Where `Syntax error in <file> on line N` goes when no request logger is at hand. */
  logger?: Logger;
}

type Table = Map<string, Target>;

/**
 * The token tables of a token file or directory, as they are on disk at the time of the call.
 * Each file is re-parsed only when it changed (see `FileCache`); a directory is listed on
 * every call, so added and removed files are seen at once.
 */
export class TokenFileStore {
  private readonly files = new Map<string, FileCache<Table>>();
  /** The logger parse warnings go to: the request's when a lookup triggered the read. */
  private log: Logger;

  constructor(
    readonly source: string,
    private readonly baseLog: Logger = silentLogger,
  ) {
    this.log = baseLog;
  }

  /** All tables in lookup order: later files win, as later lines do within a file. */
  async tables(log: Logger = this.baseLog): Promise<Table[]> {
    this.log = log;
    let st: BigIntStats;
    try {
      st = await stat(this.source, { bigint: true });
    } catch (err) {
      throw unavailable(this.source, err);
    }
    if (!st.isDirectory()) return [await this.read(this.source, st)];

    let names: string[];
    try {
      names = (await readdir(this.source)).sort();
    } catch (err) {
      throw unavailable(this.source, err);
    }
    const files = names.map((name) => path.join(this.source, name));
    const present = new Set(files);
    for (const file of this.files.keys()) if (!present.has(file)) this.files.delete(file);
    const tables = await Promise.all(
      files.map(async (file) => {
        let fst: BigIntStats;
        try {
          fst = await stat(file, { bigint: true });
        } catch (err) {
          // Removed between the listing and the stat: it is simply gone.
          if (errnoCode(err) === 'ENOENT') return undefined;
          throw unavailable(file, err);
        }
        // websockify opens every entry and dies on a subdirectory; skip anything not a file.
        if (!fst.isFile()) return undefined;
        return this.read(file, fst);
      }),
    );
    return tables.filter((t): t is Table => t !== undefined);
  }

  /** The target for `token`, or null. */
  async lookup(token: string, log?: Logger): Promise<Target | null> {
    const tables = await this.tables(log);
    for (let i = tables.length - 1; i >= 0; i--) {
      const t = tables[i]!.get(token);
      if (t !== undefined) return { ...t };
    }
    return null;
  }

  private async read(file: string, st: BigIntStats): Promise<Table> {
    let cache = this.files.get(file);
    if (!cache) {
      cache = new FileCache(file, (data) => parseTokenFile(data.toString('utf8'), file, this.log));
      this.files.set(file, cache);
    }
    try {
      return await cache.get(st);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' && file !== this.source) return new Map();
      throw unavailable(file, err);
    }
  }
}

function unavailable(file: string, err: unknown): PluginUnavailableError {
  return new PluginUnavailableError(`token file ${file} cannot be read: ${errorMessage(err)}`, { cause: err });
}

/** Check at startup that a token file or directory exists, so that a typo fails at once. */
async function checkSource(plugin: string, source: string | undefined): Promise<string> {
  if (source === undefined || source === '') throw invalidSource('--token-source', plugin, source, TOKEN_FILE_GRAMMAR);
  try {
    await stat(source);
  } catch (err) {
    throw invalidSource('--token-source', plugin, source, TOKEN_FILE_GRAMMAR, errnoCode(err) === 'ENOENT' ? 'no such file or directory' : errorMessage(err));
  }
  return source;
}

/**
 * websockify's `TokenFile`: `--token-source` is a token file or a directory of token files,
 * and every lookup sees the files as they are now (edits, added and removed files).
 *
 * Unlike websockify, which re-reads and re-parses everything on every connection, a lookup
 * costs one `stat` per file (plus a directory listing); a file is read again only when it
 * changed. A missing or unreadable source fails closed with a `PluginUnavailableError` (503).
 */
export class TokenFile implements TokenPlugin {
  readonly name: string = 'TokenFile';
  protected readonly store: TokenFileStore;

  constructor(options: TokenFileOptions) {
    if (!options.path) throw new InvalidOptionError('TokenFile: options.path is required');
    this.store = new TokenFileStore(options.path, options.logger);
  }

  /** Build from a `--token-source` string; fails at once when the file or directory is missing. */
  static async fromSource(source: string | undefined, options: SourceOptions = {}): Promise<TokenFile> {
    const plugin = new TokenFile({ path: await checkSource('TokenFile', source), logger: options.logger });
    await plugin.store.tables();  // report syntax errors at startup, and warm the cache
    return plugin;
  }

  /** The target for `token` as the files say now, or null when no line names it. */
  lookup(token: string, ctx?: RequestContext): Promise<Target | null> {
    return this.store.lookup(token, ctx?.log);
  }
}

/**
 * websockify's `ReadOnlyTokenFile`: like `TokenFile`, but the files are read once (at the
 * first lookup, or at startup when built by `fromSource`) and later edits are ignored.
 */
export class ReadOnlyTokenFile implements TokenPlugin {
  readonly name: string = 'ReadOnlyTokenFile';
  private readonly store: TokenFileStore;
  private loaded: Promise<Table[]> | undefined;

  constructor(options: TokenFileOptions) {
    if (!options.path) throw new InvalidOptionError('ReadOnlyTokenFile: options.path is required');
    this.store = new TokenFileStore(options.path, options.logger);
  }

  /** Build from a `--token-source` string and read the files now. */
  static async fromSource(source: string | undefined, options: SourceOptions = {}): Promise<ReadOnlyTokenFile> {
    const plugin = new ReadOnlyTokenFile({ path: await checkSource('ReadOnlyTokenFile', source), logger: options.logger });
    await plugin.load();
    return plugin;
  }

  /** Read the files if that has not happened yet. A failed read is retried by the next call. */
  load(log?: Logger): Promise<Table[]> {
    if (!this.loaded) {
      const p = this.store.tables(log);
      this.loaded = p;
      p.catch(() => {
        if (this.loaded === p) this.loaded = undefined;
      });
    }
    return this.loaded;
  }

  async lookup(token: string, ctx?: RequestContext): Promise<Target | null> {
    const tables = await this.load(ctx?.log);
    for (let i = tables.length - 1; i >= 0; i--) {
      const t = tables[i]!.get(token);
      if (t !== undefined) return { ...t };
    }
    return null;
  }
}
