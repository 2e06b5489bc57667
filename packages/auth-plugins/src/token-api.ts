import type { Logger, RequestContext, Target, TokenPlugin } from '@tsockify/core';
import { InvalidOptionError, PluginUnavailableError, TokenInvalidError, silentLogger } from '@tsockify/core';
import { errorMessage, invalidSource } from './source.js';
import { parseTargetText, targetFromHostPort } from './target-text.js';
import type { SourceOptions } from './source.js';

export const TOKEN_API_GRAMMAR = 'an http(s) URL with %s where the token goes, e.g. http://127.0.0.1:8000/token/%s';

/** Settings of the HTTP token plugins that are not part of `--token-source`. */
export interface TokenApiSettings {
  /** How long a request (headers and body) may take before the lookup fails with 503. Default 5000 ms. */
  timeoutMs?: number;
  /** Largest response body read, in bytes; a larger one fails the lookup with 503. Default 64 KiB. */
  maxBodyBytes?: number;
  /** Extra request headers, e.g. an `Authorization` the token service requires. */
  headers?: Record<string, string>;
}

export interface TokenApiOptions extends TokenApiSettings {
  /** URL template: each `%s` is replaced by the percent-encoded token, `%%` by `%`. */
  url: string;
  logger?: Logger;
}

/** The response a token service gave, as `processResult` sees it. */
export interface TokenApiResponse {
  status: number;
  headers: Headers;
  body: string;
}

/**
 * websockify's `BaseTokenAPI`: `GET` the `--token-source` URL with the token in place of
 * `%s`; a 2xx answer's body is the target, `host:port` (or `[v6]:port`).
 *
 * Beats websockify: the token is percent-encoded (websockify pastes it raw, so `?`, `/` or `#`
 * in a token rewrote the URL), the request times out (`timeoutMs`), the body is size-capped,
 * and failures are told apart: a 4xx or an empty 2xx body means "unknown token" (null, 401);
 * a 5xx, a timeout, a refused connection or a body that is not a target means the service is
 * broken (`PluginUnavailableError`, 503). Subclasses override `processResult` to read other
 * formats, as websockify's `JSONTokenApi` does.
 */
export class BaseTokenAPI implements TokenPlugin {
  readonly name: string = 'BaseTokenAPI';
  protected readonly url: string;
  protected readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly headers: Record<string, string>;

  constructor(options: TokenApiOptions) {
    checkUrlTemplate(options.url);
    this.url = options.url;
    this.log = options.logger ?? silentLogger;
    this.timeoutMs = positive('timeoutMs', options.timeoutMs, 5000);
    this.maxBodyBytes = positive('maxBodyBytes', options.maxBodyBytes, 64 * 1024);
    this.headers = { accept: 'application/json, text/plain;q=0.9, */*;q=0.1', ...options.headers };
  }

  /** Build from a `--token-source` URL template; the URL is checked now. */
  static async fromSource<T extends BaseTokenAPI>(
    this: new (options: TokenApiOptions) => T,
    source: string | undefined,
    options: SourceOptions & TokenApiSettings = {},
  ): Promise<T> {
    const plugin = this.name;
    if (!source) throw invalidSource('--token-source', plugin, source, TOKEN_API_GRAMMAR);
    try {
      checkUrlTemplate(source);
    } catch (err) {
      throw invalidSource('--token-source', plugin, source, TOKEN_API_GRAMMAR, errorMessage(err));
    }
    return new this({ ...options, url: source });
  }

  /** The URL asked for `token`. */
  urlFor(token: string): string {
    return expandTemplate(this.url, encodeURIComponent(token));
  }

  async lookup(token: string, ctx?: RequestContext): Promise<Target | null> {
    const log = ctx?.log ?? this.log;
    const res = await this.fetchToken(token);
    if (res.status >= 500) {
      throw new PluginUnavailableError(`${this.name}: token service answered ${res.status}`);
    }
    if (res.status < 200 || res.status >= 300) return null;
    try {
      return this.processResult(res);
    } catch (err) {
      if (err instanceof TokenInvalidError || err instanceof PluginUnavailableError) throw err;
      log.warn({ status: res.status, err: errorMessage(err) }, `${this.name}: token service answered something that is not a target`);
      throw new PluginUnavailableError(`${this.name}: token service answered something that is not a target`, { cause: err });
    }
  }

  /**
   * Turn a 2xx response into a target. Return null for "no such token"; throw for a body that
   * makes no sense (the lookup then fails with 503). Here: the body is `host:port`; an empty
   * body is null.
   */
  protected processResult(res: TokenApiResponse): Target | null {
    const text = res.body.trim();
    if (text.length === 0) return null;
    return parseTargetText(text, 'token service answer');
  }

  private async fetchToken(token: string): Promise<TokenApiResponse> {
    // One signal bounds the whole exchange, headers and body, so a slow body cannot hold the upgrade.
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const res = await fetch(this.urlFor(token), { headers: this.headers, signal, redirect: 'follow' });
      const body = await readCapped(res, this.maxBodyBytes);
      return { status: res.status, headers: res.headers, body };
    } catch (err) {
      if (err instanceof PluginUnavailableError) throw err;
      const reason = signal.aborted ? `no answer within ${this.timeoutMs} ms` : describeFetchError(err);
      // The URL holds the token: name the template instead.
      throw new PluginUnavailableError(`${this.name}: token service ${this.url} unavailable: ${reason}`, { cause: err });
    }
  }
}

/**
 * websockify's `JSONTokenApi`: like `BaseTokenAPI`, but the body is JSON
 * `{"host": "...", "port": 5900}` (`port` may be a numeric string).
 */
export class JSONTokenApi extends BaseTokenAPI {
  override readonly name: string = 'JSONTokenApi';

  protected override processResult(res: TokenApiResponse): Target | null {
    const json: unknown = JSON.parse(res.body);
    if (json === null || typeof json !== 'object') throw new Error('expected a JSON object');
    const { host, port } = json as { host?: unknown; port?: unknown };
    return targetFromHostPort(host, port, 'token service answer');
  }
}

/** Check a URL template: http(s), with at least one `%s`. */
function checkUrlTemplate(url: string): void {
  if (typeof url !== 'string' || !url.includes('%s')) {
    throw new InvalidOptionError(`token API URL ${JSON.stringify(url)} has no %s where the token goes`);
  }
  let parsed: URL;
  try {
    parsed = new URL(expandTemplate(url, 'token'));
  } catch {
    throw new InvalidOptionError(`token API URL ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidOptionError(`token API URL ${JSON.stringify(url)} is not http or https`);
  }
}

/** Python's `%` formatting as websockify applies it: `%s` → value, `%%` → `%`, others kept. */
function expandTemplate(template: string, value: string): string {
  return template.replace(/%[s%]/g, (m) => (m === '%s' ? value : '%'));
}

async function readCapped(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > max) {
    await res.body?.cancel();
    throw new PluginUnavailableError(`token service answer is larger than ${max} bytes`);
  }
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max) {
      await res.body.cancel().catch(() => {});
      throw new PluginUnavailableError(`token service answer is larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause !== undefined ? errorMessage(cause) : errorMessage(err);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(`invalid token API ${name} ${String(value)}: expected a positive number`);
  }
  return value;
}
