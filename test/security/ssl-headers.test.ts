/**
 * Spoofed `ssl_*` headers. websockify 0.13 strips client headers named `SSL_*` case-sensitively
 * and then trusts `SSL_CLIENT_S_DN_CN` in ClientCertCNAuth, so a plain-ws client sending a
 * lower-case `ssl_client_s_dn_cn: alice` passes as alice. tsockify strips every header whose
 * name starts with `ssl_` in ANY case before any plugin runs, and sets the CN only from a
 * certificate the TLS layer verified.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import fc from 'fast-check';
import WebSocket from 'ws';
import { createServer, type AuthPlugin, type RequestContext, type TsockifyServer } from '@tsockify/core';
import { ClientCertCNAuth } from '../../packages/auth-plugins/src/index.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { makeCerts, type CertSet } from '../helpers/certs.js';
import { rawSession } from '../fuzz/frame-builder.js';

const CN_HEADER = 'ssl_client_s_dn_cn';

/** Every upper/lower-case spelling of `name` picked by the bits of `mask`. */
function caseVariant(name: string, mask: bigint): string {
  return [...name].map((c, i) => ((mask >> BigInt(i)) & 1n ? c.toUpperCase() : c.toLowerCase())).join('');
}

function outcome(url: string, opts: WebSocket.ClientOptions): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'binary', opts);
    ws.on('open', () => { ws.close(); resolve('open'); });
    ws.on('unexpected-response', (_req, res) => { res.resume(); resolve(`status ${res.statusCode}`); ws.terminate(); });
    ws.on('error', (err) => resolve(`error ${err.message}`));
  });
}

describe('security: spoofed ssl_* headers', function () {
  this.timeout(30_000);
  let certs: CertSet;
  let target: TcpTargetServer;
  const servers: TsockifyServer[] = [];
  /** The headers the auth plugin saw on the last request. */
  let seen: Record<string, unknown> = {};

  before(async () => {
    certs = makeCerts();
    target = await startTcpTarget();
  });
  after(async () => {
    for (const s of servers) await s.close();
    await target?.close();
    certs?.cleanup();
  });

  /** A server whose auth plugin records the headers, then applies ClientCertCNAuth(allowed). */
  async function start(tls: 'none' | 'tls' | 'mtls', allowed: string[]): Promise<TsockifyServer> {
    const cn = new ClientCertCNAuth({ commonNames: allowed });
    const auth: AuthPlugin = {
      authenticate(ctx: RequestContext) {
        seen = { ...ctx.headers };
        return cn.authenticate(ctx);
      },
    };
    const tlsOpts = tls === 'none' ? undefined : {
      cert: fs.readFileSync(certs.serverCert),
      key: fs.readFileSync(certs.serverKey),
      ...(tls === 'mtls' ? { verifyClient: true, ca: fs.readFileSync(certs.caCert) } : {}),
    };
    const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}`, authPlugin: auth, ...(tlsOpts ? { tls: tlsOpts } : {}) });
    await s.listen();
    servers.push(s);
    return s;
  }

  it('refuses a plain-ws client that sends ssl_client_s_dn_cn in any case (websockify 0.13 lets lower case through)', async () => {
    const s = await start('none', ['alice']);
    await fc.assert(fc.asyncProperty(fc.bigInt({ min: 0n, max: (1n << BigInt(CN_HEADER.length)) - 1n }), async (mask) => {
      const name = caseVariant(CN_HEADER, mask);
      const r = await rawSession(s.port, { headers: [`${name}: alice`] });
      r.destroy();
      expect(r.status, name).to.equal(403);
      // The plugin never saw a client-sent ssl_* header.
      expect(Object.keys(seen).filter((k) => k.toLowerCase().startsWith('ssl_')), name).to.deep.equal([]);
    }), { numRuns: 64 });
  });

  it('strips every ssl_* header, not only the CN (SSL_CLIENT_VERIFY, Ssl_Client_Cert...)', async () => {
    const s = await start('none', ['alice']);
    const r = await rawSession(s.port, { headers: ['SSL_CLIENT_VERIFY: SUCCESS', 'Ssl_Client_Cert: x', 'ssl_anything: y', `${CN_HEADER}: alice`, 'sSl_: z'] });
    r.destroy();
    expect(r.status).to.equal(403);
    expect(Object.keys(seen).filter((k) => k.toLowerCase().startsWith('ssl_'))).to.deep.equal([]);
  });

  it('does not take a dashed look-alike (ssl-client-s-dn-cn) as the certificate CN', async () => {
    const s = await start('none', ['alice']);
    const r = await rawSession(s.port, { headers: ['ssl-client-s-dn-cn: alice', 'SSL-CLIENT-S-DN-CN: alice'] });
    r.destroy();
    expect(r.status).to.equal(403);
  });

  it('refuses a TLS client without a certificate that spoofs the CN header in any case', async () => {
    const s = await start('tls', ['alice']);
    const ca = fs.readFileSync(certs.caCert);
    for (const name of [CN_HEADER, CN_HEADER.toUpperCase(), 'Ssl_Client_S_Dn_Cn']) {
      expect(await outcome(`wss://localhost:${s.port}/`, { ca, headers: { [name]: 'alice' } }), name).to.equal('status 403');
    }
  });

  it('takes the CN from the verified certificate, not from a spoofed header', async () => {
    const ca = fs.readFileSync(certs.caCert);
    const client = { ca, cert: fs.readFileSync(certs.clientCert), key: fs.readFileSync(certs.clientKey) };
    // The certificate says alice; the header claims bob, who is the only one allowed.
    const onlyBob = await start('mtls', ['bob']);
    expect(await outcome(`wss://localhost:${onlyBob.port}/`, { ...client, headers: { [CN_HEADER]: 'bob', SSL_CLIENT_S_DN_CN: 'bob' } })).to.equal('status 403');
    // alice is allowed and her certificate passes, whatever the header says.
    const onlyAlice = await start('mtls', ['alice']);
    expect(await outcome(`wss://localhost:${onlyAlice.port}/`, { ...client, headers: { [CN_HEADER]: 'mallory' } })).to.equal('open');
    expect(seen[CN_HEADER]).to.equal('alice');
  });
});
