import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { RequestContext, Target, TokenPlugin } from '@tsockify/core';
import { InvalidOptionError } from '@tsockify/core';
import { invalidSource } from './source.js';
import type { SourceOptions } from './source.js';
import { isFileName } from './token-file-name.js';

export const UNIX_SOCKET_DIRECTORY_GRAMMAR = 'a directory of unix sockets named by token';

export interface UnixDomainSocketDirectoryOptions {
  /** The directory; `dir/<token>` must be a unix socket. */
  dir: string;
}

/**
 * websockify's `UnixDomainSocketDirectory`: the token names a unix socket in the
 * `--token-source` directory, and the session goes to that socket.
 *
 * websockify checks containment with a string prefix (`/srv/vnc` also admits `/srv/vnc2/x`
 * through `../vnc2/x`); tsockify accepts only a token that is one plain file name. The entry
 * may be a symlink to a socket (the directory's owner put it there); anything that is not a
 * socket is null.
 */
export class UnixDomainSocketDirectory implements TokenPlugin {
  readonly name = 'UnixDomainSocketDirectory';
  readonly dir: string;

  constructor(options: UnixDomainSocketDirectoryOptions) {
    if (!options.dir) throw new InvalidOptionError('UnixDomainSocketDirectory: options.dir is required');
    this.dir = path.resolve(options.dir);
  }

  /** Build from a `--token-source` directory, which must exist. */
  static async fromSource(source: string | undefined, _options: SourceOptions = {}): Promise<UnixDomainSocketDirectory> {
    if (!source) throw invalidSource('--token-source', 'UnixDomainSocketDirectory', source, UNIX_SOCKET_DIRECTORY_GRAMMAR);
    const st = await stat(source).catch(() => undefined);
    if (!st?.isDirectory()) {
      throw invalidSource('--token-source', 'UnixDomainSocketDirectory', source, UNIX_SOCKET_DIRECTORY_GRAMMAR, 'not a directory');
    }
    return new UnixDomainSocketDirectory({ dir: source });
  }

  async lookup(token: string, _ctx?: RequestContext): Promise<Target | null> {
    if (!isFileName(token)) return null;
    const socketPath = path.join(this.dir, token);
    const st = await stat(socketPath).catch(() => undefined);
    return st?.isSocket() ? { unixSocket: socketPath } : null;
  }
}
