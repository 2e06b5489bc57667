/**
 * Cookie names that are also Object.prototype members (`constructor`, `toString`,
 * `__proto__`). A cookie table that is a plain object answers `cookies['constructor']` with the
 * Object function even when the client sent no cookie at all; with `--cookie-exchange
 * --cookie-name constructor` that reached `openCookie` and took the whole process down on the
 * first upgrade without a `?token=`. The command must answer 401 and stay up.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { rawSession } from '../fuzz/frame-builder.js';
import { startCli } from '../soak/cli.js';

describe('security: cookie names shadowing Object.prototype', function () {
  this.timeout(30_000);
  let dir: string;
  let target: TcpTargetServer;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-cookie-'));
    target = await startTcpTarget();
    fs.writeFileSync(path.join(dir, 'tokens'), `good: 127.0.0.1:${target.port}\n`);
  });
  after(async () => {
    await target?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // Regression: parseCookies (packages/core/src/upgrade.ts) returned a plain object, so an
  // unset cookie named `constructor` read as Object; openCookie then threw "value.indexOf is
  // not a function" in buildContext, which server.upgrade() calls before its try block: an
  // unhandled rejection that exited the process (exit code 1) on the first tokenless upgrade.
  for (const name of ['constructor', 'toString', '__proto__']) {
    it(`answers a tokenless upgrade with 401 and stays up with --cookie-name ${name} (regression: process exits)`, async () => {
      const cli = await startCli(['--token-plugin', 'TokenFile', '--token-source', path.join(dir, 'tokens'), '--cookie-exchange', '--cookie-name', name], []);
      try {
        let status: number | string;
        try {
          const s = await rawSession(cli.port, { path: '/websockify' });
          status = s.status;
          s.destroy();
        } catch (err) {
          status = String(err);
        }
        await new Promise((r) => setTimeout(r, 200));
        expect(cli.proc.child.exitCode, `process exited; output:\n${cli.output().slice(-800)}`).to.equal(null);
        expect(status).to.equal(401);
      } finally {
        await cli.stop();
      }
    });
  }
});
