/**
 * A well-behaved session that runs beside the fuzzers: it streams random bytes through
 * tsockify to an echo target for as long as the fuzzing lasts and checks that every byte
 * comes back, in order (SHA-256 of what was sent against what came back).
 */
import { createHash, randomBytes } from 'node:crypto';
import WebSocket from 'ws';

export interface GoodSessionResult {
  bytes: number;
  sentSha256: string;
  echoedSha256: string;
  /** Set when the session ended before `finish` asked it to. */
  unexpectedClose?: { code: number; reason: string };
}

export interface GoodSession {
  /** Stop sending, wait until everything sent has come back, close, and report. */
  finish(timeoutMs?: number): Promise<GoodSessionResult>;
}

/**
 * Open `url` (an echo target behind tsockify) and keep up to `windowBytes` in flight in
 * `chunkBytes` messages until `finish` is called.
 */
export async function startGoodSession(url: string, opts: { chunkBytes?: number; windowBytes?: number; clientOptions?: WebSocket.ClientOptions } = {}): Promise<GoodSession> {
  const chunkBytes = opts.chunkBytes ?? 8 * 1024;
  const windowBytes = opts.windowBytes ?? 256 * 1024;
  const ws = new WebSocket(url, 'binary', opts.clientOptions ?? {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`good session refused: ${res.statusCode}`)));
  });
  const sent = createHash('sha256');
  const echoed = createHash('sha256');
  let sentBytes = 0;
  let echoedBytes = 0;
  let stopping = false;
  let unexpectedClose: { code: number; reason: string } | undefined;
  let waiter: (() => void) | undefined;
  ws.on('error', () => { /* reported through unexpectedClose */ });
  ws.on('close', (code, reason) => {
    if (!stopping) unexpectedClose = { code, reason: reason.toString() };
    waiter?.();
  });
  const pump = (): void => {
    while (!stopping && ws.readyState === WebSocket.OPEN && sentBytes - echoedBytes < windowBytes) {
      const chunk = randomBytes(chunkBytes);
      sent.update(chunk);
      sentBytes += chunk.length;
      ws.send(chunk);
    }
  };
  ws.on('message', (data: Buffer) => {
    echoed.update(data);
    echoedBytes += data.length;
    if (stopping && echoedBytes >= sentBytes) waiter?.();
    else pump();
  });
  pump();
  return {
    async finish(timeoutMs = 10_000) {
      stopping = true;
      if (echoedBytes < sentBytes && ws.readyState === WebSocket.OPEN) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, timeoutMs);
          waiter = () => { clearTimeout(t); resolve(); };
        });
      }
      if (ws.readyState === WebSocket.OPEN) {
        const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
        ws.close(1000);
        await closed;
      }
      return {
        bytes: sentBytes,
        sentSha256: sent.digest('hex'),
        echoedSha256: echoed.digest('hex'),
        ...(unexpectedClose ? { unexpectedClose } : {}),
      };
    },
  };
}
