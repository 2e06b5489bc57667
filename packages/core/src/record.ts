/**
 * Session recording (`--record FILE`) in the format websockify writes and noVNC's playback
 * page (tests/vnc_playback.html, tests/playback-ui.js) loads with a <script> tag:
 *
 *   var VNC_frame_data = [
 *   '{24{RFB 003.008\n',
 *   '}30}RFB 003.008\n',
 *   'EOF'];
 *
 * One line per WebSocket message: `{` target → client, `}` client → target, the
 * milliseconds since the session started, the same marker again, then the payload as a JS
 * string literal whose char codes are the bytes. websockify builds that literal with
 * `buf.decode('latin1').encode('unicode_escape').decode('ascii').replace("'", "\\'")`
 * (websockifyserver.py, send_frames/recv_frames); the table below reproduces Python's
 * unicode_escape for code points 0-255 byte for byte:
 *   - `\t` `\n` `\r` and `\\` get their short escapes,
 *   - 0x20-0x7e (printable ASCII) stay as they are, `'` then becomes `\'`,
 *   - every other byte (0x00-0x1f, 0x7f-0xff) is `\xhh`, lower-case hex.
 * noVNC decodes a frame with `frame.charCodeAt(i)` after the second marker.
 */
import fs from 'node:fs';
import { once } from 'node:events';
import { RecordError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';

/** Direction marker: `{` target → client, `}` client → target. */
export type RecordDirection = '{' | '}';

export interface SessionRecorderOptions {
  /** Where open/write failures are reported. Default: silent. */
  logger?: Logger;
  /**
   * How many encoded bytes may wait for the disk before recording is given up for the
   * session (a warning is logged and the file is closed with its trailer, so it stays a
   * valid, truncated recording). The relay never waits for the disk. Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * File mode for a new recording. Default 0o600: a recording holds every key the user
   * typed. (websockify opens with the umask default, usually 0644.)
   */
  mode?: number;
}

const HEADER = 'var VNC_frame_data = [\n';
const TRAILER = "'EOF'];\n";
const DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024;

// Per byte value: its escape as up to four ASCII codes packed little-endian in one word, and
// its length (1, 2 or 4).
const ESC_LEN = new Uint8Array(256);
const ESC_WORD = new Uint32Array(256);
const HEX = '0123456789abcdef';
for (let b = 0; b < 256; b++) {
  let s: string;
  if (b === 0x09) s = '\\t';
  else if (b === 0x0a) s = '\\n';
  else if (b === 0x0d) s = '\\r';
  else if (b === 0x5c) s = '\\\\';
  else if (b === 0x27) s = "\\'";
  else if (b >= 0x20 && b < 0x7f) s = String.fromCharCode(b);
  else s = '\\x' + HEX[b >> 4] + HEX[b & 15];
  ESC_LEN[b] = s.length;
  let word = 0;
  for (let i = 0; i < s.length; i++) word |= s.charCodeAt(i) << (8 * i);
  ESC_WORD[b] = word >>> 0;
}

const QUOTE = 0x27;
const COMMA = 0x2c;
const NEWLINE = 0x0a;

/**
 * Encode one message as its record line, `'<dir><ms><dir><escaped bytes>',\n`, straight
 * into one Buffer (one allocation; small ones come from Node's pool). This is what the
 * recorder writes; `encodeRecordFrame` gives the same line as a string.
 *
 * Each byte's escape is stored as one 32-bit word and the cursor moves by its length: no
 * branch per byte, which matters because framebuffer data mixes printable bytes and escapes
 * unpredictably (about 30 % faster than a branch per byte on random data). The last word
 * may spill up to three bytes past the line; they land in slack that is cut off.
 */
export function encodeRecordLine(dir: RecordDirection, ms: number, data: Uint8Array): Buffer {
  const head = `'${dir}${ms}${dir}`; // ASCII only
  let len = head.length + 3; // + `',\n`
  for (let i = 0; i < data.length; i++) len += ESC_LEN[data[i]!]!;
  const out = Buffer.allocUnsafe(len + 3);
  const view = new DataView(out.buffer, out.byteOffset, out.length);
  let o = out.write(head, 0, 'latin1');
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    view.setUint32(o, ESC_WORD[b]!, true);
    o += ESC_LEN[b]!;
  }
  out[o++] = QUOTE;
  out[o++] = COMMA;
  out[o] = NEWLINE;
  return out.subarray(0, len);
}

