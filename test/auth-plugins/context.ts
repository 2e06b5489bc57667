import { IncomingMessage, type IncomingHttpHeaders } from 'node:http';
import { Socket } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import type { Logger, RequestContext, Target } from '@tsockify/core';

export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  obj: Record<string, unknown>;
}

export interface CapturingLogger extends Logger {
  records: LogRecord[];
  /** Every message logged, at any level, joined by newlines (for substring checks). */
  text(): string;
}

/** A logger that keeps what it is given, so tests can check both what is logged and what never is. */
export function captureLogger(records: LogRecord[] = []): CapturingLogger {
  const at =
    (level: LogRecord['level']) =>
    (a: object | string, b?: string): void => {
      if (typeof a === 'string') records.push({ level, msg: a, obj: {} });
      else records.push({ level, msg: b ?? '', obj: a as Record<string, unknown> });
    };
  const logger: CapturingLogger = {
    records,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
    text: () => records.map((r) => `${r.msg} ${JSON.stringify(r.obj)}`).join('\n'),
  };
  return logger;
}

export interface ContextInit {
  headers?: IncomingHttpHeaders;
  path?: string;
  query?: string;
  token?: string;
  secure?: boolean;
  clientCertificate?: Partial<PeerCertificate>;
  target?: Target;
  log?: Logger;
}

/**
 * A RequestContext as the core builds it for an upgrade, around a real (unconnected)
 * IncomingMessage. Header names are lowercase, as Node gives them.
 */
export function makeContext(init: ContextInit = {}): RequestContext {
  const req = new IncomingMessage(new Socket());
  req.method = 'GET';
  req.url = `${init.path ?? '/websockify'}${init.query ? `?${init.query}` : ''}`;
  const headers: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
  req.headers = headers;
  const ctx: RequestContext = {
    req,
    headers,
    path: init.path ?? '/websockify',
    query: new URLSearchParams(init.query ?? ''),
    cookies: {},
    remoteAddress: '127.0.0.1',
    remotePort: 40000,
    secure: init.secure ?? false,
    log: init.log ?? captureLogger(),
    ...(init.clientCertificate ? { clientCertificate: init.clientCertificate as PeerCertificate } : {}),
    ...(init.token !== undefined ? { token: init.token } : {}),
    ...(init.target ? { target: init.target } : {}),
  };
  return ctx;
}
