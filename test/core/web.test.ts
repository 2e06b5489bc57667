import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { createWebHandler, parseTarget } from '../../packages/core/src/web.js';
import { mimeType } from '../../packages/core/src/mime.js';
import { InvalidOptionError } from '../../packages/core/src/errors.js';
import type { Logger } from '../../packages/core/src/logger.js';
import type { WebOptions } from '../../packages/core/src/options.js';

const SECRET = 'TOP-SECRET-MARKER';
const NOVNC = '/usr/share/novnc';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * One request over a raw socket: the request target goes on the wire exactly as given, so
 * `//evil.com/`, `/%2e%2e/` and `/..%2f` reach the server unnormalised.
 */
async function raw(port: number, target: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  const sock = net.connect({ port, host: '127.0.0.1' });
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  sock.write(`${opts.method ?? 'GET'} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${extra}\r\n`);
  await once(sock, 'close');
  const all = Buffer.concat(chunks);
  const split = all.indexOf('\r\n\r\n');
  if (split === -1) throw new Error(`no response head for ${target}: ${JSON.stringify(all.toString('latin1'))}`);
  const [statusLine, ...lines] = all.subarray(0, split).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: all.subarray(split + 4) };
}

/** A logger that keeps what it is given, so that tests can fail on unexpected errors. */
function recordingLogger(): Logger & { warns: unknown[]; errors: unknown[] } {
  const warns: unknown[] = [];
  const errors: unknown[] = [];
  const noop = (): void => {};
  const logger = {
    warns,
    errors,
    debug: noop,
    info: noop,
    warn: (...a: unknown[]) => void warns.push(a),
    error: (...a: unknown[]) => void errors.push(a),
    child: () => logger,
  };
  return logger as Logger & { warns: unknown[]; errors: unknown[] };
}

interface Started {
  port: number;
  server: http.Server;
  log: ReturnType<typeof recordingLogger>;
}

const servers: http.Server[] = [];

/** The handler behind a real server on 127.0.0.1:0, dispatched the way server.ts does. */
async function start(web: WebOptions): Promise<Started> {
  const log = recordingLogger();
  const handler = createWebHandler(web, log);
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' || req.method === 'HEAD') handler(req, res);
    else res.writeHead(405, { Allow: 'GET, HEAD' }).end();
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, server, log };
}

function write(file: string, content: string | Buffer = path.basename(file)): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

