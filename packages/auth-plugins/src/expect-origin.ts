import type { AuthPlugin, RequestContext } from '@tsockify/core';
import { AuthenticationError, InvalidOptionError } from '@tsockify/core';
import { invalidSource } from './source.js';

export const EXPECT_ORIGIN_GRAMMAR = 'space-separated origins, e.g. "https://portal.example.org https://other.example.org"';

/**
 * A request's `Origin` is not one of those allowed: `403 Invalid Origin`. `expected` and
 * `actual` are for the log line (websockify's "Invalid Origin Header: Expected one of ...").
 */
export class InvalidOriginError extends AuthenticationError {
  constructor(
    readonly expected: readonly string[],
    readonly actual: string | undefined,
  ) {
    super('Invalid Origin', 403);
  }
}

export interface ExpectOriginOptions {
  /** Allowed origins, compared exactly with the `Origin` header (`https://host[:port]`). */
  origins: string[];
}

/**
 * websockify's `ExpectOrigin`: `--auth-source` is a space-separated list of origins; a request
 * whose `Origin` header is missing or not in the list is refused with `403 Invalid Origin`.
 * This is the defence against cross-site WebSocket hijacking (CVE-2015-0259 class).
 *
 * Comparison is exact, as websockify's, except that a trailing `/` in a configured origin is
 * dropped (browsers never send one). An empty list is a startup error (websockify would
 * silently refuse everything).
 */
export class ExpectOrigin implements AuthPlugin {
  readonly name = 'ExpectOrigin';
  readonly origins: readonly string[];
  private readonly allowed: Set<string>;

  constructor(options: ExpectOriginOptions) {
    const origins = (options.origins ?? []).map((o) => o.replace(/\/+$/, '')).filter((o) => o.length > 0);
    if (origins.length === 0) throw new InvalidOptionError('ExpectOrigin: options.origins must list at least one origin');
    this.origins = origins;
    this.allowed = new Set(origins);
  }

  /** Build from `--auth-source "origin1 origin2 ..."`. */
  static fromSource(source: string | undefined): ExpectOrigin {
    const origins = source?.split(/\s+/).filter((o) => o.length > 0) ?? [];
    if (origins.length === 0) throw invalidSource('--auth-source', 'ExpectOrigin', source, EXPECT_ORIGIN_GRAMMAR);
    const bad = origins.find((o) => !/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+\/?$/i.test(o) && o !== 'null');
    if (bad !== undefined) throw invalidSource('--auth-source', 'ExpectOrigin', source, EXPECT_ORIGIN_GRAMMAR, `"${bad}" is not scheme://host[:port]`);
    return new ExpectOrigin({ origins });
  }

  authenticate(ctx: RequestContext): void {
    const origin = ctx.headers.origin;
    if (typeof origin !== 'string' || !this.allowed.has(origin)) {
      throw new InvalidOriginError(this.origins, typeof origin === 'string' ? origin : undefined);
    }
  }
}
