/**
 * The documentation tells the truth: every flag, error code and built-in plugin is
 * documented; the README and docs/library.md show the example files as they are; and those
 * examples type-check and run against a real TCP target.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { FLAGS } from '../../packages/cli/src/flags.js';
import { AUTH_PLUGIN_NAMES, TOKEN_PLUGIN_NAMES } from '../../packages/auth-plugins/src/registry.js';
import { freePort, startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { repoRoot, startProcess, type Proc } from '../helpers/proc.js';

const run = promisify(execFile);
const read = (file: string): string => fs.readFileSync(path.join(repoRoot, file), 'utf8');

/** Every `TSOCK_ERR_*` code of the core's error union, and the CLI's error codes. */
function errorCodes(): string[] {
  const core = read('packages/core/src/errors.ts');
  const union = /export type TsockifyErrorCode =([^;]+);/.exec(core)?.[1] ?? '';
  const cli = read('packages/cli/src/errors.ts');
  const cliUnion = /export type CliErrorCode =([^;]+);/.exec(cli)?.[1] ?? '';
  return [...`${union}${cliUnion}`.matchAll(/'(TSOCK_[A-Z_]+)'/g)].map((m) => m[1]!);
}

describe('documentation', () => {
  describe('coverage', () => {
    it('documents every command-line flag in docs/cli.md and the README', () => {
      const cliDoc = read('docs/cli.md');
      const readme = read('README.md');
      // In a table cell: `--name ...` or `-x, --name ...`.
      const documented = (text: string, name: string): boolean => text.includes(`\`${name}`) || text.includes(`, ${name}`);
      const missing = FLAGS.flatMap((f) => {
        const name = `--${f.name}`;
        return [
          ...(documented(cliDoc, name) ? [] : [`docs/cli.md: ${name}`]),
          ...(documented(readme, name) ? [] : [`README.md: ${name}`]),
        ];
      });
      expect(missing, 'flags without documentation').to.deep.equal([]);
    });

    it('documents every error code in docs/errors.md', () => {
      const codes = errorCodes();
      expect(codes).to.include.members(['TSOCK_ERR_INVALID_OPTION', 'TSOCK_CLI_USAGE']);
      const doc = read('docs/errors.md');
      expect(codes.filter((c) => !doc.includes(`\`${c}\``)), 'codes missing from docs/errors.md').to.deep.equal([]);
    });

    it('lists every built-in plugin in docs/plugins.md and the README', () => {
      const plugins = read('docs/plugins.md');
      const readme = read('README.md');
      const names = [...TOKEN_PLUGIN_NAMES, ...AUTH_PLUGIN_NAMES];
      expect(names.filter((n) => !plugins.includes(`\`${n}\``)), 'missing from docs/plugins.md').to.deep.equal([]);
      expect(names.filter((n) => !readme.includes(`\`${n}\``)), 'missing from README.md').to.deep.equal([]);
    });

    it('links only to files that exist', () => {
      const broken: string[] = [];
      const docs = ['README.md', ...fs.readdirSync(path.join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
      for (const doc of docs) {
        for (const [, target] of read(doc).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
          if (/^[a-z]+:/.test(target!)) continue;
          const file = path.resolve(repoRoot, path.dirname(doc), target!);
          if (!fs.existsSync(file)) broken.push(`${doc} → ${target}`);
        }
      }
      expect(broken, 'broken links').to.deep.equal([]);
    });

    it('shows the example files verbatim', () => {
      const standalone = read('docs/examples/standalone.ts').trimEnd();
      const attach = read('docs/examples/attach.ts').trimEnd();
      const plugin = read('docs/examples/allow-list-plugin.mjs').trimEnd();
      expect(read('README.md')).to.include(standalone);
      expect(read('docs/library.md')).to.include(standalone);
      expect(read('docs/library.md')).to.include(attach);
      expect(read('docs/plugins.md')).to.include(plugin);
    });
  });

  describe('docs/examples', function () {
    this.timeout(30_000);
    let target: TcpTargetServer;
    let proc: Proc | undefined;

    beforeEach(async () => {
      target = await startTcpTarget();
    });

    afterEach(async () => {
      await proc?.stop();
      proc = undefined;
      await target.close();
    });

    it('type-check', async () => {
      const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');
      await run(process.execPath, [tsc, '-p', path.join(repoRoot, 'docs/examples/tsconfig.json')], { cwd: repoRoot, timeout: 60_000 })
        .catch((err: { stdout?: string }) => { throw new Error(`tsc failed:\n${err.stdout ?? String(err)}`); });
    });

    async function echo(url: string): Promise<void> {
      const ws = new WebSocket(url, ['binary']);
      await once(ws, 'open');
      ws.send(Buffer.from('RFB 003.008\n'));
      const [data] = (await once(ws, 'message')) as [Buffer];
      expect(data.toString()).to.equal('RFB 003.008\n');
      ws.close(1000, 'bye');
      await once(ws, 'close');
    }

    it('standalone.ts relays, reports the session and exits on SIGTERM', async () => {
      const port = await freePort();
      proc = startProcess(process.execPath, ['--import', 'tsx', 'docs/examples/standalone.ts'], {
        cwd: repoRoot,
        env: { ...process.env, PORT: String(port), TARGET: `127.0.0.1:${target.port}` },
      });
      await proc.waitForOutput(/listening on 127\.0\.0\.1:\d+/, 20_000);
      await echo(`ws://127.0.0.1:${port}/websockify`);
      await proc.waitForOutput(/session 1 closed: 1000 bye \(client\), 12 bytes to the browser, 12 to the VNC server/);
      expect(await proc.stop(10_000)).to.equal(0);
    });

    it('attach.ts serves its own route, relays a known token and refuses an unknown one with 401', async () => {
      const port = await freePort();
      proc = startProcess(process.execPath, ['--import', 'tsx', 'docs/examples/attach.ts'], {
        cwd: repoRoot,
        env: { ...process.env, PORT: String(port), VNC_PORT: String(target.port) },
      });
      await proc.waitForOutput(/listening on/, 20_000);
      const health = await new Promise<string>((resolve, reject) => {
        http.get(`http://127.0.0.1:${port}/healthz`, { agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => { body += d.toString(); });
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
      expect(health).to.equal('ok, 0 live sessions\n');
      await echo(`ws://127.0.0.1:${port}/websockify?token=d3f9c1a7`);
      await proc.waitForOutput(/alice left after \d+ ms \(1000\)/);
      const refused = new WebSocket(`ws://127.0.0.1:${port}/websockify?token=nope`);
      refused.on('error', () => { /* the refusal is what is tested */ });
      const [, res] = (await once(refused, 'unexpected-response')) as [unknown, http.IncomingMessage];
      res.resume();
      expect(res.statusCode).to.equal(401);
      await proc.waitForOutput(/refused: 401 unknown token/);
    });
  });
});
