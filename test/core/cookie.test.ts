import { expect } from 'chai';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';
import {
  TokenInvalidError,
  createServer,
  type RequestContext,
  type Target,
  type TokenPlugin,
  type TsockifyOptions,
  type TsockifyServer,
} from '../../packages/core/src/index.js';
import { exchangeRequestToken, openCookie, resolveCookieExchange, sealCookie, setCookieHeader } from '../../packages/core/src/cookie.js';
import { tokenHash } from '../../packages/core/src/token-hash.js';
import { captureLogger, type CapturingLogger } from '../auth-plugins/context.js';
import { makeCerts, type CertSet } from '../helpers/certs.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

function get(port: number, path: string, headers: Record<string, string> = {}, tls = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const mod = tls ? https : http;
    const req = mod.request({ host: '127.0.0.1', port, path, headers, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function tryUpgrade(url: string, headers: Record<string, string> = {}): Promise<{ open: boolean; status?: number; body?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'binary', { headers });
    ws.on('open', () => { resolve({ open: true }); ws.close(); });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ open: false, status: res.statusCode ?? 0, body }));
    });
    ws.on('error', () => undefined);
  });
}

/** `name=value` of a Set-Cookie header, ready for a Cookie header. */
function cookiePair(setCookie: string[] | undefined): string {
  expect(setCookie, 'Set-Cookie').to.have.length(1);
  return setCookie![0]!.split(';')[0]!;
}

/**
 * A one-time token plugin as a plugin author would write one against RequestContext:
 * `good-<n>` tokens, each consumed on first use unless it comes from the exchange cookie.
 */
function oneTimePlugin(targetPort: number, expiresInMs = 60_000): TokenPlugin & { used: Set<string>; sources: Array<string | undefined> } {
  const used = new Set<string>();
  const sources: Array<string | undefined> = [];
  return {
    name: 'OneTime',
    used,
    sources,
    lookup(token: string, ctx: RequestContext): Target | null {
      sources.push(ctx.tokenSource);
      if (!token.startsWith('good-')) return null;
      if (ctx.tokenSource !== 'cookie') {
        if (used.has(token)) throw new TokenInvalidError('token already used');
        used.add(token);
      }
      return { host: '127.0.0.1', port: targetPort, expiresAt: Date.now() + expiresInMs };
    },
  };
}

