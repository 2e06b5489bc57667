import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { once } from 'node:events';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidOptionError } from '@tsockify/core';
import { UnixDomainSocketDirectory } from '../../packages/auth-plugins/src/index.js';
import { makeContext } from './context.js';
import { tempDir } from './tmp.js';

describe('UnixDomainSocketDirectory', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const servers: net.Server[] = [];
  beforeEach(async () => ({ dir, cleanup } = await tempDir('tsock-uds-')));
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
    await cleanup();
  });

  async function listenUnix(p: string): Promise<void> {
    const s = net.createServer();
    servers.push(s);
    s.listen(p);
    await once(s, 'listening');
  }

  it('resolves a token to the unix socket of that name in the directory', async () => {
    await listenUnix(path.join(dir, 'desk1'));
    const plugin = await UnixDomainSocketDirectory.fromSource(dir);
    expect(await plugin.lookup('desk1', makeContext())).to.deep.equal({ unixSocket: path.join(dir, 'desk1') });
    expect(await plugin.lookup('desk2', makeContext())).to.equal(null);
  });

  it('answers null for a regular file, a directory or a missing entry', async () => {
    await writeFile(path.join(dir, 'file'), 'x');
    await mkdir(path.join(dir, 'sub'));
    const plugin = await UnixDomainSocketDirectory.fromSource(dir);
    for (const token of ['file', 'sub', 'missing']) expect(await plugin.lookup(token, makeContext()), token).to.equal(null);
  });

  it('follows a symlink the directory owner placed to a socket elsewhere', async () => {
    const { dir: other, cleanup: cleanOther } = await tempDir('tsock-uds2-');
    try {
      await listenUnix(path.join(other, 's'));
      await symlink(path.join(other, 's'), path.join(dir, 'linked'));
      const plugin = await UnixDomainSocketDirectory.fromSource(dir);
      expect(await plugin.lookup('linked', makeContext())).to.deep.equal({ unixSocket: path.join(dir, 'linked') });
    } finally {
      await cleanOther();
    }
  });

  it('refuses a token that climbs out of the directory, even into a sibling sharing its prefix (websockify bug)', async () => {
    // websockify checks abspath(dir/token).startswith(dir): "<dir>2/s" passes for dir "<dir>".
    const sibling = `${dir}2`;
    await mkdir(sibling);
    try {
      await listenUnix(path.join(sibling, 's'));
      const plugin = await UnixDomainSocketDirectory.fromSource(dir);
      expect(await plugin.lookup(`../${path.basename(sibling)}/s`, makeContext())).to.equal(null);
    } finally {
      for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
      await rm(sibling, { recursive: true, force: true });
    }
  });

  it('fails at startup when the directory does not exist', async () => {
    const err = await UnixDomainSocketDirectory.fromSource(path.join(dir, 'nope')).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as Error).message).to.include('UnixDomainSocketDirectory expects a directory of unix sockets named by token');
  });
});
