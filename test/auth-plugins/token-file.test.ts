import { mkdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidOptionError, PluginUnavailableError } from '@tsockify/core';
import { ReadOnlyTokenFile, TokenFile, parseTokenFile } from '../../packages/auth-plugins/src/index.js';
import { captureLogger, makeContext } from './context.js';
import { tempDir } from './tmp.js';

describe('TokenFile', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  describe('#lookup', () => {
    it('resolves "token: host:port" lines to TCP targets', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, 'alpha: 10.0.0.5:5901\nbeta: vnc.example.org:5902\n');
      const plugin = await TokenFile.fromSource(file);
      expect(await plugin.lookup('alpha', makeContext())).to.deep.equal({ host: '10.0.0.5', port: 5901 });
      expect(await plugin.lookup('beta', makeContext())).to.deep.equal({ host: 'vnc.example.org', port: 5902 });
      expect(await plugin.lookup('gamma', makeContext())).to.equal(null);
    });

    it('splits the target on its last colon, so IPv6 targets work', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, 'v6: ::1:5900\nbracketed: [fe80::1]:5901\n');
      const plugin = await TokenFile.fromSource(file);
      expect(await plugin.lookup('v6', makeContext())).to.deep.equal({ host: '::1', port: 5900 });
      expect(await plugin.lookup('bracketed', makeContext())).to.deep.equal({ host: 'fe80::1', port: 5901 });
    });

    it('maps "unix_socket:/path" to a unix target', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, 'sock: unix_socket:/run/vnc/display:1.sock\n');
      const plugin = await TokenFile.fromSource(file);
      expect(await plugin.lookup('sock', makeContext())).to.deep.equal({ unixSocket: '/run/vnc/display:1.sock' });
    });

    it('skips comments and blank lines, strips lines, and takes any one white space after the colon', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, '# a comment: not a token\n\n   \n  spaced: h1:1  \r\ntabbed:\th2:2\nwide:   h3:3\n');
      const log = captureLogger();
      const plugin = await TokenFile.fromSource(file, { logger: log });
      expect(await plugin.lookup('spaced', makeContext())).to.deep.equal({ host: 'h1', port: 1 });
      expect(await plugin.lookup('tabbed', makeContext())).to.deep.equal({ host: 'h2', port: 2 });
      expect(await plugin.lookup('wide', makeContext())).to.deep.equal({ host: 'h3', port: 3 });
      expect(await plugin.lookup('# a comment', makeContext())).to.equal(null);
      expect(log.records).to.deep.equal([]);
    });

    it('logs "Syntax error in <src> on line N" for a malformed line, skips it, and never logs the line', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, [
        'good: h:1',
        'secret-token-no-separator',
        '# comment',
        'two: seps: h:2',
        'noport: host',
        'badport: host:99999',
        'last: h:3',
      ].join('\n'));
      const log = captureLogger();
      const plugin = await TokenFile.fromSource(file, { logger: log });
      expect(log.records.map((r) => r.msg)).to.deep.equal([
        `Syntax error in ${file} on line 2`,
        `Syntax error in ${file} on line 4`,
        `Syntax error in ${file} on line 5`,
        `Syntax error in ${file} on line 6`,
      ]);
      expect(log.records.every((r) => r.level === 'warn')).to.equal(true);
      expect(log.text()).not.to.include('secret-token');
      expect(await plugin.lookup('good', makeContext())).to.deep.equal({ host: 'h', port: 1 });
      expect(await plugin.lookup('last', makeContext())).to.deep.equal({ host: 'h', port: 3 });
      expect(await plugin.lookup('two', makeContext())).to.equal(null);
    });

    it('does not parse an unchanged file again (a syntax error is logged once, not per lookup)', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, 'bad line\nok: h:1\n');
      const old = new Date(Date.now() - 60_000);
      await utimes(file, old, old);
      const log = captureLogger();
      const plugin = await TokenFile.fromSource(file, { logger: log });
      for (let i = 0; i < 5; i++) expect(await plugin.lookup('ok', makeContext({ log }))).to.deep.equal({ host: 'h', port: 1 });
      expect(log.records).to.have.length(1);
    });

    it('sees an edit at the next lookup, even a same-size rewrite within the same clock tick', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, 'tok: host:5901\n');
      const plugin = await TokenFile.fromSource(file);
      expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'host', port: 5901 });
      await writeFile(file, 'tok: host:5902\n');
      expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'host', port: 5902 });
      await writeFile(file, 'tok: other:6000\nnew: n:1\n');
      expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'other', port: 6000 });
      expect(await plugin.lookup('new', makeContext())).to.deep.equal({ host: 'n', port: 1 });
      await writeFile(file, '');
      expect(await plugin.lookup('tok', makeContext())).to.equal(null);
    });

    it('sees a file replaced by rename (how editors and config managers write)', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, 'tok: a:1\n');
      const plugin = await TokenFile.fromSource(file);
      expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'a', port: 1 });
      await writeFile(path.join(dir, 'tokens.new'), 'tok: b:2\n');
      await rename(path.join(dir, 'tokens.new'), file);
      expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'b', port: 2 });
    });

    it('reads every file of a directory, and sees files added and removed', async () => {
      await writeFile(path.join(dir, 'a.conf'), 'one: h1:1\n');
      await mkdir(path.join(dir, 'subdir'));
      await writeFile(path.join(dir, 'subdir', 'nested'), 'nested: n:1\n');
      const plugin = await TokenFile.fromSource(dir);
      expect(await plugin.lookup('one', makeContext())).to.deep.equal({ host: 'h1', port: 1 });
      expect(await plugin.lookup('nested', makeContext()), 'not recursive').to.equal(null);
      await writeFile(path.join(dir, 'b.conf'), 'two: h2:2\n');
      expect(await plugin.lookup('two', makeContext())).to.deep.equal({ host: 'h2', port: 2 });
      await rm(path.join(dir, 'a.conf'));
      expect(await plugin.lookup('one', makeContext())).to.equal(null);
      expect(await plugin.lookup('two', makeContext())).to.deep.equal({ host: 'h2', port: 2 });
    });

    it('names the file and its own line number for a syntax error in a directory', async () => {
      await writeFile(path.join(dir, 'a'), 'ok: h:1\n');
      await writeFile(path.join(dir, 'b'), 'ok2: h:2\nbroken\n');
      const log = captureLogger();
      await TokenFile.fromSource(dir, { logger: log });
      expect(log.records.map((r) => r.msg)).to.deep.equal([`Syntax error in ${path.join(dir, 'b')} on line 2`]);
    });

    it('logs syntax errors found at lookup time to the request logger', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, 'ok: h:1\n');
      const startup = captureLogger();
      const plugin = await TokenFile.fromSource(file, { logger: startup });
      await writeFile(file, 'ok: h:1\noops\n');
      const reqLog = captureLogger();
      await plugin.lookup('ok', makeContext({ log: reqLog }));
      expect(reqLog.records.map((r) => r.msg)).to.deep.equal([`Syntax error in ${file} on line 2`]);
      expect(startup.records).to.deep.equal([]);
    });

    it('answers 200 concurrent lookups of a 500-line file', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, Array.from({ length: 500 }, (_, i) => `t${i}: h:${i + 1}`).join('\n'));
      const plugin = await TokenFile.fromSource(file);
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => plugin.lookup(`t${i}`, makeContext())));
      results.forEach((r, i) => expect(r).to.deep.equal({ host: 'h', port: i + 1 }));
    });

    it('fails closed with PluginUnavailableError when the source disappears after startup', async () => {
      const file = path.join(dir, 'tokens');
      await writeFile(file, 'tok: h:1\n');
      const plugin = await TokenFile.fromSource(file);
      await rm(file);
      const err = await plugin.lookup('tok', makeContext()).then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(PluginUnavailableError);
      expect((err as Error).message).to.include(file);
    });
  });

  describe('.fromSource', () => {
    it('fails at startup for a missing file, naming the value and the grammar', async () => {
      const missing = path.join(dir, 'nope');
      const err = await TokenFile.fromSource(missing).then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.equal(
        `invalid --token-source "${missing}": TokenFile expects a token file or a directory of token files (lines "token: host:port") (no such file or directory)`,
      );
    });

    it('fails at startup without a source', async () => {
      const err = await TokenFile.fromSource(undefined).then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.match(/^TokenFile needs --token-source/);
    });
  });
});

