import type { AuthPlugin, RequestContext } from '@tsockify/core';
import { InvalidOptionError } from '@tsockify/core';

/** The auth plugin `chainAuthPlugins` returns. */
export interface AuthPluginChain extends AuthPlugin {
  /** `A+B+C`, from the members' names. */
  readonly name: string;
  /** The members, in the order they run. */
  readonly plugins: readonly AuthPlugin[];
  authenticate(ctx: RequestContext): Promise<void>;
  close(): Promise<void>;
}

/**
 * One auth plugin that runs several in order; the first refusal wins (its status and headers
 * reach the client) and the rest do not run. Sync and async plugins mix freely. `close()`
 * closes every plugin, even if one of them fails.
 *
 * ```ts
 * chainAuthPlugins(ExpectOrigin.fromSource('https://portal.example.org'), BasicHTTPAuth.fromSource('vnc:secret'))
 * ```
 */
export function chainAuthPlugins(...plugins: AuthPlugin[]): AuthPluginChain {
  if (plugins.length === 0) throw new InvalidOptionError('chainAuthPlugins needs at least one plugin');
  for (const p of plugins) {
    if (typeof p?.authenticate !== 'function') throw new InvalidOptionError('chainAuthPlugins: every plugin needs an authenticate(ctx) method');
  }
  const list = [...plugins];
  return {
    name: list.map((p) => p.name ?? 'anonymous').join('+'),
    plugins: list,
    async authenticate(ctx: RequestContext): Promise<void> {
      for (const p of list) await p.authenticate(ctx);
    },
    async close(): Promise<void> {
      const results = await Promise.allSettled(list.map(async (p) => p.close?.()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}
