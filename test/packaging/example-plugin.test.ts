/**
 * docs/examples/allow-list-plugin.mjs is the complete plugin module docs/plugins.md teaches
 * with. It is loaded the way users load theirs: by path through the registry, and through
 * the command line in front of a real TCP target.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import WebSocket from 'ws';
import type { RequestContext, TokenPlugin, TsockifyError } from '@tsockify/core';
import { createTokenPlugin } from '../../packages/auth-plugins/src/index.js';
import { captureLogger, makeContext } from '../auth-plugins/context.js';
import { tempDir } from '../auth-plugins/tmp.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { repoRoot, startTsockify, type Proc } from '../helpers/proc.js';

const PLUGIN = './docs/examples/allow-list-plugin.mjs';

/**
 * The core the plugin module sees. The plugin is an ES module loaded with import(); this test
 * file may run as CommonJS under tsx with its own copy of the core, and error classes are
 * only instanceof their own copy. So the test asserts the stable `code`, and maps errors to
 * statuses with the plugin's copy of `toHttpStatus`.
 */
let core: typeof import('@tsockify/core');

function expectCode(err: Error, code: string): void {
  expect((err as TsockifyError).code, err.message).to.equal(code);
}

function from(remoteAddress: string): RequestContext {
  return { ...makeContext(), remoteAddress };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('docs/examples/allow-list-plugin.mjs', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let file: string;
  const plugins: TokenPlugin[] = [];

  const table = (entries: Record<string, unknown>) => writeFile(file, JSON.stringify(entries, null, 2));
  const load = async (source = file) => {
    const plugin = await createTokenPlugin(PLUGIN, source, { cwd: repoRoot, logger: captureLogger() });
    plugins.push(plugin);
    return plugin;
  };

  before(async () => {
    core = await import('@tsockify/core');
  });

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('tsockify-example-plugin-'));
    file = path.join(dir, 'tokens.json');
    await table({
      'alice-desk': { target: '127.0.0.1:5901', from: ['127.0.0.0/8', '::1/128'], user: 'alice', expires: '2999-01-01T00:00:00Z' },
      'lab-wall': { target: '[::1]:5902', from: ['10.20.0.0/16'] },
      'old-desk': { target: '127.0.0.1:5903', from: ['0.0.0.0/0'], expires: '2001-01-01T00:00:00Z' },
      'sock-desk': { target: 'unix_socket:/run/vnc/desk.sock', from: ['127.0.0.1/32'] },
    });
  });

  afterEach(async () => {
    for (const p of plugins.splice(0)) await p.close?.();
    await cleanup();
  });

  describe('createTokenPlugin(path, source)', () => {
    it('loads the module by path through the registry and names the plugin', async () => {
      const plugin = await load();
      expect(plugin.name).to.equal('AllowListTokens');
      expect(plugin.lookup).to.be.a('function');
    });

    it('fails at startup with the grammar when the token file is missing', async () => {
      const err = await rejection(load(path.join(dir, 'nope.json')));
      expectCode(err, 'TSOCK_ERR_INVALID_OPTION');
      expect(err.message).to.match(/invalid --token-source ".*nope\.json": ENOENT; expected a JSON file/);
    });

    it('fails at startup on a bad CIDR, naming the entry by position and never the token', async () => {
      await table({ 'secret-token-1': { target: 'h:1', from: ['10.0.0.0/8'] }, 'secret-token-2': { target: 'h:2', from: ['10.0.0.0/99'] } });
      const err = await rejection(load());
      expectCode(err, 'TSOCK_ERR_INVALID_OPTION');
      expect(err.message).to.include('entry #2: "10.0.0.0/99" is not a CIDR');
      expect(err.message).not.to.include('secret-token');
    });

    it('fails at startup without a --token-source', async () => {
      const err = await rejection(createTokenPlugin(PLUGIN, undefined, { cwd: repoRoot }));
      expectCode(err, 'TSOCK_ERR_INVALID_OPTION');
      expect(err.message).to.match(/^AllowListTokens needs --token-source/);
    });
  });

  describe('#lookup', () => {
    it('returns the target with the user as meta and the expiry, for a client in the allowed network', async () => {
      const target = await (await load()).lookup('alice-desk', from('127.0.0.1'));
      expect(target).to.deep.equal({ host: '127.0.0.1', port: 5901, meta: { subject: 'alice' }, expiresAt: Date.parse('2999-01-01T00:00:00Z') });
    });

    it('treats an IPv4-mapped client address (dual-stack listener) as IPv4', async () => {
      expect(await (await load()).lookup('alice-desk', from('::ffff:127.0.0.1'))).to.include({ host: '127.0.0.1' });
    });

    it('returns IPv6 and unix socket targets', async () => {
      const plugin = await load();
      expect(await plugin.lookup('lab-wall', from('10.20.3.4'))).to.deep.equal({ host: '::1', port: 5902 });
      expect(await plugin.lookup('sock-desk', from('127.0.0.1'))).to.deep.equal({ unixSocket: '/run/vnc/desk.sock' });
    });

    it('returns null for an unknown token (the client gets 401)', async () => {
      expect(await (await load()).lookup('nope', from('127.0.0.1'))).to.equal(null);
    });

    it('refuses a token used from another network with a 403 AuthenticationError', async () => {
      const err = await rejection(Promise.resolve((await load()).lookup('lab-wall', from('192.168.1.5'))));
      expectCode(err, 'TSOCK_ERR_AUTH');
      expect(core.toHttpStatus(err)).to.equal(403);
    });

    it('refuses an expired token with a TokenInvalidError (401)', async () => {
      const err = await rejection(Promise.resolve((await load()).lookup('old-desk', from('127.0.0.1'))));
      expectCode(err, 'TSOCK_ERR_TOKEN_INVALID');
      expect(err.message).to.equal('token expired');
      expect(core.toHttpStatus(err)).to.equal(401);
    });

    it('sees a token added to the file without a restart', async () => {
      const plugin = await load();
      expect(await plugin.lookup('new-desk', from('127.0.0.1'))).to.equal(null);
      await table({ 'new-desk': { target: '127.0.0.1:5910', from: ['127.0.0.1/32'] } });
      const later = new Date(Date.now() + 5000);
      await utimes(file, later, later); // a different mtime even on coarse file systems
      expect(await plugin.lookup('new-desk', from('127.0.0.1'))).to.deep.equal({ host: '127.0.0.1', port: 5910 });
      expect(await plugin.lookup('alice-desk', from('127.0.0.1'))).to.equal(null);
    });

    it('fails closed with a PluginUnavailableError (503) when the file is gone', async () => {
      const plugin = await load();
      await rm(file);
      const err = await rejection(Promise.resolve(plugin.lookup('alice-desk', from('127.0.0.1'))));
      expectCode(err, 'TSOCK_ERR_PLUGIN_UNAVAILABLE');
      expect(core.toHttpStatus(err)).to.equal(503);
    });
  });

  describe('through the command line', function () {
    this.timeout(20_000);
    let target: TcpTargetServer;
    let proc: Proc;
    let port: number;

    beforeEach(async () => {
      target = await startTcpTarget();
      await table({
        'alice-desk': { target: `127.0.0.1:${target.port}`, from: ['127.0.0.0/8', '::1/128'], user: 'alice' },
        'lab-wall': { target: `127.0.0.1:${target.port}`, from: ['10.20.0.0/16'] },
      });
      proc = startTsockify(['--log-format', 'json', '--token-plugin', PLUGIN, '--token-source', file, '127.0.0.1:0'], { cwd: repoRoot });
      port = Number((await proc.waitForOutput(/"addresses":\["127\.0\.0\.1:(\d+)"\]/))[1]);
    });

    afterEach(async () => {
      await proc.stop();
      await target.close();
    });

    async function status(token: string): Promise<number> {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/websockify?token=${token}`);
      ws.on('error', () => { /* the refusal is what is tested */ });
      const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number; resume(): void }];
      res.resume();
      return res.statusCode;
    }

    it('relays bytes for a good token and logs the user, never the token', async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/websockify?token=alice-desk`, ['binary']);
      await once(ws, 'open');
      ws.send(Buffer.from('hello'));
      const [data] = (await once(ws, 'message')) as [Buffer];
      expect(data.toString()).to.equal('hello');
      ws.close(1000);
      await once(ws, 'close');
      await proc.waitForOutput(/session 1 closed/);
      expect(proc.stderr()).to.include('"meta":{"subject":"alice"}');
      expect(proc.stderr()).not.to.include('alice-desk');
    });

    it('answers 401 for an unknown token and 403 for a token from another network', async () => {
      expect(await status('nope')).to.equal(401);
      expect(await status('lab-wall')).to.equal(403);
    });
  });
});
