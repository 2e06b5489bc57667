import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { InvalidOptionError, PluginUnavailableError, type Target } from '@tsockify/core';
import { BaseTokenAPI, JSONTokenApi, type TokenApiResponse } from '../../packages/auth-plugins/src/index.js';
import { freePort } from '../helpers/net.js';
import { captureLogger, makeContext } from './context.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A real token service on 127.0.0.1:0 whose behaviour each test sets. */
async function startTokenService(): Promise<{ base: string; urls: string[]; handle(h: Handler): void; close(): Promise<void> }> {
  let handler: Handler = (_req, res) => res.writeHead(404).end();
  const urls: string[] = [];
  const server = http.createServer((req, res) => {
    urls.push(req.url ?? '');
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    urls,
    handle: (h) => (handler = h),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => expect.fail('expected a rejection'),
    (e: unknown) => e as Error,
  );
}

describe('BaseTokenAPI', () => {
  let svc: Awaited<ReturnType<typeof startTokenService>>;
  beforeEach(async () => (svc = await startTokenService()));
  afterEach(() => svc.close());

  describe('#lookup', () => {
    it('GETs the URL with the token in place of %s and parses a host:port body', async () => {
      svc.handle((req, res) => res.end(req.url === '/token/abc' ? '10.1.2.3:5901\n' : ''));
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/token/%s`);
      expect(await plugin.lookup('abc', makeContext())).to.deep.equal({ host: '10.1.2.3', port: 5901 });
      expect(svc.urls).to.deep.equal(['/token/abc']);
    });

    it('percent-encodes the token so it cannot rewrite the URL', async () => {
      let seen: URL | undefined;
      svc.handle((req, res) => {
        seen = new URL(req.url!, 'http://x');
        res.end('h:1');
      });
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/lookup?token=%s&kind=vnc`);
      const token = 'a b/../c?d=1&kind=evil#frag';
      expect(await plugin.lookup(token, makeContext())).to.deep.equal({ host: 'h', port: 1 });
      expect(seen!.pathname).to.equal('/lookup');
      expect(seen!.searchParams.getAll('token')).to.deep.equal([token]);
      expect(seen!.searchParams.getAll('kind')).to.deep.equal(['vnc']);
    });

    it('treats %% in the template as a literal % (Python formatting, as websockify)', async () => {
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/100%%/%s`);
      svc.handle((_req, res) => res.end('h:2'));
      await plugin.lookup('t', makeContext());
      expect(svc.urls).to.deep.equal(['/100%/t']);
    });

    it('accepts an IPv6 target in the body', async () => {
      svc.handle((_req, res) => res.end('::1:5900'));
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/%s`);
      expect(await plugin.lookup('t', makeContext())).to.deep.equal({ host: '::1', port: 5900 });
    });

    it('answers null (unknown token) for a 404 or an empty 200 body', async () => {
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/%s`);
      svc.handle((_req, res) => res.writeHead(404).end('no such token'));
      expect(await plugin.lookup('t', makeContext())).to.equal(null);
      svc.handle((_req, res) => res.writeHead(200).end(''));
      expect(await plugin.lookup('t', makeContext())).to.equal(null);
    });

    it('fails with PluginUnavailableError on a 5xx answer', async () => {
      svc.handle((_req, res) => res.writeHead(502).end());
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/%s`);
      const err = await rejection(plugin.lookup('t', makeContext()));
      expect(err).to.be.instanceOf(PluginUnavailableError);
      expect(err.message).to.include('502');
    });

    it('fails with PluginUnavailableError on a body that is not a target, logging no token', async () => {
      svc.handle((_req, res) => res.end('<html>oops</html>'));
      const log = captureLogger();
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/%s`);
      const err = await rejection(plugin.lookup('sekrit-token', makeContext({ log })));
      expect(err).to.be.instanceOf(PluginUnavailableError);
      expect(log.records).to.have.length(1);
      expect(log.text()).not.to.include('sekrit-token');
    });

    it('times out on a service that never answers: PluginUnavailableError within the bound', async () => {
      svc.handle(() => {
        /* never answer */
      });
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/%s`, { timeoutMs: 300 });
      const t0 = Date.now();
      const err = await rejection(plugin.lookup('sekrit-token', makeContext()));
      const took = Date.now() - t0;
      expect(err).to.be.instanceOf(PluginUnavailableError);
      expect(err.message).to.include('no answer within 300 ms');
      expect(err.message).not.to.include('sekrit-token');
      expect(took).to.be.within(250, 2000);
    });

    it('times out on a service that sends headers and then stalls the body', async () => {
      svc.handle((_req, res) => {
        res.writeHead(200, { 'content-length': '100' });
        res.write('10.0.0.');
      });
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/%s`, { timeoutMs: 300 });
      const err = await rejection(plugin.lookup('t', makeContext()));
      expect(err).to.be.instanceOf(PluginUnavailableError);
      expect(err.message).to.include('no answer within 300 ms');
    });

    it('fails with PluginUnavailableError when nothing listens, and works once the service is back', async () => {
      const port = await freePort();
      const plugin = await BaseTokenAPI.fromSource(`http://127.0.0.1:${port}/%s`);
      const err = await rejection(plugin.lookup('t', makeContext()));
      expect(err).to.be.instanceOf(PluginUnavailableError);
      expect(err.message).to.include('ECONNREFUSED');
      const late = http.createServer((_req, res) => res.end('h:9'));
      late.listen(port, '127.0.0.1');
      await once(late, 'listening');
      try {
        expect(await plugin.lookup('t', makeContext())).to.deep.equal({ host: 'h', port: 9 });
      } finally {
        late.closeAllConnections();
        await new Promise<void>((r) => late.close(() => r()));
      }
    });

    it('refuses an answer larger than maxBodyBytes', async () => {
      svc.handle((_req, res) => res.end('x'.repeat(10_000)));
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/%s`, { maxBodyBytes: 1000 });
      const err = await rejection(plugin.lookup('t', makeContext()));
      expect(err).to.be.instanceOf(PluginUnavailableError);
      expect(err.message).to.include('larger than 1000 bytes');
    });

    it('sends the configured extra headers', async () => {
      let auth: string | undefined;
      svc.handle((req, res) => {
        auth = req.headers.authorization;
        res.end('h:1');
      });
      const plugin = await BaseTokenAPI.fromSource(`${svc.base}/%s`, { headers: { authorization: 'Bearer svc' } });
      await plugin.lookup('t', makeContext());
      expect(auth).to.equal('Bearer svc');
    });

    it('lets a subclass read another format by overriding processResult', async () => {
      class CsvTokenApi extends BaseTokenAPI {
        protected override processResult(res: TokenApiResponse): Target | null {
          const [host, port] = res.body.split(',');
          return { host: host!, port: Number(port) };
        }
      }
      svc.handle((_req, res) => res.end('h,77'));
      const plugin = await CsvTokenApi.fromSource(`${svc.base}/%s`);
      expect(plugin).to.be.instanceOf(CsvTokenApi);
      expect(await plugin.lookup('t', makeContext())).to.deep.equal({ host: 'h', port: 77 });
    });
  });

  describe('.fromSource', () => {
    it('refuses a URL without %s, naming the value and the grammar', async () => {
      const err = await rejection(BaseTokenAPI.fromSource('http://127.0.0.1/token'));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect(err.message).to.match(/^invalid --token-source "http:\/\/127\.0\.0\.1\/token": BaseTokenAPI expects an http\(s\) URL with %s/);
    });

    it('refuses a non-http URL and a non-URL', async () => {
      expect(await rejection(BaseTokenAPI.fromSource('ftp://h/%s'))).to.be.instanceOf(InvalidOptionError);
      expect(await rejection(JSONTokenApi.fromSource('not a url %s'))).to.be.instanceOf(InvalidOptionError);
    });
  });
});

describe('JSONTokenApi', () => {
  let svc: Awaited<ReturnType<typeof startTokenService>>;
  beforeEach(async () => (svc = await startTokenService()));
  afterEach(() => svc.close());

  it('parses {"host": ..., "port": ...} with a number or a string port', async () => {
    const plugin = await JSONTokenApi.fromSource(`${svc.base}/api/%s`);
    svc.handle((_req, res) => res.end(JSON.stringify({ host: 'vnc1', port: 5901 })));
    expect(await plugin.lookup('t', makeContext())).to.deep.equal({ host: 'vnc1', port: 5901 });
    svc.handle((_req, res) => res.end(JSON.stringify({ host: '::1', port: '5902' })));
    expect(await plugin.lookup('t', makeContext())).to.deep.equal({ host: '::1', port: 5902 });
  });

  it('answers null for a 404 and fails with 503 for JSON without host and port', async () => {
    const plugin = await JSONTokenApi.fromSource(`${svc.base}/api/%s`);
    svc.handle((_req, res) => res.writeHead(404).end('{}'));
    expect(await plugin.lookup('t', makeContext())).to.equal(null);
    svc.handle((_req, res) => res.end('{"host": "h"}'));
    expect(await rejection(plugin.lookup('t', makeContext()))).to.be.instanceOf(PluginUnavailableError);
    svc.handle((_req, res) => res.end('not json'));
    expect(await rejection(plugin.lookup('t', makeContext()))).to.be.instanceOf(PluginUnavailableError);
  });
});
