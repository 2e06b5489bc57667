import type { AuthPlugin, RequestContext } from '@tsockify/core';
import { AuthenticationError, InvalidOptionError } from '@tsockify/core';
import { invalidSource } from './source.js';

export const CLIENT_CERT_GRAMMAR = 'space-separated common names of allowed client certificates';

/** The header websockify (and Apache's +StdEnvVars) puts the client certificate's CN in. */
const CN_HEADER = 'ssl_client_s_dn_cn';

export interface ClientCertCNAuthOptions {
  /** Allowed subject common names. */
  commonNames: string[];
}

/**
 * websockify's `ClientCertCNAuth`: `--auth-source` lists allowed common names; the client
 * certificate's subject CN must be one of them, else 403.
 *
 * The CN comes from `ctx.clientCertificate` (the certificate the TLS layer verified), else
 * from the `SSL_CLIENT_S_DN_CN` header that the core sets from that certificate after
 * removing every client-sent `ssl_*` header in any case. As a second line of defence the
 * header is believed only on a TLS connection: a plain-ws client cannot have a certificate,
 * so a spoofed header (websockify 0.13 lets a lowercase one through) never passes.
 */
export class ClientCertCNAuth implements AuthPlugin {
  readonly name = 'ClientCertCNAuth';
  readonly commonNames: readonly string[];
  private readonly allowed: Set<string>;

  constructor(options: ClientCertCNAuthOptions) {
    const names = (options.commonNames ?? []).filter((n) => n.length > 0);
    if (names.length === 0) throw new InvalidOptionError('ClientCertCNAuth: options.commonNames must list at least one name');
    this.commonNames = names;
    this.allowed = new Set(names);
  }

  /** Build from `--auth-source "cn1 cn2 ..."`. */
  static fromSource(source: string | undefined): ClientCertCNAuth {
    const names = source?.split(/\s+/).filter((n) => n.length > 0) ?? [];
    if (names.length === 0) throw invalidSource('--auth-source', 'ClientCertCNAuth', source, CLIENT_CERT_GRAMMAR);
    return new ClientCertCNAuth({ commonNames: names });
  }

  authenticate(ctx: RequestContext): void {
    const cns = commonNamesOf(ctx);
    // A certificate with several CNs passes only if every one of them is allowed.
    if (cns.length === 0 || !cns.every((cn) => this.allowed.has(cn))) {
      throw new AuthenticationError('client certificate CN not allowed', 403);
    }
  }
}

function commonNamesOf(ctx: RequestContext): string[] {
  const cn: unknown = ctx.clientCertificate?.subject?.CN;
  if (typeof cn === 'string') return [cn];
  if (Array.isArray(cn)) return cn.filter((v): v is string => typeof v === 'string');
  if (!ctx.secure) return [];
  const header = ctx.headers[CN_HEADER];
  return typeof header === 'string' && header.length > 0 ? [header] : [];
}
