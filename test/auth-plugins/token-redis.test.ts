import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { InvalidOptionError, PluginUnavailableError, TokenInvalidError } from '@tsockify/core';
import { TokenRedis, parseRedisSource, parseRedisValue, splitSourceFields } from '../../packages/auth-plugins/src/index.js';
import { freePort, waitForPort } from '../helpers/net.js';
import { startProcess, type Proc } from '../helpers/proc.js';
import { captureLogger, makeContext } from './context.js';

const exec = promisify(execFile);

/** A real redis-server on a free loopback port, owned by the test and stopped by its PID. */
async function startRedis(port: number, ...extra: string[]): Promise<Proc> {
  const proc = startProcess('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra]);
  await waitForPort(port);
  return proc;
}

async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await exec('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);
  return stdout.trim();
}

/** Names of the clients connected to Redis, from CLIENT LIST. */
async function clientNames(port: number): Promise<string[]> {
  const list = await redisCli(port, 'CLIENT', 'LIST');
  return list.split('\n').map((l) => /name=(\S*)/.exec(l)?.[1] ?? '');
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => expect.fail('expected a rejection'),
    (e: unknown) => e as Error,
  );
}

async function eventually<T>(fn: () => Promise<T>, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('TokenRedis', () => {
  let port: number;
  let redis: Proc;
  const plugins: TokenRedis[] = [];
  const make = async (source: string, settings: Parameters<typeof TokenRedis.fromSource>[1] = {}): Promise<TokenRedis> => {
    const p = await TokenRedis.fromSource(source, settings);
    plugins.push(p);
    return p;
  };

  before(async () => {
    port = await freePort();
    redis = await startRedis(port);
  });
  after(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    for (const p of plugins.splice(0)) await p.close();
    await redisCli(port, 'FLUSHALL');
  });

  describe('#lookup', () => {
    it('resolves a JSON {"host": "h:p"} value and a plain h:p value', async () => {
      await redisCli(port, 'SET', 'json-tok', '{"host": "10.0.0.5:5901"}');
      await redisCli(port, 'SET', 'plain-tok', 'vnc.example.org:5902');
      const plugin = await make(`127.0.0.1:${port}`);
      expect(await plugin.lookup('json-tok', makeContext())).to.deep.equal({ host: '10.0.0.5', port: 5901 });
      expect(await plugin.lookup('plain-tok', makeContext())).to.deep.equal({ host: 'vnc.example.org', port: 5902 });
      expect(await plugin.lookup('missing', makeContext())).to.equal(null);
    });

    it('accepts IPv6 targets, which websockify\'s split(":") cannot', async () => {
      await redisCli(port, 'SET', 'a', '{"host": "::1:5900"}');
      await redisCli(port, 'SET', 'b', '[fd00::2]:5901');
      const plugin = await make(`127.0.0.1:${port}`);
      expect(await plugin.lookup('a', makeContext())).to.deep.equal({ host: '::1', port: 5900 });
      expect(await plugin.lookup('b', makeContext())).to.deep.equal({ host: 'fd00::2', port: 5901 });
    });

    it('looks keys up under the namespace, which may be quoted to hold colons', async () => {
      await redisCli(port, 'SET', 'vnc:tok', 'h:1');
      await redisCli(port, 'SET', 'first-ns:second-ns:tok', 'h:2');
      await redisCli(port, 'SET', 'tok', 'h:3');
      expect(await (await make(`127.0.0.1:${port}:0::vnc`)).lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 1 });
      expect(await (await make(`127.0.0.1:${port}:::"first-ns:second-ns"`)).lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 2 });
      expect(await (await make(`127.0.0.1:${port}`)).lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 3 });
    });

    it('uses the db given in the source', async () => {
      await redisCli(port, '-n', '3', 'SET', 'tok', 'db3:1');
      const plugin = await make(`127.0.0.1:${port}:3`);
      expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'db3', port: 1 });
      expect(await (await make(`127.0.0.1:${port}`)).lookup('tok', makeContext())).to.equal(null);
    });

    it('connects lazily, then serves every lookup over ONE shared connection', async () => {
      await redisCli(port, 'SET', 'tok', 'h:1');
      const plugin = await make(`127.0.0.1:${port}`);
      await new Promise((r) => setTimeout(r, 100));
      expect((await clientNames(port)).filter((n) => n === 'tsockify-token-redis')).to.have.length(0);
      const results = await Promise.all(Array.from({ length: 100 }, () => plugin.lookup('tok', makeContext())));
      expect(results.every((r) => r !== null && 'host' in r && r.host === 'h')).to.equal(true);
      for (let i = 0; i < 20; i++) await plugin.lookup('tok', makeContext());
      expect((await clientNames(port)).filter((n) => n === 'tsockify-token-redis')).to.have.length(1);
    });

    it('refuses a malformed value or a key of another type with TokenInvalidError, logging neither token nor value', async () => {
      await redisCli(port, 'SET', 'sekrit-tok', 'sekrit-garbage');
      await redisCli(port, 'HSET', 'hash-tok', 'host', 'h:1');
      const log = captureLogger();
      const plugin = await make(`127.0.0.1:${port}`, { logger: log });
      const bad = await rejection(plugin.lookup('sekrit-tok', makeContext({ log })));
      expect(bad).to.be.instanceOf(TokenInvalidError);
      expect(bad.message).to.equal('token record malformed');
      expect(await rejection(plugin.lookup('hash-tok', makeContext()))).to.be.instanceOf(TokenInvalidError);
      expect(log.text()).not.to.include('sekrit');
    });

    it('fails with PluginUnavailableError within commandTimeoutMs while Redis is stalled (CLIENT PAUSE)', async () => {
      await redisCli(port, 'SET', 'tok', 'h:1');
      const plugin = await make(`127.0.0.1:${port}`, { commandTimeoutMs: 300 });
      expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 1 });
      await redisCli(port, 'CLIENT', 'PAUSE', '1500', 'ALL');
      const t0 = Date.now();
      const err = await rejection(plugin.lookup('tok', makeContext()));
      expect(err).to.be.instanceOf(PluginUnavailableError);
      expect(Date.now() - t0).to.be.within(250, 1200);
      await eventually(async () => expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 1 }));
    });
  });

  describe('when Redis is down', () => {
    it('fails closed within the bound, and recovers without a restart when Redis comes back', async function () {
      this.timeout(30_000);
      const downPort = await freePort();
      const log = captureLogger();
      const plugin = await make(`127.0.0.1:${downPort}`, { commandTimeoutMs: 400, connectTimeoutMs: 400, maxReconnectDelayMs: 200, logger: log });

      // Down from the start: the server may start before Redis.
      let t0 = Date.now();
      expect(await rejection(plugin.lookup('tok', makeContext()))).to.be.instanceOf(PluginUnavailableError);
      expect(Date.now() - t0).to.be.below(1500);

      // Redis starts: lookups work, on one connection.
      let second = await startRedis(downPort);
      try {
        await redisCli(downPort, 'SET', 'tok', 'h:7');
        await eventually(async () => expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 7 }));

        // Redis dies: lookups fail fast with 503, none hangs.
        await second.stop();
        t0 = Date.now();
        const results = await Promise.allSettled(Array.from({ length: 20 }, () => plugin.lookup('tok', makeContext())));
        expect(results.every((r) => r.status === 'rejected' && r.reason instanceof PluginUnavailableError)).to.equal(true);
        expect(Date.now() - t0).to.be.below(1500);

        // Redis is back (empty, no persistence): the same plugin sees it again.
        second = await startRedis(downPort);
        await redisCli(downPort, 'SET', 'tok', 'h:8');
        await eventually(async () => expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 8 }));
        expect((await clientNames(downPort)).filter((n) => n === 'tsockify-token-redis')).to.have.length(1);
      } finally {
        await second.stop();
      }
      // One line when it went down, one when it came back; not one per retry.
      const lines = log.records.map((r) => r.msg);
      expect(lines.filter((m) => m.includes('unavailable')).length).to.be.within(1, 3);
      expect(lines.some((m) => m.includes('reachable again'))).to.equal(true);
    });
  });

  describe('with a password', () => {
    let authPort: number;
    let authRedis: Proc;
    before(async () => {
      authPort = await freePort();
      authRedis = await startRedis(authPort, '--requirepass', 'pw:with:colons');
      await redisCli(authPort, '-a', 'pw:with:colons', '--no-auth-warning', 'SET', 'ns:tok', 'h:9');
    });
    after(() => authRedis.stop());

    it('authenticates with the (quoted) password field and uses the namespace after it', async () => {
      const plugin = await make(`127.0.0.1:${authPort}::"pw:with:colons":ns`);
      expect(await plugin.lookup('tok', makeContext())).to.deep.equal({ host: 'h', port: 9 });
    });

    it('fails with PluginUnavailableError on a wrong password', async () => {
      const plugin = await make(`127.0.0.1:${authPort}::wrong:ns`, { commandTimeoutMs: 500 });
      expect(await rejection(plugin.lookup('tok', makeContext()))).to.be.instanceOf(PluginUnavailableError);
    });
  });
});