/**
 * The record line websockify writes for one message, newline included, e.g.
 * `encodeRecordFrame('}', 9, Buffer.from("hi'"))` is `'}9}hi\\'',\n`. `ms` is the integer
 * number of milliseconds since the session started.
 */
export function encodeRecordFrame(dir: RecordDirection, ms: number, data: Buffer): string {
  return encodeRecordLine(dir, ms, data).toString('latin1');
}

/**
 * Records one session to `${prefix}.${n}`. The relay calls `fromClient` / `fromTarget` with
 * each message's payload and `close` once at teardown. Writes go through a file stream and
 * never block the event loop or throw: a failing disk is logged once and ends recording for
 * this session, the proxied session itself carries on.
 */
export class SessionRecorder {
  /** The file being written. */
  readonly path: string;
  private readonly stream: fs.WriteStream;
  private readonly logger: Logger;
  private readonly maxBuffered: number;
  private readonly start: number;
  /** False once closed, failed or over the buffer cap: frames are dropped from then on. */
  private active = true;
  private failed = false;
  private closing: Promise<void> | undefined;

  private constructor(path: string, stream: fs.WriteStream, start: number, opts: SessionRecorderOptions) {
    this.path = path;
    this.stream = stream;
    this.start = start;
    this.logger = opts.logger ?? silentLogger;
    this.maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    stream.on('error', (err) => this.fail(err));
  }

  /**
   * Open `${prefix}.${n}` for writing (truncating it) and write the header. The session's
   * clock starts now. Rejects with RecordError (code TSOCK_ERR_RECORD) if the file cannot
   * be opened.
   */
  static async open(prefix: string, n: number, opts: SessionRecorderOptions = {}): Promise<SessionRecorder> {
    const start = performance.now();
    const path = `${prefix}.${n}`;
    const stream = fs.createWriteStream(path, { flags: 'w', mode: opts.mode ?? 0o600 });
    // The error listener goes on before the first await: an open failure is emitted on a
    // later tick and would otherwise crash the process as an unhandled 'error'.
    try {
      await once(stream, 'open');
    } catch (err) {
      stream.destroy();
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new RecordError(
        `cannot open record file "${path}": ${reason}; check that the directory of --record exists and is writable`,
        { cause: err },
      );
    }
    (opts.logger ?? silentLogger).info({ file: path }, 'opening record file');
    const rec = new SessionRecorder(path, stream, start, opts);
    stream.write(HEADER);
    return rec;
  }

  /** A message the client sent (client → target): a `}` line. */
  fromClient(data: Buffer): void {
    if (this.active) this.write('}', data);
  }

  /** A message the target sent (target → client): a `{` line. */
  fromTarget(data: Buffer): void {
    if (this.active) this.write('{', data);
  }

  /**
   * Write the `'EOF'];` trailer, flush and close the file. Safe to call more than once
   * (later calls return the first call's promise). Never rejects: a write error has
   * already been logged.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.finish();
    return this.closing;
  }

  private write(dir: RecordDirection, data: Buffer): void {
    // Whole milliseconds since the session started, as websockify's int(time*1000) delta;
    // monotonic, so a wall clock step cannot make it go backwards.
    const ms = Math.floor(performance.now() - this.start);
    this.stream.write(encodeRecordLine(dir, ms, data));
    if (this.stream.writableLength > this.maxBuffered) {
      this.active = false;
      this.logger.warn(
        { file: this.path, bufferedBytes: this.stream.writableLength },
        'recording stopped for this session: the disk is not keeping up',
      );
    }
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.active = false;
    this.logger.error({ file: this.path, err }, 'recording stopped for this session: write failed');
    this.stream.destroy();
  }

  private async finish(): Promise<void> {
    this.active = false;
    if (this.failed || this.stream.destroyed) return;
    this.stream.end(TRAILER);
    try {
      await once(this.stream, 'close');
    } catch {
      // fail() has logged it.
    }
  }
}
