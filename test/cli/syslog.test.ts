import { expect } from 'chai';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import {
  createSyslogStream,
  formatSyslogLine,
  parseSyslogSpec,
  severityOf,
  type FormatOptions,
  type UnixDatagramSocket,
} from '../../packages/cli/src/syslog.js';
import { repoRoot, startProcess } from '../helpers/proc.js';

// pino is the CLI's dependency; load the copy the CLI uses.
const requireFromCli = createRequire(path.join(repoRoot, 'packages/cli/package.json'));
interface TestLogger { debug(msg: string): void; info(msg: string): void; info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(msg: string): void }
const pino = requireFromCli('pino') as (optsOrStream: object, stream?: Writable) => TestLogger;

const RFC5424 = /^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) - - (.*)$/s;
const RFC3164_REMOTE = /^<(\d+)>([A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) (\S+) ([^[\s]+)\[(\d+)\]: (.*)$/s;
const RFC3164_LOCAL = /^<(\d+)>([A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) ([^[\s]+)\[(\d+)\]: (.*)$/s;

const base: FormatOptions = { legacy: false, facility: 'user', appName: 'tsockify', hostname: 'box.example', pid: 4242, withHostname: true };
const line = (o: object) => JSON.stringify({ level: 30, time: Date.UTC(2024, 0, 5, 3, 4, 5, 678), pid: 1, hostname: 'x', ...o });

async function udpServer(): Promise<{ port: number; socket: dgram.Socket; next(): Promise<Buffer> }> {
  const socket = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  const waiters: Array<(b: Buffer) => void> = [];
  socket.on('message', (m) => { const w = waiters.shift(); if (w) w(m); else got.push(m); });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return {
    port: (socket.address() as net.AddressInfo).port,
    socket,
    next: () => new Promise((resolve) => { const m = got.shift(); if (m) resolve(m); else waiters.push(resolve); }),
  };
}

async function endStream(s: Writable): Promise<void> {
  s.end();
  await once(s, 'finish');
}

describe('parseSyslogSpec', () => {
  it('reads host:port as UDP, splitting on the last colon and stripping brackets', () => {
    expect(parseSyslogSpec('127.0.0.1:514')).to.deep.equal({ kind: 'udp', host: '127.0.0.1', port: 514 });
    expect(parseSyslogSpec('logs.example:5140')).to.deep.equal({ kind: 'udp', host: 'logs.example', port: 5140 });
    expect(parseSyslogSpec('[::1]:514')).to.deep.equal({ kind: 'udp', host: '::1', port: 514 });
  });

  it('reads a path, or a value without a colon, as a unix socket made absolute', () => {
    expect(parseSyslogSpec('/dev/log')).to.deep.equal({ kind: 'unix', path: '/dev/log' });
    expect(parseSyslogSpec('/run/odd:name')).to.deep.equal({ kind: 'unix', path: '/run/odd:name' });
    expect(parseSyslogSpec('log.sock')).to.deep.equal({ kind: 'unix', path: path.resolve('log.sock') });
  });

  it('rejects a port outside 1-65535 or a missing host with TSOCK_ERR_INVALID_OPTION', () => {
    for (const bad of ['host:x', 'host:0', 'host:70000', ':514', '']) {
      expect(() => parseSyslogSpec(bad), bad).to.throw().with.property('code', 'TSOCK_ERR_INVALID_OPTION');
    }
  });
});

describe('formatSyslogLine', () => {
  it('maps pino levels to syslog severities as websockify maps Python levels', () => {
    expect([10, 20, 30, 40, 50, 60].map(severityOf)).to.deep.equal([7, 7, 6, 4, 3, 2]);
  });

  it('writes PRI from the facility (user 1, daemon 3) and the severity', () => {
    const pri = (facility: 'user' | 'daemon', level: number) =>
      Number(RFC5424.exec(formatSyslogLine(line({ level, msg: 'm' }), { ...base, facility })!.toString())![1]);
    expect(pri('user', 30)).to.equal(14);
    expect(pri('user', 50)).to.equal(11);
    expect(pri('daemon', 40)).to.equal(28);
    expect(pri('daemon', 60)).to.equal(26);
  });

  it('writes an RFC 5424 header with the record time and no MSGID or structured data', () => {
    const out = formatSyslogLine(line({ msg: 'hello' }), base)!.toString();
    expect(out).to.equal('<14>1 2024-01-05T03:04:05.678Z box.example tsockify 4242 - - hello');
  });

  it('appends the other fields as JSON and turns newlines into spaces', () => {
    const out = formatSyslogLine(line({ name: 'tsockify', msg: 'two\nlines', session: 3, err: { stack: 'a\nb' } }), base)!.toString();
    expect(out).to.match(/ - - two lines \{"session":3,"err":\{"stack":"a\\nb"\}\}$/);
    expect(out).to.not.contain('\n');
  });

  it('marks a non-ASCII message with a UTF-8 BOM in RFC 5424 and not in RFC 3164', () => {
    const modern = formatSyslogLine(line({ msg: 'café' }), base)!;
    const at = modern.indexOf(' - - ') + 5;
    expect(modern.subarray(at).equals(Buffer.from('\ufeffcafé', 'utf8'))).to.equal(true);
    const legacy = formatSyslogLine(line({ msg: 'café' }), { ...base, legacy: true })!;
    expect(legacy.toString('utf8').endsWith(': café')).to.equal(true);
    expect(legacy.includes(Buffer.from([0xef, 0xbb, 0xbf]))).to.equal(false);
  });

  it('writes the RFC 3164 header in local time with a space-padded day', () => {
    const t = new Date(2024, 0, 5, 3, 4, 5).getTime();
    const out = formatSyslogLine(line({ time: t, level: 40, msg: 'w' }), { ...base, legacy: true })!.toString();
    expect(out).to.equal('<12>Jan  5 03:04:05 box tsockify[4242]: w');
    const local = formatSyslogLine(line({ time: t, msg: 'w' }), { ...base, legacy: true, withHostname: false })!.toString();
    expect(local).to.equal('<14>Jan  5 03:04:05 tsockify[4242]: w');
  });

  it('sends a line that is not JSON as it is, at severity info', () => {
    expect(formatSyslogLine('plain text', base)!.toString()).to.match(/^<14>1 \S+ box.example tsockify 4242 - - plain text$/);
    expect(formatSyslogLine('   ', base)).to.equal(null);
  });
});

describe('createSyslogStream', () => {
  let dir: string;
  const cleanups: Array<() => Promise<void> | void> = [];
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-syslog-')); });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends one RFC 5424 datagram per pino line over UDP', async () => {
    const srv = await udpServer();
    cleanups.push(() => { srv.socket.close(); });
    const warnings: string[] = [];
    const stream = createSyslogStream(`127.0.0.1:${srv.port}`, { legacy: false, onWarning: (m) => warnings.push(m) });
    const log = pino({ name: 'tsockify', level: 'debug' }, stream);
    const before = Date.now();
    log.info('first');
    log.warn({ session: 7 }, 'second');
    log.debug('third');
    const msgs = [await srv.next(), await srv.next(), await srv.next()].map((b) => b.toString());
    await endStream(stream);

    const m = msgs.map((s) => RFC5424.exec(s));
    expect(m.every(Boolean), msgs.join('\n')).to.equal(true);
    expect(m.map((x) => Number(x![1]))).to.deep.equal([14, 12, 15]);
    expect(m[0]![3]).to.equal(os.hostname());
    expect(m[0]![4]).to.equal('tsockify');
    expect(m[0]![5]).to.equal(String(process.pid));
    expect(m.map((x) => x![6])).to.deep.equal(['first', 'second {"session":7}', 'third']);
    expect(Date.parse(m[0]![2]!)).to.be.within(before - 5, Date.now() + 5);
    expect(msgs.every((s) => !s.endsWith('\n')), 'datagrams have no trailer').to.equal(true);
    expect(warnings).to.deep.equal([]);
  });

  it('sends RFC 3164 with timestamp, hostname and TAG[PID] over UDP with --legacy-syslog, facility daemon', async () => {
    const srv = await udpServer();
    cleanups.push(() => { srv.socket.close(); });
    const stream = createSyslogStream(`127.0.0.1:${srv.port}`, { legacy: true, facility: 'daemon', appName: 'websockify', onWarning: () => {} });
    pino(stream).error('boom');
    const got = (await srv.next()).toString();
    await endStream(stream);
    const m = RFC3164_REMOTE.exec(got);
    expect(m, got).to.not.equal(null);
    expect(Number(m![1])).to.equal(3 * 8 + 3);
    expect(m![3]).to.equal(os.hostname().split('.')[0]);
    expect(m![4]).to.equal('websockify');
    expect(m![5]).to.equal(String(process.pid));
    expect(m![6]).to.equal('boom');
  });

  it('writes LF-terminated messages to a unix stream socket, RFC 3164 without the hostname', async () => {
    const sock = path.join(dir, 'log.sock');
    let received = '';
    const server = net.createServer((c) => c.on('data', (d) => { received += d.toString(); }));
    server.listen(sock);
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));

    const stream = createSyslogStream(sock, { legacy: true, onWarning: (m) => { throw new Error(m); } });
    const log = pino(stream);
    log.info('one');
    log.info('two');
    await endStream(stream);
    const deadline = Date.now() + 5000;
    while (received.split('\n').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const lines = received.split('\n');
    expect(lines).to.have.length(3);
    expect(lines[2]).to.equal('');
    expect(lines.slice(0, 2).map((l) => RFC3164_LOCAL.exec(l)?.[5])).to.deep.equal(['one', 'two']);
  });

  it('reconnects to a unix stream socket after the daemon restarts', async () => {
    const sock = path.join(dir, 'log.sock');
    let received = '';
    const listen = async () => {
      const conns: net.Socket[] = [];
      const s = net.createServer((c) => { conns.push(c); c.on('data', (d) => { received += d.toString(); }); });
      s.listen(sock);
      await once(s, 'listening');
      return { stop: () => new Promise<void>((r) => { for (const c of conns) c.destroy(); s.close(() => r()); }) };
    };
    const first = await listen();
    const stream = createSyslogStream(sock, { legacy: false, onWarning: () => {} });
    const log = pino(stream);
    log.info('before');
    const deadline = Date.now() + 5000;
    while (!received.includes('before') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await first.stop();
    const second = await listen();
    cleanups.push(() => second.stop());
    while (!received.includes('after') && Date.now() < deadline) {
      log.info('after');
      await new Promise((r) => setTimeout(r, 100));
    }
    await endStream(stream);
    expect(received).to.contain('before').and.contain('after');
  });

  it('warns once and keeps accepting lines when the socket path does not exist', async () => {
    const warnings: string[] = [];
    const stream = createSyslogStream(path.join(dir, 'missing.sock'), { legacy: false, onWarning: (m) => warnings.push(m) });
    const log = pino(stream);
    for (let i = 0; i < 20; i++) log.info(`line ${i}`);
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 20; i++) log.info(`line ${i}`);
    await endStream(stream);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.contain('missing.sock').and.contain('ENOENT');
  });

  describe('a unix datagram socket (like /dev/log)', () => {
    /** A real AF_UNIX SOCK_DGRAM receiver: Python prints each datagram as hex, one per line. */
    async function datagramServer(sock: string) {
      const py = [
        'import socket, sys',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        `s.bind(${JSON.stringify(sock)})`,
        'print("ready", flush=True)',
        'while True:',
        '    print(s.recv(70000).hex(), flush=True)',
      ].join('\n');
      const proc = startProcess(fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-c', py]);
      cleanups.push(async () => { await proc.stop(); });
      await proc.waitForOutput(/ready/);
      return {
        messages: () => proc.stdout().split('\n').slice(1).filter(Boolean).map((h) => Buffer.from(h, 'hex').toString()),
      };
    }

    it('warns once, naming node-unix-socket, when no datagram module is available', async () => {
      const sock = path.join(dir, 'dev-log');
      await datagramServer(sock);
      const warnings: string[] = [];
      const stream = createSyslogStream(sock, { legacy: false, onWarning: (m) => warnings.push(m), unixDatagram: async () => null });
      const log = pino(stream);
      log.info('a');
      await new Promise((r) => setTimeout(r, 100));
      log.info('b');
      await endStream(stream);
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.contain('datagram').and.contain('node-unix-socket');
    });

    it('sends one datagram per line, without trailer, through the datagram module', async () => {
      // node-unix-socket is an optional dependency of the CLI (prebuilt binaries); on Linux x64
      // it installs, so this test uses the real package.
      // Load it by its real path: under tsx's resolver a module reached through pnpm's symlink
      // cannot find its own platform-specific optional dependency (plain node can).
      const real = fs.realpathSync(requireFromCli.resolve('node-unix-socket'));
      const { DgramSocket } = createRequire(real)(real) as { DgramSocket: new () => UnixDatagramSocket };
      const sock = path.join(dir, 'dev-log');
      const srv = await datagramServer(sock);
      const stream = createSyslogStream(sock, { legacy: true, onWarning: (m) => { throw new Error(m); }, unixDatagram: async () => new DgramSocket!() });
      const log = pino(stream);
      log.info('via datagram');
      log.info('again');
      const deadline = Date.now() + 5000;
      while (srv.messages().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await endStream(stream);
      expect(srv.messages().map((m) => RFC3164_LOCAL.exec(m)?.[5])).to.deep.equal(['via datagram', 'again']);
    });
  });
});