describe('ReadOnlyTokenFile', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it('reads the file once at startup and ignores later edits and removal', async () => {
    const file = path.join(dir, 'tokens');
    await writeFile(file, 'tok: h:1\n');
    const plugin = await ReadOnlyTokenFile.fromSource(file);
    await writeFile(file, 'tok: h:2\nnew: n:1\n');
    expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 1 });
    expect(await plugin.lookup('new', makeContext())).to.equal(null);
    await rm(file);
    expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 1 });
  });

  it('reads lazily at the first lookup when constructed directly, as websockify', async () => {
    const file = path.join(dir, 'tokens');
    const plugin = new ReadOnlyTokenFile({ path: file });
    await writeFile(file, 'tok: h:7\n');
    expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 7 });
  });

  it('reports syntax errors at startup', async () => {
    const file = path.join(dir, 'tokens');
    await writeFile(file, 'x\n');
    const log = captureLogger();
    await ReadOnlyTokenFile.fromSource(file, { logger: log });
    expect(log.records.map((r) => r.msg)).to.deep.equal([`Syntax error in ${file} on line 1`]);
  });

  it('returns a copy of the target, so a caller cannot change the table', async () => {
    const file = path.join(dir, 'tokens');
    await writeFile(file, 'tok: h:1\n');
    const plugin = await ReadOnlyTokenFile.fromSource(file);
    const t = (await plugin.lookup('tok', makeContext())) as { host: string };
    t.host = 'evil';
    expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 1 });
  });
});

describe('parseTokenFile', () => {
  it('lets a later line win over an earlier one for the same token', () => {
    const table = parseTokenFile('t: a:1\nt: b:2\n', 'f', captureLogger());
    expect(table.get('t')).to.deep.equal({ host: 'b', port: 2 });
  });

  it('keeps the token exactly as written before ": " (websockify does not strip it)', () => {
    const table = parseTokenFile('tok : a:1\n', 'f', captureLogger());
    expect(table.has('tok ')).to.equal(true);
    expect(table.has('tok')).to.equal(false);
  });
});
