/**
 * `--web` path traversal and open redirects, as named regressions, against the real command.
 * Python's http.server (which websockify's --web uses) had both: `..` handling relied on
 * normalisation, and `//evil.com/..` came back as `Location: //evil.com/../`, a redirect to
 * another site (CVE-2021-28861).
 */
import { expect } from 'chai';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { rawExchange } from '../fuzz/frame-builder.js';
import { LISTING_TRAP, makeWebFixture, parseAnswer, type WebAnswer, type WebFixture } from '../fuzz/web-fixture.js';
import { startCli, type Cli } from '../soak/cli.js';

describe('security: --web path traversal and open redirects', function () {
  this.timeout(30_000);
  let fx: WebFixture;
  let target: TcpTargetServer;
  let cli: Cli;

  before(async () => {
    fx = makeWebFixture();
    target = await startTcpTarget();
    cli = await startCli(['--web', fx.root], [`127.0.0.1:${target.port}`]);
  });
  after(async () => {
    await cli?.stop();
    await target?.close();
    fx?.cleanup();
  });

  async function get(p: string, method = 'GET'): Promise<WebAnswer & { raw: string }> {
    const { data } = await rawExchange(cli.port, `${method} ${p} HTTP/1.1\r\nHost: victim.example\r\nConnection: close\r\n\r\n`);
    return { ...parseAnswer(data), raw: data.toString('latin1') };
  }

  const traversals = [
    '/../outside-secret.txt',
    '/../../../../../../etc/passwd',
    '/sub/../../outside-secret.txt',
    '/%2e%2e/outside-secret.txt',
    '/%2E%2E/outside-secret.txt',
    '/.%2e/outside-secret.txt',
    '/..%2foutside-secret.txt',
    '/sub/..%2f..%2foutside-secret.txt',
    '/%2e%2e%2foutside-secret.txt',
    '/..%5coutside-secret.txt',
    '/..\\outside-secret.txt',
    '/%252e%252e/outside-secret.txt',
    '/%c0%ae%c0%ae/outside-secret.txt',
    '/../root-sibling/secret.txt',
    '/link-out',
    '/dirlink-out/outside-secret.txt',
    '/sibling-link/secret.txt',
    'http://victim.example/../outside-secret.txt',
    '/%2fetc%2fpasswd',
    '//etc/passwd',
  ];
  for (const p of traversals) {
    it(`refuses the traversal ${p} with 404 or 400 and sends nothing from outside the root`, async () => {
      const a = await get(p);
      expect(a.raw).to.not.include(fx.secret);
      expect(a.raw).to.not.match(/root:.*:0:0:/);
      expect([400, 404]).to.include(a.status);
    });
  }

  for (const p of ['/%00', '/index.html%00.txt', '/sub/file.txt%00', '/%00/../outside-secret.txt']) {
    it(`refuses a NUL byte in ${p} with 400`, async () => {
      expect((await get(p)).status).to.equal(400);
    });
  }

  const redirects: Array<[string, string]> = [
    ['//evil.com/..', 'scheme-relative with a dot-dot (CVE-2021-28861)'],
    ['//evil.com/%2e%2e', 'scheme-relative with an encoded dot-dot'],
    ['//evil.com', 'a folder that happens to be named like a host'],
    ['///evil.com', 'three slashes'],
    ['/\\evil.com', 'a backslash browsers read as a slash'],
    ['/%5cevil.com', 'an encoded backslash'],
    ['/sub', 'a real folder without its slash'],
    ['/evil.com?next=//evil.com', 'a folder with a hostile query'],
  ];
  for (const [p, name] of redirects) {
    it(`never redirects to another host for ${p} (${name})`, async () => {
      const a = await get(p);
      expect(a.raw).to.not.include(fx.secret);
      if (a.status === 301 || a.status === 302 || a.status === 303 || a.status === 307 || a.status === 308) {
        const loc = a.headers['location'] ?? '';
        expect(loc, 'Location is relative to the page').to.match(/^\.\//);
        expect(loc).to.not.match(/[\\\r\n]/);
        expect(new URL(loc, `http://victim.example${p}`).host).to.equal('victim.example');
      } else {
        expect([400, 404]).to.include(a.status);
      }
    });
  }

  it('redirects a folder to itself with a slash, relatively, keeping the query', async () => {
    const a = await get('/sub?path=websockify%3Ftoken%3Dx');
    expect(a.status).to.equal(301);
    expect(a.headers['location']).to.equal('./sub/?path=websockify%3Ftoken%3Dx');
  });

  it('serves files inside the root', async () => {
    const a = await get('/sub/file.txt');
    expect(a.status).to.equal(200);
    expect(a.body.toString()).to.equal(fx.inside.get('/sub/file.txt'));
  });

  it('lists a folder with no script allowed and every file name escaped', async () => {
    const a = await get('/listing/');
    expect(a.status).to.equal(200);
    expect(a.headers['content-security-policy']).to.equal("default-src 'none'");
    expect(a.headers['x-content-type-options']).to.equal('nosniff');
    const body = a.body.toString('utf8');
    expect(body).to.not.include('<img');
    expect(body).to.include('&#62;&#60;img');
    expect(body).to.include(encodeURIComponent(LISTING_TRAP));
  });

  it('answers POST, PUT and DELETE on web paths with 405', async () => {
    for (const m of ['POST', 'PUT', 'DELETE']) expect((await get('/index.html', m)).status, m).to.equal(405);
  });

  it('is still up after all of it', async () => {
    expect(cli.proc.child.exitCode).to.equal(null);
    expect((await get('/index.html')).status).to.equal(200);
  });
});
