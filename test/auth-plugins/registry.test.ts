import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidOptionError, type AuthPlugin, type TokenPlugin } from '@tsockify/core';
import {
  AUTH_PLUGIN_NAMES,
  AtmosphereToken,
  BaseTokenAPI,
  BasicHTTPAuth,
  ClientCertCNAuth,
  ExpectOrigin,
  JSONTokenApi,
  JWTTokenApi,
  ReadOnlyTokenFile,
  SignedToken,
  TOKEN_PLUGIN_NAMES,
  TokenFile,
  TokenFileName,
  TokenRedis,
  UnixDomainSocketDirectory,
  createAuthPlugin,
  createTokenPlugin,
} from '../../packages/auth-plugins/src/index.js';
import { captureLogger, makeContext } from './context.js';
import { tempDir } from './tmp.js';

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => expect.fail('expected a rejection'),
    (e: unknown) => e as Error,
  );
}

describe('createTokenPlugin', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const built: TokenPlugin[] = [];
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(async () => {
    for (const p of built.splice(0)) await p.close?.();
    await cleanup();
  });

  describe('built-in plugins', () => {
    it('builds every built-in by its websockify class name', async () => {
      const tokens = path.join(dir, 'tokens');
      await writeFile(tokens, 'tok: h:1\n');
      await writeFile(path.join(dir, 'secret.key'), 'c2VjcmV0');
      const sources: Record<(typeof TOKEN_PLUGIN_NAMES)[number], [string, new (...a: never[]) => TokenPlugin]> = {
        TokenFile: [tokens, TokenFile],
        ReadOnlyTokenFile: [tokens, ReadOnlyTokenFile],
        TokenFileName: [dir, TokenFileName],
        BaseTokenAPI: ['http://127.0.0.1:1/%s', BaseTokenAPI],
        JSONTokenApi: ['http://127.0.0.1:1/%s', JSONTokenApi],
        JWTTokenApi: [path.join(dir, 'secret.key'), JWTTokenApi],
        TokenRedis: ['127.0.0.1:1', TokenRedis],
        UnixDomainSocketDirectory: [dir, UnixDomainSocketDirectory],
        AtmosphereToken: [`${path.join(dir, 'secret.key')}:salt:4200`, AtmosphereToken],
        SignedToken: [path.join(dir, 'signing.keys'), SignedToken],
      };
      await writeFile(path.join(dir, 'signing.keys'), 'k1: hs256:0123456789abcdef0123456789abcdef\n');
      expect(Object.keys(sources).sort()).to.deep.equal([...TOKEN_PLUGIN_NAMES].sort());
      for (const name of TOKEN_PLUGIN_NAMES) {
        const [source, cls] = sources[name];
        const plugin = await createTokenPlugin(name, source);
        built.push(plugin);
        expect(plugin, name).to.be.instanceOf(cls);
        expect(plugin.name).to.equal(name);
      }
    });

    it("accepts websockify's dotted names", async () => {
      const tokens = path.join(dir, 'tokens');
      await writeFile(tokens, 'tok: h:1\n');
      const plugin = await createTokenPlugin('websockify.token_plugins.TokenFile', tokens);
      expect(plugin).to.be.instanceOf(TokenFile);
      expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 1 });
    });

    it('passes the logger and plugin settings through', async () => {
      const tokens = path.join(dir, 'tokens');
      await writeFile(tokens, 'broken\n');
      const log = captureLogger();
      await createTokenPlugin('TokenFile', tokens, { logger: log });
      expect(log.records.map((r) => r.msg)).to.deep.equal([`Syntax error in ${tokens} on line 1`]);
      await writeFile(path.join(dir, 'k'), 'not base64 at all');
      const jwt = await createTokenPlugin('JWTTokenApi', path.join(dir, 'k'), { jwt: { secretEncoding: 'utf8', requireExp: false } });
      expect(jwt).to.be.instanceOf(JWTTokenApi);
    });

    it('reports a bad source with the plugin, the value and the expected grammar', async () => {
      const err = await rejection(createTokenPlugin('TokenRedis', 'x:y'));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect(err.message).to.equal(
        'invalid --token-source "x:y": TokenRedis expects host[:port[:db[:password[:namespace]]]] (port "y" is not a number from 1 to 65535)',
      );
      const missing = await rejection(createTokenPlugin('TokenFile', undefined));
      expect(missing.message).to.match(/^TokenFile needs --token-source: TokenFile expects a token file/);
    });

    it('reports an unknown name with the list of built-ins, and suggests a near miss', async () => {
      const err = await rejection(createTokenPlugin('TokenFiel', 'x'));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect(err.message).to.include(`built-in token plugins are ${TOKEN_PLUGIN_NAMES.join(', ')}`);
      expect(err.message).to.include('./my-plugin.js');
      const near = await rejection(createTokenPlugin('tokenfile', 'x'));
      expect(near.message).to.include('(did you mean TokenFile?)');
      const dotted = await rejection(createTokenPlugin('websockify.token_plugins.TokenNope', 'x'));
      expect(dotted.message).to.match(/^unknown --token-plugin "websockify.token_plugins.TokenNope"/);
    });
  });

  describe('user plugin modules', () => {
    async function module(name: string, code: string): Promise<string> {
      const file = path.join(dir, name);
      await writeFile(file, code);
      return file;
    }

    it('loads a path exporting createTokenPlugin(source, { logger })', async () => {
      await module('mine.mjs', `export function createTokenPlugin(source, { logger }) {
        logger.info('made');
        return { name: 'Mine', lookup: (token) => (token === source ? { host: 'mine', port: 1 } : null) };
      }`);
      const log = captureLogger();
      const plugin = await createTokenPlugin('./mine.mjs', 'secret-tok', { cwd: dir, logger: log });
      expect(plugin.name).to.equal('Mine');
      expect(await plugin.lookup('secret-tok', makeContext())).to.deep.equal({ host: 'mine', port: 1 });
      expect(log.records.map((r) => r.msg)).to.deep.equal(['made']);
    });

    it('loads an absolute path whose default export is a class (websockify style)', async () => {
      const file = await module('cls.mjs', `export default class Upper {
        constructor(source) { this.port = Number(source); }
        lookup(token) { return { host: token.toUpperCase(), port: this.port }; }
      }`);
      const plugin = await createTokenPlugin(file, '5901');
      expect(await plugin.lookup('abc', makeContext())).to.deep.equal({ host: 'ABC', port: 5901 });
    });

    it('picks a named export with #Name, and awaits an async factory', async () => {
      await module('many.mjs', `
        export class A { lookup() { return { host: 'a', port: 1 }; } }
        export async function b(source) { await new Promise((r) => setTimeout(r, 5)); return { lookup: () => ({ host: source, port: 2 }) }; }`);
      expect(await (await createTokenPlugin('./many.mjs#A', undefined, { cwd: dir })).lookup('t', makeContext())).to.deep.equal({ host: 'a', port: 1 });
      expect(await (await createTokenPlugin('./many.mjs#b', 'bee', { cwd: dir })).lookup('t', makeContext())).to.deep.equal({ host: 'bee', port: 2 });
    });

    it('takes a module that is itself a plugin (export function lookup)', async () => {
      await module('bare.mjs', `export function lookup(token) { return token === 'x' ? { unixSocket: '/tmp/x.sock' } : null; }`);
      const plugin = await createTokenPlugin('./bare.mjs', undefined, { cwd: dir });
      expect(await plugin.lookup('x', makeContext())).to.deep.equal({ unixSocket: '/tmp/x.sock' });
    });

    it("resolves an npm package name from the user's directory, not tsockify's", async () => {
      const pkg = path.join(dir, 'node_modules', 'tsockify-plugin-demo');
      await mkdir(pkg, { recursive: true });
      await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: 'tsockify-plugin-demo', type: 'module', exports: './index.js' }));
      await writeFile(path.join(pkg, 'index.js'), `export const createTokenPlugin = (s) => ({ lookup: () => ({ host: 'pkg-' + s, port: 3 }) });`);
      const plugin = await createTokenPlugin('tsockify-plugin-demo', 'src', { cwd: dir });
      expect(await plugin.lookup('t', makeContext())).to.deep.equal({ host: 'pkg-src', port: 3 });
    });

    it('explains the expected export shape when a module gives no plugin', async () => {
      await module('empty.mjs', 'export const nothing = 1;');
      const err = await rejection(createTokenPlugin('./empty.mjs', undefined, { cwd: dir }));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect(err.message).to.include('export createTokenPlugin(source, options)');
      const named = await rejection(createTokenPlugin('./empty.mjs#Nope', undefined, { cwd: dir }));
      expect(named.message).to.include('has no export "Nope"');
    });

    it('reports a module that cannot be loaded', async () => {
      const err = await rejection(createTokenPlugin('./missing.js', undefined, { cwd: dir }));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect(err.message).to.match(/^cannot load token plugin module "\.\/missing\.js"/);
    });
  });
});

