import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { SessionRecorder, encodeRecordFrame } from '../../packages/core/src/record.js';
import { RecordError } from '../../packages/core/src/errors.js';
import type { Logger } from '../../packages/core/src/logger.js';
import { freePort, waitForPort, startTcpTarget } from '../helpers/net.js';
import { startProcess } from '../helpers/proc.js';

/** Debian's python3, the one websockify runs on; any python3 has the same unicode_escape. */
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

interface Frame { fromClient: boolean; timestamp: number; data: Uint8Array }

/** Load a recording the way noVNC's playback page does: run it as a script, read VNC_frame_data. */
function loadRecording(text: string): string[] {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  return new Function(`${text}; return VNC_frame_data;`)() as string[];
}

/**
 * noVNC tests/playback-ui.js, binary encoding: stop at "EOF", data starts after the second
 * marker, one byte per char code. (noVNC searches for '{' only, which is right for the
 * server frames it plays and wrong for '}' frames it skips; we use the frame's own marker
 * so client frames can be checked too.)
 */
function decodeFrames(frames: string[]): Frame[] {
  const out: Frame[] = [];
  for (const frame of frames) {
    if (frame === 'EOF') break;
    const dataIdx = frame.indexOf(frame[0]!, 1) + 1;
    const data = new Uint8Array(frame.length - dataIdx);
    for (let j = 0; j < data.length; j++) data[j] = frame.charCodeAt(dataIdx + j);
    out.push({ fromClient: frame[0] === '}', timestamp: parseInt(frame.slice(1, dataIdx - 1), 10), data });
  }
  return out;
}

