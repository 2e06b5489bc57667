import { expect } from 'chai';
import dns from 'node:dns';
import { once } from 'node:events';
import net from 'node:net';
import WebSocket from 'ws';
import { createServer, type RejectInfo, type TokenPlugin, type TsockifyOptions, type TsockifyServer } from '../../packages/core/src/index.js';
import { TargetPolicy, parseAllowRule, unmapAddress } from '../../packages/core/src/allow-list.js';
import { captureLogger } from '../auth-plugins/context.js';

/** A TCP server bound to one loopback address (Linux routes all of 127/8 to lo), counting accepts. */
async function listenOn(host: string): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => { n++; sockets.push(s); s.on('error', () => undefined); s.pipe(s); });
  server.listen(0, host);
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => n,
    close: async () => { for (const s of sockets) s.destroy(); await new Promise<void>((r) => server.close(() => r())); },
  };
}

function tryUpgrade(url: string): Promise<{ open: boolean; status?: number; body?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'binary');
    ws.on('open', () => { resolve({ open: true }); ws.close(); });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ open: false, status: res.statusCode ?? 0, body }));
    });
    ws.on('error', () => undefined);
  });
}

/** A token plugin whose token is the target, `host:port` (hosts may be names). */
const targetIsToken: TokenPlugin = {
  name: 'TargetIsToken',
  lookup: (token) => {
    if (token.startsWith('unix:')) return { unixSocket: token.slice(5) };
    const i = token.lastIndexOf(':');
    return { host: token.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(token.slice(i + 1)) };
  },
};

