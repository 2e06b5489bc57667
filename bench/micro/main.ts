/**
 * `pnpm --filter @tsockify/bench run micro`: benchmark.js microbenchmarks of the hot
 * functions, in-process, without sockets:
 *   - the relay's message path (Session between a stub WebSocket and a stub target socket,
 *     with ws's real frame encoder on the client side), both directions, small and large;
 *   - ws's receiver turning masked client frames into messages (what feeds the relay);
 *   - record encoding (`encodeRecordLine`, what the recorder writes, and `encodeRecordFrame`, the same line as a string), the per-message cost of `--record`;
 *   - signed-token verification (HS256 and Ed25519), the per-connection cost of a token gate.
 *
 * Flags: --filter TEXT (run only matching cases), --time S (seconds per case, default 1).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import Benchmark from 'benchmark';
import { createRequire } from 'node:module';
import { Session, type SessionInfo } from '../../packages/core/src/relay.ts';
import { encodeRecordFrame, encodeRecordLine } from '../../packages/core/src/record.ts';
import { silentLogger } from '../../packages/core/src/logger.ts';
import { signToken, verifyToken } from '../../packages/auth-plugins/src/signed-token.ts';
import { parseKeyValue } from '../../packages/auth-plugins/src/signed-token-keys.ts';

// ws's frame encoder and parser are not in its type declarations: describe what is used here.
interface FrameOptions { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }
const require = createRequire(import.meta.url);
const { Sender, Receiver } = require('ws') as {
  Sender: { frame(data: Buffer, o: FrameOptions): Buffer[] };
  Receiver: new (o: object) => NodeJS.WritableStream & EventEmitter;
};

const { values } = parseArgs({ args: process.argv.slice(2).filter((a) => a !== '--'), options: { filter: { type: 'string' }, time: { type: 'string' } } });
const maxTime = Number(values.time ?? 1);

/** Stands in for a socket: counts writes, never queues (the kernel took everything). */
class StubSocket extends EventEmitter {
  bytes = 0;
  writableLength = 0;
  writable = true;
  destroyed = false;
  write(d: Buffer): boolean { this.bytes += d.length; return true; }
  cork(): void {}
  uncork(): void {}
  end(): void {}
  destroy(): void { this.destroyed = true; }
  pause(): this { return this; }
  resume(): this { return this; }
  setKeepAlive(): this { return this; }
}

/** Stands in for a server-side ws WebSocket: frames each send with ws's own encoder. */
class StubWebSocket extends EventEmitter {
  readonly CLOSED = 3;
  readyState = 1;
  protocol = 'binary';
  constructor(private readonly socket: StubSocket) { super(); }
  send(data: Buffer): void {
    const [header, payload] = Sender.frame(data, { fin: true, opcode: 2, mask: false, readOnly: false, rsv1: false });
    this.socket.write(header!);
    if (payload) this.socket.write(payload);
  }
  close(): void {}
  terminate(): void {}
  pause(): void {}
  resume(): void {}
}

function session(): { s: Session; ws: StubWebSocket; target: StubSocket; client: StubSocket } {
  const client = new StubSocket();
  const target = new StubSocket();
  const ws = new StubWebSocket(client);
  const info: SessionInfo = { id: 1, remoteAddress: '127.0.0.1', remotePort: 1, target: '127.0.0.1:5900', path: '/', protocol: 'binary', startedAt: Date.now() };
  const s = new Session(info, ws as never, client as never, target as never, {
    highWaterMark: 1024 * 1024,
    lingerMs: 5000,
    log: silentLogger,
    taps: undefined,
    onClose: () => {},
  } as never);
  return { s, ws, target, client };
}

function maskedFrame(payload: Buffer): Buffer {
  const parts = Sender.frame(Buffer.from(payload), { fin: true, opcode: 2, mask: true, readOnly: false, rsv1: false });
  return Buffer.concat(parts);
}

const small = randomBytes(64);
const large = randomBytes(64 * 1024);
const kib = randomBytes(1024);
const pathA = session();
const frameSmall = maskedFrame(small);
const frameLarge = maskedFrame(large);
let received = 0;
const receiver = new Receiver({ isServer: true, binaryType: 'nodebuffer', maxPayload: 0, skipUTF8Validation: true });
receiver.on('message', (d: Buffer) => { received += d.length; });

const hsKey = parseKeyValue('k1', `hs256:${randomBytes(32).toString('base64url')}`);
const edKey = parseKeyValue('k2', `ed25519-private:${randomBytes(32).toString('base64url')}`);
const claims = { host: '10.0.0.5', port: 5901, sub: 'alice', iid: 'i-42', ttlSec: 600 };
const hsToken = signToken(claims, hsKey);
const edToken = signToken(claims, edKey);
const hsRing = new Map([[hsKey.kid, hsKey]]);
const edRing = new Map([[edKey.kid, edKey]]);

const suite = new Benchmark.Suite('tsockify hot paths');
const add = (name: string, fn: () => void): void => {
  if (values.filter && !name.includes(values.filter)) return;
  suite.add(name, fn, { maxTime });
};
add('relay target→client, 64 B read', () => { pathA.target.emit('data', small); });
add('relay target→client, 64 KiB read', () => { pathA.target.emit('data', large); });
add('relay client→target, 64 B message', () => { pathA.ws.emit('message', small, true); });
add('relay client→target, 64 KiB message', () => { pathA.ws.emit('message', large, true); });
// The receiver unmasks in place: the same frame stays a valid frame (its payload toggles).
add('ws receiver, 64 B masked frame', () => { receiver.write(frameSmall); });
add('ws receiver, 64 KiB masked frame', () => { receiver.write(frameLarge); });
add('encodeRecordFrame, 64 B', () => { encodeRecordFrame('{', 1234, small); });
add('encodeRecordFrame, 1 KiB', () => { encodeRecordFrame('}', 1234, kib); });
add('encodeRecordFrame, 64 KiB', () => { encodeRecordFrame('{', 1234, large); });
// What the recorder itself writes per message: the line as a Buffer, no string.
add('encodeRecordLine, 64 KiB', () => { encodeRecordLine('{', 1234, large); });
add('verifyToken, HS256', () => { verifyToken(hsToken, hsRing); });
add('verifyToken, Ed25519', () => { verifyToken(edToken, edRing); });

suite
  .on('cycle', (event: Benchmark.Event) => {
    const b = event.target as unknown as { name: string; hz: number; stats: Benchmark.Stats };
    const ns = 1e9 / b.hz;
    process.stdout.write(`${String(b.name).padEnd(38)} ${b.hz.toFixed(0).padStart(12)} ops/s  ${ns.toFixed(0).padStart(8)} ns/op  ±${b.stats.rme.toFixed(1)}%  (${b.stats.sample.length} samples)\n`);
  })
  .on('complete', () => {
    if (received === 0 && (!values.filter || 'ws receiver'.includes(values.filter))) process.stderr.write('warning: the receiver produced no message\n');
  })
  .run({ async: false });
