/**
 * `--record` faults. The decided behaviour (packages/core/src/taps.ts, docs/security.md): a
 * record folder that does not exist is a startup error; a record file that cannot be opened
 * when a session starts does NOT refuse the session: the desktop matters more than its
 * recording. The session runs unrecorded and an error naming the file and the cause is logged.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { randomBytes } from 'node:crypto';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { startTsockify } from '../helpers/proc.js';
import { startCli } from '../soak/cli.js';
import { openClient, until } from './client-helper.js';
import { fdCount, waitAtMost } from './leaks.js';

/** Send `data`, wait for the echo, close; return what came back. */
async function echoSession(port: number, data: Buffer): Promise<Buffer> {
  const c = await openClient(`ws://127.0.0.1:${port}/`);
  const got: Buffer[] = [];
  c.ws.on('message', (d: Buffer) => got.push(d));
  c.ws.send(data);
  await until('echo', () => Buffer.concat(got).length >= data.length);
  c.ws.close(1000);
  await c.closed;
  return Buffer.concat(got);
}

/** The frames of a recording, decoded as noVNC's playback page would. */
function readRecording(file: string): Array<{ dir: string; bytes: Buffer }> {
  const text = fs.readFileSync(file, 'latin1');
  const sandbox: { VNC_frame_data?: string[] } = {};
  vm.runInNewContext(text, sandbox);
  const frames = sandbox.VNC_frame_data!;
  expect(frames.at(-1)).to.equal('EOF');
  return frames.slice(0, -1).map((f) => {
    const m = /^([{}])\d+\1/.exec(f)!;
    return { dir: m[1]!, bytes: Buffer.from(f.slice(m[0].length), 'latin1') };
  });
}

describe('faults: an unwritable --record path', function () {
  this.timeout(30_000);
  let dir: string;
  let target: TcpTargetServer;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-record-'));
    target = await startTcpTarget();
  });
  afterEach(async () => {
    await target.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to start when the record folder does not exist', async () => {
    const proc = startTsockify(['--record', path.join(dir, 'missing', 'rec'), '127.0.0.1:0', `127.0.0.1:${target.port}`]);
    expect(await proc.exited).to.equal(1);
    expect(proc.stderr()).to.match(/--record folder .*missing.* not found/);
  });

  it('keeps the session when its record file cannot be opened, logs why, and records the next one', async () => {
    const prefix = path.join(dir, 'rec');
    // rec.1 is a folder: opening it for writing fails with EISDIR, even for root.
    fs.mkdirSync(`${prefix}.1`);
    const cli = await startCli(['--record', prefix], [`127.0.0.1:${target.port}`]);
    try {
      const fdBaseline = fdCount(cli.pid);
      const one = randomBytes(5000);
      expect((await echoSession(cli.port, one)).equals(one), 'session 1 relayed exactly').to.equal(true);
      await until('the error is logged', () => /recording disabled for this session/.test(cli.output()));
      const line = cli.output().split('\n').find((l) => l.includes('recording disabled for this session'))!;
      expect(line).to.include(`${prefix}.1`);
      expect(line).to.include('EISDIR');
      expect(JSON.parse(line).level, 'logged as an error').to.equal(50);

      const two = randomBytes(3000);
      expect((await echoSession(cli.port, two)).equals(two)).to.equal(true);
      await until('rec.2 complete', () => fs.existsSync(`${prefix}.2`) && fs.readFileSync(`${prefix}.2`, 'latin1').endsWith("'EOF'];\n"));
      const frames = readRecording(`${prefix}.2`);
      expect(Buffer.concat(frames.filter((f) => f.dir === '}').map((f) => f.bytes)).equals(two)).to.equal(true);
      expect(cli.proc.child.exitCode).to.equal(null);
      await waitAtMost('tsockify fds', () => fdCount(cli.pid), fdBaseline, 3000);
    } finally {
      await cli.stop();
    }
  });

  it('keeps sessions running when the record folder disappears after startup', async () => {
    const recDir = path.join(dir, 'recordings');
    fs.mkdirSync(recDir);
    const cli = await startCli(['--record', path.join(recDir, 'rec')], [`127.0.0.1:${target.port}`]);
    try {
      fs.rmSync(recDir, { recursive: true });
      const data = randomBytes(2000);
      expect((await echoSession(cli.port, data)).equals(data)).to.equal(true);
      await until('the error is logged', () => /recording disabled for this session/.test(cli.output()));
      expect(cli.output()).to.match(/ENOENT/);
      expect(cli.proc.child.exitCode).to.equal(null);
    } finally {
      await cli.stop();
    }
  });

  // Regression: the record file number was taken as `sessionCounter + 1` once the target was
  // dialled, but the counter only moved when the session started. Upgrades in flight at the
  // same time got the SAME number, opened the same FILE.<n> with 'w' and wrote over each other
  // (6 concurrent sessions left 4 files). Sessions are now numbered before the file is opened.
  it('gives every session its own record file when sessions start at the same time (regression: concurrent sessions share FILE.<n>)', async () => {
    const prefix = path.join(dir, 'rec');
    const cli = await startCli(['--record', prefix], [`127.0.0.1:${target.port}`]);
    try {
      const payloads = Array.from({ length: 6 }, () => randomBytes(1000));
      await Promise.all(payloads.map((p) => echoSession(cli.port, p)));
      await new Promise((r) => setTimeout(r, 300));
      const files = fs.readdirSync(dir).filter((f) => f.startsWith('rec.')).sort();
      expect(files, 'one file per session').to.have.length(payloads.length);
      const recorded = files.map((f) => Buffer.concat(readRecording(path.join(dir, f)).filter((x) => x.dir === '}').map((x) => x.bytes)).toString('hex')).sort();
      expect(recorded).to.deep.equal(payloads.map((p) => p.toString('hex')).sort());
    } finally {
      await cli.stop();
    }
  });
});