describe('web', () => {
  let tmp: string;
  let root: string;
  let main: Started;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-web-'));
    root = path.join(tmp, 'root');
    write(path.join(tmp, 'outside/secret.txt'), SECRET);
    write(path.join(root, 'hello.txt'), 'hello world\n');
    write(path.join(root, 'vnc.html'), '<!DOCTYPE html><title>VNC</title>');
    write(path.join(root, 'empty.txt'), '');
    for (const f of ['app.js', 'mod.mjs', 'style.css', 'data.json', 'pic.svg', 'bin.wasm', 'font.woff2', 'thing.xyz', 'noext']) {
      write(path.join(root, f));
    }
    write(path.join(root, 'sub/index.html'), 'SUB INDEX');
    write(path.join(root, 'list/a.txt'));
    write(path.join(root, 'list/<img src=x onerror=alert(1)>.txt'));
    write(path.join(root, 'list/q"uote\'&.txt'));
    fs.mkdirSync(path.join(root, 'list/dir2'));
    write(path.join(root, 'noidx/vnc.html'), 'NOT THE ROOT INDEX');
    write(path.join(root, 'evil.com/x.txt'));
    fs.mkdirSync(path.join(root, 'javascript:alert(1)'));
    write(path.join(root, '%2e'), 'LITERAL PERCENT NAME');
    write(path.join(root, 'm/a.txt'), 'ROOT-M');
    fs.symlinkSync('../outside', path.join(root, 'escape'));
    fs.symlinkSync('../outside/secret.txt', path.join(root, 'escape.txt'));
    fs.symlinkSync('hello.txt', path.join(root, 'inner-link.txt'));
    fs.mkdirSync(path.join(root, 'trap'));
    fs.symlinkSync('../../outside/secret.txt', path.join(root, 'trap/index.html'));
    execFileSync('mkfifo', [path.join(root, 'pipe')]);
    write(path.join(tmp, 'mountA/a.txt'), 'MOUNT-A');
    write(path.join(tmp, 'mountAB/b.txt'), 'MOUNT-AB');
    main = await start({
      root,
      index: 'vnc.html',
      mounts: [
        { prefix: '/m/', dir: path.join(tmp, 'mountA') },
        { prefix: '/m/deep/', dir: path.join(tmp, 'mountAB') },
        { prefix: '/novnc/', dir: NOVNC },
      ],
    });
  });

  afterEach(() => {
    expect(main.log.errors, 'errors logged').to.deep.equal([]);
  });

  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('#createWebHandler', () => {
    it('serves a file with type, length, validators and nosniff', async () => {
      const r = await raw(main.port, '/hello.txt');
      expect(r.status).to.equal(200);
      expect(r.body.toString()).to.equal('hello world\n');
      expect(r.headers['content-type']).to.equal('text/plain; charset=utf-8');
      expect(r.headers['content-length']).to.equal('12');
      expect(r.headers['x-content-type-options']).to.equal('nosniff');
      expect(r.headers['cache-control']).to.equal('no-cache');
      expect(r.headers.etag).to.match(/^W\/"[0-9a-f]+-[0-9a-f]+"$/);
      expect(Date.parse(r.headers['last-modified']!)).to.not.be.NaN;
    });

    it('answers HEAD with the headers and Content-Length of GET and no body', async () => {
      const r = await raw(main.port, '/hello.txt', { method: 'HEAD' });
      expect(r.status).to.equal(200);
      expect(r.headers['content-length']).to.equal('12');
      expect(r.body.length).to.equal(0);
      const listing = await raw(main.port, '/list/', { method: 'HEAD' });
      expect(listing.status).to.equal(200);
      expect(Number(listing.headers['content-length'])).to.be.greaterThan(0);
      expect(listing.body.length).to.equal(0);
    });

    it('serves an empty file with Content-Length 0', async () => {
      const r = await raw(main.port, '/empty.txt');
      expect(r.status).to.equal(200);
      expect(r.headers['content-length']).to.equal('0');
      expect(r.body.length).to.equal(0);
    });

    it('ignores the query string and fragment when looking up the file', async () => {
      expect((await raw(main.port, '/hello.txt?x=1&y=../../outside/secret.txt')).body.toString()).to.equal('hello world\n');
      expect((await raw(main.port, '/hello.txt#frag')).status).to.equal(200);
      const vnc = await raw(main.port, '/vnc.html?path=websockify%3Ftoken%3DX');
      expect(vnc.status).to.equal(200);
      expect(vnc.headers['content-type']).to.equal('text/html; charset=utf-8');
    });

    it('accepts an absolute-form request target', async () => {
      const r = await raw(main.port, 'http://example.com/hello.txt');
      expect(r.status).to.equal(200);
      expect(r.body.toString()).to.equal('hello world\n');
    });

    it('answers 304 when If-None-Match holds the ETag, compared weakly, or *', async () => {
      const { headers } = await raw(main.port, '/hello.txt');
      const etag = headers.etag!;
      for (const inm of [etag, `"other", ${etag}`, '*', etag.replace(/^W\//, '')]) {
        const r = await raw(main.port, '/hello.txt', { headers: { 'If-None-Match': inm } });
        expect(r.status, inm).to.equal(304);
        expect(r.body.length).to.equal(0);
        expect(r.headers.etag).to.equal(etag);
      }
      expect((await raw(main.port, '/hello.txt', { headers: { 'If-None-Match': '"nope"' } })).status).to.equal(200);
    });

    it('answers 304 for If-Modified-Since at or after the mtime, 200 before or when unparsable', async () => {
      const { headers } = await raw(main.port, '/hello.txt');
      const lm = headers['last-modified']!;
      expect((await raw(main.port, '/hello.txt', { headers: { 'If-Modified-Since': lm } })).status).to.equal(304);
      const old = new Date(Date.parse(lm) - 3600_000).toUTCString();
      expect((await raw(main.port, '/hello.txt', { headers: { 'If-Modified-Since': old } })).status).to.equal(200);
      expect((await raw(main.port, '/hello.txt', { headers: { 'If-Modified-Since': 'garbage' } })).status).to.equal(200);
    });

    it('lets If-None-Match win over If-Modified-Since', async () => {
      const future = new Date(Date.now() + 86400_000).toUTCString();
      const r = await raw(main.port, '/hello.txt', { headers: { 'If-None-Match': '"nope"', 'If-Modified-Since': future } });
      expect(r.status).to.equal(200);
    });

    it('changes the ETag when the file changes', async () => {
      const file = path.join(root, 'changing.txt');
      write(file, 'one');
      fs.utimesSync(file, new Date(1_000_000_000_000), new Date(1_000_000_000_000));
      const before = (await raw(main.port, '/changing.txt')).headers.etag;
      write(file, 'three');
      const after = await raw(main.port, '/changing.txt', { headers: { 'If-None-Match': before! } });
      expect(after.status).to.equal(200);
      expect(after.headers.etag).to.not.equal(before);
    });

    it('gives the right Content-Type per extension', async () => {
      const want: Record<string, string> = {
        '/app.js': 'text/javascript; charset=utf-8',
        '/mod.mjs': 'text/javascript; charset=utf-8',
        '/style.css': 'text/css; charset=utf-8',
        '/data.json': 'application/json; charset=utf-8',
        '/pic.svg': 'image/svg+xml; charset=utf-8',
        '/bin.wasm': 'application/wasm',
        '/font.woff2': 'font/woff2',
        '/thing.xyz': 'application/octet-stream',
        '/noext': 'application/octet-stream',
      };
      for (const [p, type] of Object.entries(want)) {
        expect((await raw(main.port, p)).headers['content-type'], p).to.equal(type);
      }
    });

    it('serves index.html for a directory', async () => {
      const r = await raw(main.port, '/sub/');
      expect(r.status).to.equal(200);
      expect(r.body.toString()).to.equal('SUB INDEX');
      expect(r.headers['content-type']).to.equal('text/html; charset=utf-8');
    });

    it('serves web.index for / when the root has no index.html, and only for /', async () => {
      const r = await raw(main.port, '/');
      expect(r.status).to.equal(200);
      expect(r.body.toString()).to.contain('<title>VNC</title>');
      expect(r.headers['content-type']).to.equal('text/html; charset=utf-8');
      const sub = await raw(main.port, '/noidx/');
      expect(sub.body.toString()).to.contain('Directory listing');
    });

    it('prefers index.html over web.index at /', async () => {
      const root2 = path.join(tmp, 'root2');
      write(path.join(root2, 'index.html'), 'REAL INDEX');
      write(path.join(root2, 'vnc.html'), 'VNC');
      const s = await start({ root: root2, index: 'vnc.html' });
      expect((await raw(s.port, '/')).body.toString()).to.equal('REAL INDEX');
    });

    it('lists a directory as HTML with names escaped and links percent-encoded', async () => {
      const r = await raw(main.port, '/list/');
      const html = r.body.toString();
      expect(r.status).to.equal(200);
      expect(r.headers['content-type']).to.equal('text/html; charset=utf-8');
      expect(r.headers['content-security-policy']).to.equal("default-src 'none'");
      expect(html).to.not.contain('<img');
      expect(html).to.contain('&#60;img src=x onerror=alert(1)&#62;.txt');
      expect(html).to.contain('href="./%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.txt"');
      expect(html).to.contain('q&#34;uote&#39;&#38;.txt');
      expect(html).to.contain('href="./dir2/"');
      expect(html).to.contain('>dir2/<');
      expect(html).to.contain('Directory listing for /list/');
    });

    it('answers 404 for a directory without index.html when fileOnly is set', async () => {
      const s = await start({ root, fileOnly: true });
      expect((await raw(s.port, '/list/')).status).to.equal(404);
      expect((await raw(s.port, '/sub/')).body.toString()).to.equal('SUB INDEX');
      expect((await raw(s.port, '/hello.txt')).status).to.equal(200);
    });

    it('redirects a directory without trailing slash to a relative ./name/', async () => {
      const r = await raw(main.port, '/sub');
      expect(r.status).to.equal(301);
      expect(r.headers.location).to.equal('./sub/');
      expect(new URL(r.headers.location!, `http://127.0.0.1:${main.port}/sub`).pathname).to.equal('/sub/');
      const q = await raw(main.port, '/sub?path=websockify');
      expect(q.headers.location).to.equal('./sub/?path=websockify');
      const mount = await raw(main.port, '/novnc');
      expect(mount.headers.location).to.equal('./novnc/');
      const dot = await raw(main.port, '/%2e');
      expect(dot.status).to.equal(301);
      expect(dot.headers.location).to.equal('./');
    });

    it('never redirects //evil.com (CVE-2021-28861 open redirect) to another host', async () => {
      const base = `http://127.0.0.1:${main.port}`;
      for (const target of ['//evil.com', '//evil.com/.', '///evil.com', '//javascript:alert(1)', '/javascript:alert(1)']) {
        const r = await raw(main.port, target);
        if (r.status >= 300 && r.status < 400) {
          const to = new URL(r.headers.location!, base + target);
          expect(to.host, `${target} → ${r.headers.location}`).to.equal(`127.0.0.1:${main.port}`);
          expect(to.protocol).to.equal('http:');
        }
      }
      expect((await raw(main.port, '//evil.com')).headers.location).to.equal('./evil.com/');
      expect((await raw(main.port, '/javascript:alert(1)')).headers.location).to.equal('./javascript%3Aalert(1)/');
      for (const target of ['//evil.com/..', '//evil.com/%2e%2e', '/\\evil.com', '/%5cevil.com', '/%2f%2fevil.com', '/%2F/evil.com']) {
        const r = await raw(main.port, target);
        expect(r.status, target).to.be.oneOf([400, 404]);
        expect(r.headers.location, target).to.equal(undefined);
      }
    });

    it('refuses path traversal with 404 whatever the encoding', async () => {
      const attempts = [
        '/../outside/secret.txt',
        '/sub/../../outside/secret.txt',
        '/..%2foutside%2fsecret.txt',
        '/..%2f..%2fetc/passwd',
        '/%2e%2e/outside/secret.txt',
        '/%2E%2E/%2e%2e/etc/passwd',
        '/%2e%2e%2foutside%2fsecret.txt',
        '/sub/..%5c..%5coutside%5csecret.txt',
        '/..\\outside\\secret.txt',
        '/.%2e/outside/secret.txt',
        '/%252e%252e/outside/secret.txt',
      ];
      for (const target of attempts) {
        const r = await raw(main.port, target);
        expect(r.status, target).to.be.oneOf([400, 404]);
        expect(r.body.toString(), target).to.not.contain(SECRET).and.not.contain('root:');
      }
    });

    it('decodes percent-encoding exactly once', async () => {
      const r = await raw(main.port, '/%252e');
      expect(r.status).to.equal(200);
      expect(r.body.toString()).to.equal('LITERAL PERCENT NAME');
    });

    it('refuses symlinks that escape the folder and logs a warning', async () => {
      main.log.warns.length = 0;
      for (const target of ['/escape/secret.txt', '/escape.txt', '/escape/']) {
        const r = await raw(main.port, target);
        expect(r.status, target).to.equal(404);
        expect(r.body.toString()).to.not.contain(SECRET);
      }
      expect(main.log.warns).to.have.length(3);
    });

    it('never serves an escaping index.html symlink', async () => {
      const r = await raw(main.port, '/trap/');
      expect(r.body.toString()).to.not.contain(SECRET);
    });

    it('follows symlinks that stay inside the folder', async () => {
      expect((await raw(main.port, '/inner-link.txt')).body.toString()).to.equal('hello world\n');
    });

    it('answers 400 for NUL and broken percent-encoding', async () => {
      for (const target of ['/a%00b', '/hello.txt%00.html', '/%zz', '/%', '/%c0%ae%c0%ae/', '*']) {
        const r = await raw(main.port, target);
        expect(r.status, target).to.equal(400);
      }
    });

    it('answers 404 with a short plain-text body', async () => {
      const r = await raw(main.port, '/nope.html');
      expect(r.status).to.equal(404);
      expect(r.headers['content-type']).to.equal('text/plain; charset=utf-8');
      expect(r.headers['x-content-type-options']).to.equal('nosniff');
      expect(r.body.toString()).to.equal('404 Not Found\n');
    });

    it('answers 404 for a file asked for as a directory', async () => {
      expect((await raw(main.port, '/hello.txt/')).status).to.equal(404);
    });

    it('answers 404 for a FIFO without blocking', async () => {
      const r = await raw(main.port, '/pipe');
      expect(r.status).to.equal(404);
    });

    it('answers 405 with Allow when called with another method', async () => {
      const handler = createWebHandler({ root }, recordingLogger());
      const s = http.createServer(handler);
      servers.push(s);
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
      const r = await raw((s.address() as net.AddressInfo).port, '/hello.txt', { method: 'POST' });
      expect(r.status).to.equal(405);
      expect(r.headers.allow).to.equal('GET, HEAD');
    });

    it('checks mounts before root, longest prefix first', async () => {
      expect((await raw(main.port, '/m/a.txt')).body.toString()).to.equal('MOUNT-A');
      expect((await raw(main.port, '/m/deep/b.txt')).body.toString()).to.equal('MOUNT-AB');
      expect((await raw(main.port, '/m/deep/../a.txt')).status).to.equal(404);
      expect((await raw(main.port, '/m/../m/a.txt')).status).to.equal(404);
    });

    it('closes the file when the client disconnects mid-file (no leaked fd)', async function () {
      if (!fs.existsSync('/proc/self/fd')) this.skip();
      write(path.join(root, 'big.bin'), Buffer.alloc(32 * 1024 * 1024, 7));
      await raw(main.port, '/hello.txt'); // warm up lazily opened fds
      const baseline = openFds();
      for (let i = 0; i < 5; i++) {
        const sock = net.connect({ port: main.port, host: '127.0.0.1' });
        sock.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
        await once(sock, 'data');
        sock.destroy();
      }
      const deadline = Date.now() + 5000;
      while (openFds() > baseline && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(openFds()).to.be.at.most(baseline);
    });

    it('serves the Debian noVNC folder with the right types', async function () {
      if (!fs.existsSync(path.join(NOVNC, 'vnc.html'))) this.skip();
      const html = await raw(main.port, '/novnc/vnc.html');
      expect(html.status).to.equal(200);
      expect(html.headers['content-type']).to.equal('text/html; charset=utf-8');
      expect(html.body.length).to.equal(fs.statSync(path.join(NOVNC, 'vnc.html')).size);
      const js = await raw(main.port, '/novnc/app/ui.js');
      expect(js.status).to.equal(200);
      expect(js.headers['content-type']).to.equal('text/javascript; charset=utf-8');
      expect(js.body.equals(fs.readFileSync(path.join(NOVNC, 'app/ui.js')))).to.equal(true);
      const s = await start({ root: NOVNC });
      expect((await raw(s.port, '/vnc.html?path=websockify')).status).to.equal(200);
    });

    it('throws InvalidOptionError at startup for a bad root, mount prefix or index', () => {
      const bad: WebOptions[] = [
        { root: path.join(tmp, 'does-not-exist') },
        { root: path.join(root, 'hello.txt') },
        { mounts: [{ prefix: 'novnc/', dir: root }] },
        { mounts: [{ prefix: '/a/../', dir: root }] },
        { root, index: '../outside/secret.txt' },
        { root, index: '/etc/passwd' },
      ];
      for (const web of bad) {
        expect(() => createWebHandler(web, recordingLogger()), JSON.stringify(web))
          .to.throw(InvalidOptionError)
          .with.property('code', 'TSOCK_ERR_INVALID_OPTION');
      }
    });

    it('never gives a file outside the folder for any path (property)', async () => {
      const seg = fc.constantFrom(
        '..', '.', '', '%2e%2e', '%2E%2e', '.%2e', '%2e.', '%2f', '%5c', '\\', '..%2f', '..%5c', '%252e%252e',
        '%c0%ae', 'outside', 'secret.txt', 'escape', 'escape.txt', 'trap', 'sub', 'etc', 'passwd', 'evil.com',
        'm', 'deep', 'novnc', '%00', '..;', 'hello.txt', '%2e%2e%2f%2e%2e%2f',
      );
      await fc.assert(
        fc.asyncProperty(fc.array(seg, { maxLength: 8 }), fc.constantFrom('', '/', '?q=/../x', '#x'), async (segs, tail) => {
          const target = `/${segs.join('/')}${tail}`;
          const r = await raw(main.port, target);
          const body = r.body.toString('latin1');
          expect(body, target).to.not.contain(SECRET).and.not.contain('root:x:');
          if (r.status >= 300 && r.status < 400) {
            expect(new URL(r.headers.location!, `http://127.0.0.1:${main.port}${target}`).host).to.equal(`127.0.0.1:${main.port}`);
          }
        }),
        { numRuns: 300 },
      );
    });

    it('keeps answering whatever the request path (property)', async () => {
      const ch = fc.constantFrom(...'abz019./\\%:;?#~-_!$&\'()*+,=@[]'.split(''), '%ff', '%c0', '%2', '%00', 'é');
      await fc.assert(
        fc.asyncProperty(fc.array(ch, { maxLength: 30 }), async (chars) => {
          const r = await raw(main.port, `/${chars.join('')}`);
          expect(r.status).to.be.within(200, 499);
        }),
        { numRuns: 300 },
      );
      expect((await raw(main.port, '/hello.txt')).status).to.equal(200);
    });
  });

  describe('#parseTarget', () => {
    it('never yields a segment that could leave its folder (property)', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
          const t = parseTarget(`/${s}`);
          if (typeof t === 'number') return;
          for (const seg of t.segments) {
            expect(seg).to.not.be.oneOf(['', '.', '..']);
            expect(seg).to.not.match(/[/\\\0]/);
          }
        }),
        { numRuns: 2000 },
      );
    });
  });

  describe('#mimeType', () => {
    it('maps the extensions noVNC ships, case-insensitively, with a charset for text', () => {
      const want: Record<string, string> = {
        'a.html': 'text/html; charset=utf-8',
        'a.HTM': 'text/html; charset=utf-8',
        'a.js': 'text/javascript; charset=utf-8',
        'a.mjs': 'text/javascript; charset=utf-8',
        'a.css': 'text/css; charset=utf-8',
        'a.json': 'application/json; charset=utf-8',
        'a.js.map': 'application/json; charset=utf-8',
        'a.svg': 'image/svg+xml; charset=utf-8',
        'a.xml': 'application/xml; charset=utf-8',
        'a.txt': 'text/plain; charset=utf-8',
        'a.png': 'image/png',
        'a.JPG': 'image/jpeg',
        'a.jpeg': 'image/jpeg',
        'a.gif': 'image/gif',
        'a.ico': 'image/x-icon',
        'a.wasm': 'application/wasm',
        'a.woff': 'font/woff',
        'a.woff2': 'font/woff2',
        'a.ttf': 'font/ttf',
        'a.mp3': 'audio/mpeg',
        'a.oga': 'audio/ogg',
        'a.bin': 'application/octet-stream',
        'Makefile': 'application/octet-stream',
        'a.constructor': 'application/octet-stream',
        'a.__proto__': 'application/octet-stream',
      };
      for (const [name, type] of Object.entries(want)) expect(mimeType(name), name).to.equal(type);
    });
  });
});