describe('allow-list', () => {
  describe('#parseAllowRule', () => {
    it('reads IPv4 and IPv6 CIDRs with single ports, ranges, lists and wildcards', () => {
      const check = (rule: string, ip: string, port: number): boolean => {
        const r = parseAllowRule(rule);
        const fam = net.isIP(ip) === 4 ? 'ipv4' : 'ipv6';
        return r.addresses.check(ip, fam) && (r.ports.length === 0 || r.ports.some(([lo, hi]) => port >= lo && port <= hi));
      };
      expect(check('10.0.0.0/8:5900-5999', '10.20.30.40', 5901)).to.equal(true);
      expect(check('10.0.0.0/8:5900-5999', '10.20.30.40', 6000)).to.equal(false);
      expect(check('10.0.0.0/8:5900-5999', '11.0.0.1', 5901)).to.equal(false);
      expect(check('192.168.1.7', '192.168.1.7', 1)).to.equal(true);
      expect(check('192.168.1.7:5901,5905-5906', '192.168.1.7', 5905)).to.equal(true);
      expect(check('192.168.1.7:5901,5905-5906', '192.168.1.7', 5902)).to.equal(false);
      expect(check('[fd00::]/8:5900', 'fd12::1', 5900)).to.equal(true);
      expect(check('[fd00::/8]:5900', 'fd12::1', 5900)).to.equal(true);
      expect(check('fd00::/8', 'fd12::1', 1234)).to.equal(true);
      expect(check('[2001:db8::5]:5901', '2001:db8::5', 5901)).to.equal(true);
      expect(check('*:5900-5999', '203.0.113.9', 5950)).to.equal(true);
      expect(check('*:5900-5999', '2001:db8::1', 5950)).to.equal(true);
      expect(check('10.0.0.0/8:*', '10.0.0.1', 22)).to.equal(true);
    });

    it('refuses names, bad prefixes and bad ports at startup, naming the entry and the grammar', () => {
      for (const bad of ['desk.example:5901', '10.0.0.0/33', '10.0.0.0/8:0', '10.0.0.0/8:70000', '10.0.0.0/8:5999-5900', '[fd00::', '[fd00::]x', '']) {
        expect(() => parseAllowRule(bad), bad).to.throw(/invalid allowTargets entry .*expected CIDR\[:PORTS\]/);
      }
      expect(() => createServer({ tokenPlugin: targetIsToken, allowTargets: ['nonsense'] })).to.throw(/invalid allowTargets entry "nonsense"/);
    });
  });

  describe('TargetPolicy#refusal', () => {
    const central = new TargetPolicy({ allowLoopback: false, allowLinkLocal: false, allowMetadata: false });

    it('denies loopback, unspecified, link-local and metadata addresses, IPv4 and IPv6', () => {
      expect(central.refusal('127.0.0.1', 5901)).to.match(/loopback/);
      expect(central.refusal('127.8.9.10', 5901)).to.match(/loopback/);
      expect(central.refusal('0.0.0.0', 5901)).to.match(/loopback/);
      expect(central.refusal('::1', 5901)).to.match(/loopback/);
      expect(central.refusal('::', 5901)).to.match(/loopback/);
      expect(central.refusal('169.254.1.1', 80)).to.match(/link-local/);
      expect(central.refusal('fe80::1', 80)).to.match(/link-local/);
      expect(central.refusal('169.254.169.254', 80)).to.match(/cloud metadata/);
      expect(central.refusal('fd00:ec2::254', 80)).to.match(/cloud metadata/);
      expect(central.refusal('10.0.0.5', 5901)).to.equal(undefined);
    });

    it('sees through IPv4-mapped IPv6 addresses (::ffff:127.0.0.1 is loopback)', () => {
      expect(unmapAddress('::ffff:127.0.0.1')).to.equal('127.0.0.1');
      expect(unmapAddress('::ffff:a9fe:a9fe')).to.equal('169.254.169.254');
      expect(central.refusal('::ffff:127.0.0.1', 5901)).to.match(/loopback/);
      expect(central.refusal('::FFFF:a9fe:a9fe', 80)).to.match(/cloud metadata/);
    });

    it('keeps metadata denied when only link-local is allowed, and when an entry covers it', () => {
      const p = new TargetPolicy({ allow: ['0.0.0.0/0'], allowLoopback: true, allowLinkLocal: true, allowMetadata: false });
      expect(p.refusal('169.254.1.1', 80)).to.equal(undefined);
      expect(p.refusal('169.254.169.254', 80)).to.match(/cloud metadata/);
    });

    it('refuses addresses and ports outside every entry', () => {
      const p = new TargetPolicy({ allow: ['10.0.0.0/8:5900-5999'], allowLoopback: false, allowLinkLocal: false, allowMetadata: false });
      expect(p.refusal('10.1.2.3', 5901)).to.equal(undefined);
      expect(p.refusal('10.1.2.3', 22)).to.match(/matches no allowTargets entry \(10\.0\.0\.0\/8:5900-5999\)/);
      expect(p.refusal('192.168.0.1', 5901)).to.match(/matches no allowTargets entry/);
    });
  });

  describe('server', () => {
    const servers: TsockifyServer[] = [];
    const listeners: Array<{ close: () => Promise<void> }> = [];
    afterEach(async () => {
      for (const s of servers.splice(0)) await s.close();
      for (const l of listeners.splice(0)) await l.close();
    });

    async function start(opts: Partial<TsockifyOptions>): Promise<{ url: (token: string) => string; rejects: RejectInfo[]; log: ReturnType<typeof captureLogger> }> {
      const log = captureLogger();
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, tokenPlugin: targetIsToken, logger: log, ...opts });
      servers.push(s);
      await s.listen();
      const rejects: RejectInfo[] = [];
      s.on('reject', (r) => rejects.push(r));
      return { url: (t) => `ws://127.0.0.1:${s.port}/websockify?token=${encodeURIComponent(t)}`, rejects, log };
    }

    it('dials an allowed address and refuses one outside the list with 403 "target not allowed", never connecting to it', async () => {
      const allowed = await listenOn('127.0.0.2');
      const denied = await listenOn('127.0.0.3');
      listeners.push(allowed, denied);
      const { url, rejects, log } = await start({ allowTargets: [`127.0.0.2/32:${allowed.port}`], allowLoopbackTargets: true });
      expect((await tryUpgrade(url(`127.0.0.2:${allowed.port}`))).open).to.equal(true);
      const r = await tryUpgrade(url(`127.0.0.3:${denied.port}`));
      expect(r).to.deep.equal({ open: false, status: 403, body: 'target not allowed\n' });
      expect(denied.accepted()).to.equal(0);
      expect(rejects.at(-1)).to.include({ status: 403, code: 'TSOCK_ERR_TARGET_DENIED', reason: 'target not allowed' });
      const line = log.records.find((l) => l.msg === 'handshake refused' && l.obj['status'] === 403);
      expect(line?.obj['detail']).to.match(/127\.0\.0\.3:\d+ matches no allowTargets entry/);
    });

    it('refuses a port outside the entry on an allowed address', async () => {
      const allowed = await listenOn('127.0.0.2');
      listeners.push(allowed);
      const { url } = await start({ allowTargets: [`127.0.0.2:${allowed.port + 1}`], allowLoopbackTargets: true });
      expect((await tryUpgrade(url(`127.0.0.2:${allowed.port}`))).status).to.equal(403);
      expect(allowed.accepted()).to.equal(0);
    });

    it('denies loopback in central mode once an allow-list is given, even inside an entry, unless allowLoopbackTargets', async () => {
      const t = await listenOn('127.0.0.2');
      listeners.push(t);
      const strict = await start({ allowTargets: ['127.0.0.0/8'] });
      const r = await tryUpgrade(strict.url(`127.0.0.2:${t.port}`));
      expect(r.status).to.equal(403);
      expect(strict.log.records.find((l) => l.obj['status'] === 403)?.obj['detail']).to.match(/is a loopback address \(allowLoopbackTargets or --allow-loopback-targets permits it\)/);
      const open = await start({ allowTargets: ['127.0.0.0/8'], allowLoopbackTargets: true });
      expect((await tryUpgrade(open.url(`127.0.0.2:${t.port}`))).open).to.equal(true);
    });

    it('keeps loopback reachable in central mode without an allow-list (websockify token files point at localhost)', async () => {
      const t = await listenOn('127.0.0.1');
      listeners.push(t);
      const { url } = await start({});
      expect((await tryUpgrade(url(`127.0.0.1:${t.port}`))).open).to.equal(true);
    });

    it('denies link-local and cloud metadata targets in central mode by default, without dialling', async () => {
      const { url, log } = await start({});
      for (const t of ['169.254.169.254:80', '[fe80::1]:5901', '169.254.7.7:5901']) {
        expect((await tryUpgrade(url(t))).status, t).to.equal(403);
      }
      const details = log.records.filter((l) => l.obj['status'] === 403).map((l) => String(l.obj['detail']));
      expect(details[0]).to.match(/cloud metadata/);
      expect(details[1]).to.match(/link-local/);
    });

    it('resolves a name, checks every address it resolves to, and dials the checked address', async () => {
      const t = await listenOn('127.0.0.1');
      listeners.push(t);
      const denied = await start({ allowTargets: ['10.0.0.0/8'] });
      expect((await tryUpgrade(denied.url(`localhost:${t.port}`))).status).to.equal(403);
      expect(denied.log.records.find((l) => l.obj['status'] === 403)?.obj['detail']).to.match(/^localhost:\d+ resolves to .* is a loopback address/);
      expect(t.accepted()).to.equal(0);
      const allowed = await start({ allowTargets: ['127.0.0.1/32', '::1/128'], allowLoopbackTargets: true });
      expect((await tryUpgrade(allowed.url(`localhost:${t.port}`))).open).to.equal(true);
      expect(t.accepted()).to.equal(1);
    });

    it('resolves once and dials the checked address, so a rebinding answer after the check is never used', async () => {
      const good = await listenOn('127.0.0.2');
      const evil = await listenOn('127.0.0.3');
      listeners.push(good, evil);
      const { url } = await start({ allowTargets: ['127.0.0.2/32'], allowLoopbackTargets: true });
      const real = dns.promises.lookup;
      let calls = 0;
      // A resolver that answers the allowed address first and the forbidden one afterwards.
      (dns.promises as { lookup: unknown }).lookup = async (host: string, opts: unknown) => {
        if (host !== 'rebind.test') return (real as (h: string, o: unknown) => Promise<unknown>)(host, opts);
        calls++;
        return [{ address: calls === 1 ? '127.0.0.2' : '127.0.0.3', family: 4 }];
      };
      try {
        expect((await tryUpgrade(url(`rebind.test:${good.port}`))).open).to.equal(true);
      } finally {
        (dns.promises as { lookup: unknown }).lookup = real;
      }
      expect(calls).to.equal(1);
      expect(good.accepted()).to.equal(1);
      expect(evil.accepted()).to.equal(0);
    });

    it('treats unix socket targets as loopback: denied with the allow-list, dialled with allowLoopbackTargets', async () => {
      const strict = await start({ allowTargets: ['10.0.0.0/8'] });
      expect((await tryUpgrade(strict.url('unix:/tmp/tsockify-nothing-here.sock'))).status).to.equal(403);
      const local = await start({ allowTargets: ['10.0.0.0/8'], allowLoopbackTargets: true });
      expect((await tryUpgrade(local.url('unix:/tmp/tsockify-nothing-here.sock'))).status).to.equal(502);
    });

    it('checks a static target too when an allow-list is given', async () => {
      const t = await listenOn('127.0.0.3');
      listeners.push(t);
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.3:${t.port}`, allowTargets: ['127.0.0.2/32'] });
      servers.push(s);
      await s.listen();
      expect((await tryUpgrade(`ws://127.0.0.1:${s.port}/`)).status).to.equal(403);
    });
  });
});
