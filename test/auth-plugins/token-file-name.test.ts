import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidOptionError } from '@tsockify/core';
import { TokenFileName } from '../../packages/auth-plugins/src/index.js';
import { captureLogger, makeContext } from './context.js';
import { tempDir } from './tmp.js';

describe('TokenFileName', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it('resolves a token to the host:port held in the file of that name', async () => {
    await writeFile(path.join(dir, 'abc123'), 'vnc.example.org:5901\n');
    const plugin = await TokenFileName.fromSource(dir);
    expect(await plugin.lookup('abc123', makeContext())).to.deep.equal({ host: 'vnc.example.org', port: 5901 });
    expect(await plugin.lookup('other', makeContext())).to.equal(null);
  });

  it('reads the file at every lookup: added, edited and removed files take effect at once', async () => {
    const plugin = await TokenFileName.fromSource(dir);
    expect(await plugin.lookup('tok', makeContext())).to.equal(null);
    await writeFile(path.join(dir, 'tok'), '10.0.0.1:5901');
    expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: '10.0.0.1', port: 5901 });
    await writeFile(path.join(dir, 'tok'), '10.0.0.2:5902');
    expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: '10.0.0.2', port: 5902 });
    await rm(path.join(dir, 'tok'));
    expect(await plugin.lookup('tok', makeContext())).to.equal(null);
  });

  it('accepts IPv6 and unix_socket targets', async () => {
    await writeFile(path.join(dir, 'v6'), '::1:5900');
    await writeFile(path.join(dir, 'sock'), 'unix_socket:/run/vnc.sock');
    const plugin = await TokenFileName.fromSource(dir);
    expect(await plugin.lookup('v6', makeContext())).to.deep.equal({ host: '::1', port: 5900 });
    expect(await plugin.lookup('sock', makeContext())).to.deep.equal({ unixSocket: '/run/vnc.sock' });
  });

  it('refuses tokens that are not one file name (no path traversal, no basename aliasing)', async () => {
    const inner = path.join(dir, 'tokens');
    await mkdir(inner);
    await writeFile(path.join(dir, 'outside'), 'evil:1');
    await writeFile(path.join(inner, 'b'), 'h:1');
    const plugin = await TokenFileName.fromSource(inner);
    for (const token of ['../outside', 'a/b', '..', '.', 'x\0y', '..\\outside']) {
      expect(await plugin.lookup(token, makeContext()), token).to.equal(null);
    }
  });

  it('logs a malformed file without its content and answers null', async () => {
    await writeFile(path.join(dir, 'tok'), 'no-port-here');
    const log = captureLogger();
    const plugin = await TokenFileName.fromSource(dir);
    expect(await plugin.lookup('tok', makeContext({ log }))).to.equal(null);
    expect(log.records).to.have.length(1);
    expect(log.text()).not.to.include('no-port-here');
  });

  it('fails at startup when the source is not a directory, as websockify', async () => {
    const file = path.join(dir, 'f');
    await writeFile(file, '');
    const err = await TokenFileName.fromSource(file).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as Error).message).to.equal(
      `invalid --token-source "${file}": TokenFileName expects a directory whose file names are tokens and whose files hold host:port (not a directory)`,
    );
  });
});