describe('createAuthPlugin', () => {
  it('builds every built-in by its websockify class name, dotted names included', async () => {
    const sources = { BasicHTTPAuth: 'u:p', ExpectOrigin: 'https://a.example', ClientCertCNAuth: 'cn' };
    const classes = { BasicHTTPAuth, ExpectOrigin, ClientCertCNAuth };
    for (const name of AUTH_PLUGIN_NAMES) {
      expect(await createAuthPlugin(name, sources[name])).to.be.instanceOf(classes[name]);
      expect(await createAuthPlugin(`websockify.auth_plugins.${name}`, sources[name])).to.be.instanceOf(classes[name]);
    }
  });

  it('reports a bad source and an unknown name clearly', async () => {
    const bad = await rejection(createAuthPlugin('ExpectOrigin', undefined));
    expect(bad.message).to.match(/^ExpectOrigin needs --auth-source/);
    const unknown = await rejection(createAuthPlugin('HtpasswdAuth', 'x'));
    expect(unknown.message).to.include('built-in auth plugins are BasicHTTPAuth, ExpectOrigin, ClientCertCNAuth');
  });

  it('loads a user auth plugin class from a path', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFile(
        path.join(dir, 'hdr.mjs'),
        `export default class HeaderAuth {
          constructor(source) { this.value = source; }
          authenticate(ctx) { if (ctx.headers['x-key'] !== this.value) throw Object.assign(new Error('no'), { status: 403 }); }
        }`,
      );
      const plugin: AuthPlugin = await createAuthPlugin('./hdr.mjs', 'k1', { cwd: dir });
      await plugin.authenticate(makeContext({ headers: { 'x-key': 'k1' } }));
      expect(() => plugin.authenticate(makeContext())).to.throw('no');
    } finally {
      await cleanup();
    }
  });
});