/** The record lines of a file with the timestamps blanked. */
function withoutTimes(text: string): string {
  return text.replace(/^'([{}])\d+\1/gm, "'$1T$1");
}

function randomPayloads(): Buffer[] {
  const all = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  const rnd = Buffer.alloc(70_000);
  for (let i = 0; i < rnd.length; i++) rnd[i] = Math.floor(Math.random() * 256);
  return [
    all,
    Buffer.from("it's a 'quote' and a \\backslash\\ and \\'both\\'", 'latin1'),
    Buffer.from('RFB 003.008\n', 'latin1'),
    Buffer.from('\\x41 is not A, \\n is not a newline', 'latin1'),
    Buffer.alloc(0),
    rnd,
  ];
}

async function waitFor<T>(fn: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function recordingLogger(): Logger & { calls: Array<{ level: string; args: unknown[] }> } {
  const calls: Array<{ level: string; args: unknown[] }> = [];
  const mk = (level: string) => (...args: unknown[]) => { calls.push({ level, args }); };
  const logger = {
    calls,
    debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error'),
    child: () => logger,
  };
  return logger as Logger & { calls: typeof calls };
}

describe('encodeRecordFrame', () => {
  it('writes the marker, the time, the marker again and a quoted line', () => {
    expect(encodeRecordFrame('}', 9, Buffer.from("hi'\x00\xff", 'latin1'))).to.equal("'}9}hi\\'\\x00\\xff',\n");
    expect(encodeRecordFrame('{', 24, Buffer.alloc(0))).to.equal("'{24{',\n");
  });

  it("escapes every byte value exactly as websockify's Python unicode_escape does", () => {
    const payloads = randomPayloads();
    const py = [
      'import sys, json',
      'out = []',
      'for h in json.load(sys.stdin):',
      "    buf = bytes.fromhex(h)",
      "    out.append(buf.decode('latin1').encode('unicode_escape').decode('ascii').replace(\"'\", \"\\\\'\"))",
      'json.dump(out, sys.stdout)',
    ].join('\n');
    const expected = JSON.parse(execFileSync(PYTHON, ['-c', py], {
      input: JSON.stringify(payloads.map((p) => p.toString('hex'))),
      maxBuffer: 64 * 1024 * 1024,
    }).toString()) as string[];
    payloads.forEach((p, i) => {
      expect(encodeRecordFrame('{', 7, p)).to.equal(`'{7{${expected[i]}',\n`);
    });
  });
});

describe('SessionRecorder', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-record-')); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('writes a file that noVNC playback decodes back to the same bytes', async () => {
    const payloads = randomPayloads();
    const rec = await SessionRecorder.open(path.join(dir, 'rec'), 3);
    expect(rec.path).to.equal(path.join(dir, 'rec.3'));
    payloads.forEach((p, i) => (i % 2 ? rec.fromTarget(p) : rec.fromClient(p)));
    await rec.close();

    const text = fs.readFileSync(path.join(dir, 'rec.3'), 'latin1');
    expect(text.startsWith('var VNC_frame_data = [\n')).to.equal(true);
    expect(text.endsWith("'EOF'];\n")).to.equal(true);
    const frames = decodeFrames(loadRecording(text));
    expect(frames).to.have.length(payloads.length);
    frames.forEach((f, i) => {
      expect(f.fromClient, `frame ${i} direction`).to.equal(i % 2 === 0);
      expect(Buffer.from(f.data).equals(payloads[i]!), `frame ${i} bytes`).to.equal(true);
      expect(f.timestamp).to.be.a('number').and.at.least(0);
    });
  });

  it('stamps each frame with whole milliseconds since the session started', async () => {
    const rec = await SessionRecorder.open(path.join(dir, 'rec'), 1);
    rec.fromTarget(Buffer.from('a'));
    await new Promise((r) => setTimeout(r, 120));
    rec.fromTarget(Buffer.from('b'));
    await rec.close();
    const frames = decodeFrames(loadRecording(fs.readFileSync(path.join(dir, 'rec.1'), 'latin1')));
    expect(frames[0]!.timestamp).to.be.below(100);
    expect(frames[1]!.timestamp).to.be.at.least(110).and.below(1000);
  });

  it('rejects with RecordError TSOCK_ERR_RECORD naming the file when it cannot be opened', async () => {
    const prefix = path.join(dir, 'missing-dir', 'rec');
    try {
      await SessionRecorder.open(prefix, 1);
      expect.fail('open should have rejected');
    } catch (err) {
      expect(err).to.be.instanceOf(RecordError);
      expect((err as RecordError).code).to.equal('TSOCK_ERR_RECORD');
      expect((err as Error).message).to.contain(`${prefix}.1`).and.contain('ENOENT');
    }
  });

  it('closes idempotently, writes the trailer once and ignores frames after close', async () => {
    const rec = await SessionRecorder.open(path.join(dir, 'rec'), 1);
    rec.fromClient(Buffer.from('x'));
    const a = rec.close();
    const b = rec.close();
    expect(a).to.equal(b);
    await a;
    rec.fromClient(Buffer.from('late'));
    rec.fromTarget(Buffer.from('late'));
    await rec.close();
    const text = fs.readFileSync(path.join(dir, 'rec.1'), 'latin1');
    expect(withoutTimes(text)).to.equal("var VNC_frame_data = [\n'}T}x',\n'EOF'];\n");
  });

  it('creates the file readable by its owner only', async () => {
    const rec = await SessionRecorder.open(path.join(dir, 'rec'), 1);
    await rec.close();
    expect(fs.statSync(path.join(dir, 'rec.1')).mode & 0o777).to.equal(0o600);
  });

  it('logs a write failure once and stops recording without throwing', async function () {
    if (!fs.existsSync('/dev/full')) this.skip();
    fs.symlinkSync('/dev/full', path.join(dir, 'rec.1'));
    const logger = recordingLogger();
    const rec = await SessionRecorder.open(path.join(dir, 'rec'), 1, { logger });
    for (let i = 0; i < 50; i++) rec.fromTarget(Buffer.alloc(1000, i));
    await waitFor(() => (logger.calls.some((c) => c.level === 'error') ? true : undefined), 'the error log');
    for (let i = 0; i < 50; i++) rec.fromClient(Buffer.alloc(1000, i));
    await rec.close();
    const errors = logger.calls.filter((c) => c.level === 'error');
    expect(errors).to.have.length(1);
    expect(String(errors[0]!.args[1])).to.contain('recording stopped');
  });

  it('stops recording with one warning when the disk falls behind by more than maxBufferedBytes', async () => {
    const logger = recordingLogger();
    const rec = await SessionRecorder.open(path.join(dir, 'rec'), 1, { logger, maxBufferedBytes: 10_000 });
    for (let i = 0; i < 100; i++) rec.fromTarget(Buffer.alloc(1000, 0x41));
    await rec.close();
    expect(logger.calls.filter((c) => c.level === 'warn')).to.have.length(1);
    const text = fs.readFileSync(path.join(dir, 'rec.1'), 'latin1');
    const frames = decodeFrames(loadRecording(text)); // still a valid recording
    expect(frames.length).to.be.greaterThan(0).and.below(100);
  });

  describe('against websockify --record', function () {
    let websockify: ReturnType<typeof startProcess> | undefined;
    let target: Awaited<ReturnType<typeof startTcpTarget>> | undefined;

    before(function () {
      if (!fs.existsSync('/usr/bin/websockify')) this.skip();
    });
    afterEach(async () => {
      await websockify?.stop();
      await target?.close();
      websockify = undefined;
      target = undefined;
    });

    it('writes the same file as websockify for the same messages, timestamps aside', async () => {
      target = await startTcpTarget();
      const port = await freePort();
      const prefix = path.join(dir, 'ws');
      websockify = startProcess('/usr/bin/websockify', [`--record=${prefix}`, `127.0.0.1:${port}`, `127.0.0.1:${target.port}`]);
      await waitForPort(port);

      const payloads = randomPayloads().filter((p) => p.length <= 4096);
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['binary']);
      ws.binaryType = 'nodebuffer';
      ws.on('error', (err) => { throw err; });
      await once(ws, 'open');
      const echoed: Buffer[] = [];
      ws.on('message', (d: Buffer) => echoed.push(d));
      let expectedEcho = 0;
      for (const p of payloads) {
        ws.send(p);
        expectedEcho += p.length;
        await waitFor(() => (Buffer.concat(echoed).length >= expectedEcho ? true : undefined), 'the echo');
      }
      ws.close(1000);
      await once(ws, 'close');

      const file = await waitFor(() => {
        const name = fs.readdirSync(dir).find((f) => f.startsWith('ws.'));
        if (!name) return undefined;
        const text = fs.readFileSync(path.join(dir, name), 'latin1');
        return text.endsWith("'EOF'];\n") ? text : undefined;
      }, "websockify's recording");

      // Every line websockify wrote is what our encoder writes for its bytes and time.
      const theirs = decodeFrames(loadRecording(file));
      const lines = file.split('\n').slice(1, -2);
      expect(lines).to.have.length(theirs.length);
      theirs.forEach((f, i) => {
        expect(encodeRecordFrame(f.fromClient ? '}' : '{', f.timestamp, Buffer.from(f.data))).to.equal(`${lines[i]}\n`);
      });
      // The client frames are exactly the messages sent, and the target frames the echo.
      const client = theirs.filter((f) => f.fromClient).map((f) => Buffer.from(f.data));
      expect(client).to.have.length(payloads.length);
      client.forEach((c, i) => expect(c.equals(payloads[i]!), `client frame ${i}`).to.equal(true));
      const fromTarget = Buffer.concat(theirs.filter((f) => !f.fromClient).map((f) => Buffer.from(f.data)));
      expect(fromTarget.equals(Buffer.concat(payloads))).to.equal(true);

      // Our recorder fed the same frames writes the same file (header, lines, trailer).
      const rec = await SessionRecorder.open(path.join(dir, 'ours'), 1);
      for (const f of theirs) (f.fromClient ? rec.fromClient(Buffer.from(f.data)) : rec.fromTarget(Buffer.from(f.data)));
      await rec.close();
      expect(withoutTimes(fs.readFileSync(path.join(dir, 'ours.1'), 'latin1'))).to.equal(withoutTimes(file));
    });
  });
});