describe('parseRedisSource', () => {
  it('parses every form of host[:port[:db[:password[:namespace]]]], empty fields taking defaults', () => {
    expect(parseRedisSource('redis.local')).to.deep.equal({ host: 'redis.local', port: 6379, db: 0 });
    expect(parseRedisSource('h:6380')).to.deep.equal({ host: 'h', port: 6380, db: 0 });
    expect(parseRedisSource('h::2')).to.deep.equal({ host: 'h', port: 6379, db: 2 });
    expect(parseRedisSource('h:::pw')).to.deep.equal({ host: 'h', port: 6379, db: 0, password: 'pw' });
    expect(parseRedisSource('h::::ns')).to.deep.equal({ host: 'h', port: 6379, db: 0, namespace: 'ns' });
    expect(parseRedisSource('h:6380:1:pw:app')).to.deep.equal({ host: 'h', port: 6380, db: 1, password: 'pw', namespace: 'app' });
    expect(parseRedisSource('h::::"a:b"')).to.deep.equal({ host: 'h', port: 6379, db: 0, namespace: 'a:b' });
    expect(parseRedisSource('"::1":6379')).to.deep.equal({ host: '::1', port: 6379, db: 0 });
  });

  it('splits fields like websockify\'s parse_source_args', () => {
    expect(splitSourceFields('a:b:c:d')).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(splitSourceFields('a:"b:c":d')).to.deep.equal(['a', 'b:c', 'd']);
    expect(splitSourceFields('a:')).to.deep.equal(['a', '']);
    expect(splitSourceFields('a:"b')).to.deep.equal(['a', '"b']);
    expect(splitSourceFields('a:"b"c:d')).to.deep.equal(['a', '"b"c', 'd']);
  });

  it('names the value, the grammar and the problem in a startup error', () => {
    expect(() => parseRedisSource('h:abc')).to.throw(
      InvalidOptionError,
      'invalid --token-source "h:abc": TokenRedis expects host[:port[:db[:password[:namespace]]]] (port "abc" is not a number from 1 to 65535)',
    );
    expect(() => parseRedisSource('h:1:x')).to.throw(InvalidOptionError, 'db "x" is not a number');
    expect(() => parseRedisSource(':6379')).to.throw(InvalidOptionError, 'the host is empty');
    expect(() => parseRedisSource(undefined)).to.throw(InvalidOptionError, 'TokenRedis needs --token-source');
  });

  it('never prints the password in an error', () => {
    let message = '';
    try {
      parseRedisSource('h:1:0:hunter2:ns:extra');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.include('"h:1:0:***:ns:extra"');
    expect(message).not.to.include('hunter2');
  });
});

describe('parseRedisValue', () => {
  it('reads {"host": "h:p"}, {"host": "h", "port": p} and plain h:p', () => {
    expect(parseRedisValue('{"host":"h:1"}')).to.deep.equal({ host: 'h', port: 1 });
    expect(parseRedisValue(' {"host":"h","port":"2"} ')).to.deep.equal({ host: 'h', port: 2 });
    expect(parseRedisValue('h:3\n')).to.deep.equal({ host: 'h', port: 3 });
  });
});