describe('cookie exchange', () => {
  describe('#exchangeRequestToken', () => {
    it('takes the first non-empty token and keeps the other parameters as written', () => {
      expect(exchangeRequestToken('/?token=abc&x=1&y=a%20b')).to.deep.equal({ token: 'abc', location: '/?x=1&y=a%20b' });
      expect(exchangeRequestToken('/?a=1&token=&token=t%2B2')).to.deep.equal({ token: 't+2', location: '/?a=1' });
      expect(exchangeRequestToken('/desk/?token=abc')).to.deep.equal({ token: 'abc', location: '/desk/' });
      expect(exchangeRequestToken('/?x=1')).to.equal(undefined);
      expect(exchangeRequestToken('/')).to.equal(undefined);
    });

    it("takes the token out of noVNC's path parameter (vnc.html?path=websockify%3Ftoken%3DX)", () => {
      expect(exchangeRequestToken('/vnc.html?autoconnect=1&path=websockify%3Ftoken%3DXYZ&resize=scale')).to.deep.equal({
        token: 'XYZ',
        location: '/vnc.html?autoconnect=1&path=websockify&resize=scale',
      });
      expect(exchangeRequestToken('/vnc.html?path=ws%3Fa%3D1%26token%3DXYZ')).to.deep.equal({ token: 'XYZ', location: '/vnc.html?path=ws%3Fa%3D1' });
    });
  });

  describe('seal', () => {
    const cfg = resolveCookieExchange({ secret: 'a test key of at least sixteen bytes' })!;

    it('opens a sealed token and refuses a raw, altered or foreign one', () => {
      const sealed = sealCookie('tok.en', cfg);
      expect(openCookie(sealed, cfg)).to.equal('tok.en');
      expect(openCookie('tok.en', cfg)).to.equal(undefined);
      expect(openCookie(`${sealed}x`, cfg)).to.equal(undefined);
      const other = resolveCookieExchange({ secret: 'another key of at least sixteen bytes' })!;
      expect(openCookie(sealed, other)).to.equal(undefined);
      const renamed = resolveCookieExchange({ secret: 'a test key of at least sixteen bytes', cookieName: 'other' })!;
      expect(openCookie(sealed, renamed)).to.equal(undefined);
    });

    it('writes HttpOnly, SameSite=Strict, the scoped Path and Max-Age, and Secure on TLS only', () => {
      expect(setCookieHeader(cfg, 'v', 60, false)).to.equal('tsockify_token=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=60');
      expect(setCookieHeader(cfg, 'v', 60, true)).to.equal('tsockify_token=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=60; Secure');
      const forced = resolveCookieExchange({ secure: true })!;
      expect(setCookieHeader(forced, 'v', 1, false)).to.match(/; Secure$/);
      expect(resolveCookieExchange({ path: '/desk/vnc.html' })!.cookiePath).to.equal('/desk/');
    });

    it('refuses bad options at startup', () => {
      expect(() => resolveCookieExchange({ path: 'vnc.html' })).to.throw(/invalid cookieExchange.path/);
      expect(() => resolveCookieExchange({ cookieName: 'a b' })).to.throw(/invalid cookieExchange.cookieName/);
      expect(() => resolveCookieExchange({ maxAgeSec: 0 })).to.throw(/invalid cookieExchange.maxAgeSec/);
      expect(() => resolveCookieExchange({ path: '/a/x.html', cookiePath: '/b/' })).to.throw(/must contain the exchange path/);
      expect(() => resolveCookieExchange({ secret: 'short' })).to.throw(/too short/);
      expect(() => createServer({ target: '127.0.0.1:1', cookieExchange: true })).to.throw(/cookieExchange needs a tokenPlugin/);
    });
  });

  describe('server', () => {
    let target: TcpTargetServer;
    const servers: TsockifyServer[] = [];
    before(async () => { target = await startTcpTarget(); });
    after(async () => { await target.close(); });
    afterEach(async () => { for (const s of servers.splice(0)) await s.close(); });

    async function start(opts: Partial<TsockifyOptions>): Promise<{ s: TsockifyServer; log: CapturingLogger; ws: string }> {
      const log = captureLogger();
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, logger: log, cookieExchange: true, ...opts });
      servers.push(s);
      await s.listen();
      return { s, log, ws: `ws://127.0.0.1:${s.port}/websockify` };
    }

    it('answers GET /?token=X with 303 to the page without the token and a sealed HttpOnly cookie, no-store and no-referrer', async () => {
      const plugin = oneTimePlugin(target.port, 120_000);
      const { s, log } = await start({ tokenPlugin: plugin });
      const r = await get(s.port, '/?token=good-1&autoconnect=1');
      expect(r.status).to.equal(303);
      expect(r.headers.location).to.equal('/?autoconnect=1');
      expect(r.headers['cache-control']).to.equal('no-store');
      expect(r.headers['referrer-policy']).to.equal('no-referrer');
      const setCookie = r.headers['set-cookie']![0]!;
      expect(setCookie).to.match(/^tsockify_token=[A-Za-z0-9_-]{43}\.good-1; HttpOnly; SameSite=Strict; Path=\/; Max-Age=(\d+)$/);
      expect(Number(/Max-Age=(\d+)/.exec(setCookie)![1])).to.be.within(118, 120);
      expect(setCookie).to.not.include('Secure');
      expect(plugin.sources).to.deep.equal(['query']);
      const line = log.records.find((l) => l.msg === 'token exchanged for a cookie');
      expect(line?.obj['tokenHash']).to.equal(tokenHash('good-1'));
      expect(log.text()).to.not.include('good-1');
    });

    it('authenticates the upgrade by the cookie without consuming a one-time token again, for every reconnect', async () => {
      const plugin = oneTimePlugin(target.port);
      const { s, ws } = await start({ tokenPlugin: plugin });
      const cookie = cookiePair((await get(s.port, '/?token=good-2')).headers['set-cookie']);
      expect((await tryUpgrade(ws, { Cookie: cookie })).open).to.equal(true);
      expect((await tryUpgrade(ws, { Cookie: `other=1; ${cookie}` })).open).to.equal(true);
      expect(plugin.sources).to.deep.equal(['query', 'cookie', 'cookie']);
      // The link itself is spent: a second exchange and a direct ?token= upgrade are refused.
      const again = await get(s.port, '/?token=good-2');
      expect(again.status).to.equal(401);
      expect(again.body).to.equal('token already used\n');
      expect(again.headers['set-cookie']).to.equal(undefined);
      expect((await tryUpgrade(`${ws}?token=good-2`)).status).to.equal(401);
    });

    it('ignores a cookie that holds the raw token or a broken seal (401 missing token)', async () => {
      const { s, ws } = await start({ tokenPlugin: oneTimePlugin(target.port) });
      const cookie = cookiePair((await get(s.port, '/?token=good-3')).headers['set-cookie']);
      const r1 = await tryUpgrade(ws, { Cookie: 'tsockify_token=good-3' });
      expect(r1).to.deep.equal({ open: false, status: 401, body: 'missing token\n' });
      const broken = cookie.replace(/=(.)/, (_m, c: string) => `=${c === 'A' ? 'B' : 'A'}`);
      expect((await tryUpgrade(ws, { Cookie: broken })).status).to.equal(401);
    });

    it('does not accept the cookie of another server (a restart forgets the random key)', async () => {
      const a = await start({ tokenPlugin: oneTimePlugin(target.port) });
      const b = await start({ tokenPlugin: oneTimePlugin(target.port) });
      const cookie = cookiePair((await get(a.s.port, '/?token=good-4')).headers['set-cookie']);
      expect((await tryUpgrade(b.ws, { Cookie: cookie })).status).to.equal(401);
      const shared = { secret: 'the same key on every node, 32 bytes!' };
      const c = await start({ tokenPlugin: oneTimePlugin(target.port), cookieExchange: shared });
      const d = await start({ tokenPlugin: oneTimePlugin(target.port), cookieExchange: shared });
      const sharedCookie = cookiePair((await get(c.s.port, '/?token=good-5')).headers['set-cookie']);
      expect((await tryUpgrade(d.ws, { Cookie: sharedCookie })).open).to.equal(true);
    });

    it('prefers a query token over the cookie', async () => {
      const plugin = oneTimePlugin(target.port);
      const { s, ws } = await start({ tokenPlugin: plugin });
      const cookie = cookiePair((await get(s.port, '/?token=good-6')).headers['set-cookie']);
      expect((await tryUpgrade(`${ws}?token=bad`, { Cookie: cookie })).status).to.equal(401);
    });

    it('refuses an unknown or expired token at the exchange with 401 and a short reason, no cookie, no-store', async () => {
      const { s, log } = await start({
        tokenPlugin: { lookup: (t) => { if (t === 'old') throw new TokenInvalidError('token expired'); return null; } },
      });
      for (const [tok, reason] of [['nope', 'unknown token'], ['old', 'token expired']] as const) {
        const r = await get(s.port, `/?token=${tok}`);
        expect(r.status).to.equal(401);
        expect(r.body).to.equal(`${reason}\n`);
        expect(r.headers['set-cookie']).to.equal(undefined);
        expect(r.headers['cache-control']).to.equal('no-store');
        expect(r.headers['referrer-policy']).to.equal('no-referrer');
      }
      const refused = log.records.filter((l) => l.msg === 'cookie exchange refused');
      expect(refused.map((l) => l.obj['reason'])).to.deep.equal(['unknown token', 'token expired']);
      expect(refused[1]!.obj['tokenHash']).to.equal(tokenHash('old'));
      expect(log.text()).to.not.match(/"nope"|"old"/);
    });

    it('bounds Max-Age by the token lifetime and by maxAgeSec', async () => {
      const short = await start({ tokenPlugin: oneTimePlugin(target.port, 30_500) });
      expect((await get(short.s.port, '/?token=good-7')).headers['set-cookie']![0]).to.match(/Max-Age=(29|30)$/);
      const capped = await start({ tokenPlugin: oneTimePlugin(target.port, 3_600_000), cookieExchange: { maxAgeSec: 600 } });
      expect((await get(capped.s.port, '/?token=good-8')).headers['set-cookie']![0]).to.match(/Max-Age=600$/);
    });

    it('exchanges only at its path (noVNC: /vnc.html with the token inside path=), scoping the cookie to the folder', async () => {
      const { s } = await start({ tokenPlugin: oneTimePlugin(target.port), cookieExchange: { path: '/desk/vnc.html' } });
      expect((await get(s.port, '/?token=good-9')).status).to.equal(405);
      const r = await get(s.port, '/desk/vnc.html?autoconnect=1&path=desk%2Fwebsockify%3Ftoken%3Dgood-10');
      expect(r.status).to.equal(303);
      expect(r.headers.location).to.equal('/desk/vnc.html?autoconnect=1&path=desk%2Fwebsockify');
      expect(r.headers['set-cookie']![0]).to.match(/; Path=\/desk\/; /);
    });

    describe('over TLS', () => {
      let certs: CertSet;
      before(() => { certs = makeCerts(); });
      after(() => certs.cleanup());

      it('adds Secure', async () => {
        const { s } = await start({
          tokenPlugin: oneTimePlugin(target.port),
          tls: { cert: fs.readFileSync(certs.serverCert), key: fs.readFileSync(certs.serverKey) },
        });
        const r = await get(s.port, '/?token=good-11', {}, true);
        expect(r.status).to.equal(303);
        expect(r.headers['set-cookie']![0]).to.match(/; Secure$/);
      });
    });
  });
});
