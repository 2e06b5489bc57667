/**
 * `--traffic`: websockify's per-frame legend characters.
 *
 * websockify (websocketproxy.py do_proxy, websockifyserver.py send_frames/recv_frames)
 * writes TRAFFIC_LEGEND to stdout when a session has connected to its target, then one
 * token per event, flushing stdout after each:
 *
 *   `}`  a whole WebSocket message was read from the client;
 *   `}.` a read from the client ended inside a frame (WebSocketWantReadError: bytes
 *        arrived, no complete message yet);
 *   `{`  a read from the target returned data (one recv(), at most 64 KiB);
 *   `>`  a queued chunk went to the target in one send(); `>.` only part of it did (the
 *        rest is requeued). websockify's code actually prints `.>` here, contradicting its
 *        own legend; tsockify prints `>.` as the legend says;
 *   `<`  a queued WebSocket frame was sent to the client whole; `<.` the socket would
 *        block (WebSocketWantWriteError) and the frame waits.
 *
 * How tsockify maps this: it hands whole buffers to the kernel through Node streams, which
 * never report a short write. "Partial" therefore means the write did not complete
 * synchronously: `write()` returned false (or the WebSocket's bufferedAmount is above
 * zero after `send()`), i.e. the data is sitting in a user-space queue and the relay is
 * now applying backpressure — the same situation in which websockify's send would have
 * been short. `}.` means a chunk of client bytes arrived without completing a message:
 * the relay can detect it by counting messages per raw socket 'data' event (ws parses a
 * chunk synchronously inside its own 'data' listener, so a listener added after it sees
 * whether a message was emitted for the chunk). A relay that cannot tell simply never
 * reports it.
 *
 * Tokens are batched per session and written once per event-loop turn (websockify does a
 * write and flush per token, which costs a syscall each); order is kept. If the output
 * stream is applying backpressure a batch is dropped and counted rather than buffered
 * without bound: this is a debugging aid and must never hold a session's memory.
 */
import type { Writable } from 'node:stream';

/** The text websockify writes (with its leading and trailing newline) before a session's tokens. */
export const TRAFFIC_LEGEND = `
Traffic Legend:
    }  - Client receive
    }. - Client receive partial
    {  - Target receive

    >  - Target send
    >. - Target send partial
    <  - Client send
    <. - Client send partial
`;

/** Largest batch kept while waiting for the next flush; beyond it tokens are dropped. */
const MAX_PENDING = 64 * 1024;

/** One session's `--traffic` output. The relay calls one method per event. */
export interface TrafficTracer {
  /** Write TRAFFIC_LEGEND (after any pending tokens). websockify does this once per session. */
  legend(): void;
  /** A whole WebSocket message arrived from the client: `}`. */
  clientReceive(): void;
  /** Client bytes arrived that did not complete a message: `}.`. */
  clientReceivePartial(): void;
  /** A chunk was read from the target: `{`. */
  targetReceive(): void;
  /**
   * A chunk was written to the target: `>`, or `>.` when `complete` is false (the write
   * was queued / hit backpressure). Pass `socket.write()`'s return value.
   */
  targetSend(complete: boolean): void;
  /**
   * A message was sent to the client: `<`, or `<.` when `complete` is false (it is waiting
   * in the WebSocket's send buffer).
   */
  clientSend(complete: boolean): void;
  /** Write pending tokens now. */
  flush(): void;
  /** Characters of output dropped because the output stream was applying backpressure. */
  readonly dropped: number;
}

/** A TrafficTracer writing to `out` (the CLI passes process.stdout). */
export function createTrafficTracer(out: Writable): TrafficTracer {
  let pending = '';
  let scheduled = false;
  let dropped = 0;

  const flush = (): void => {
    scheduled = false;
    if (pending === '') return;
    const chunk = pending;
    pending = '';
    if (out.writableNeedDrain || out.destroyed || out.writableEnded) {
      dropped += chunk.length;
      return;
    }
    out.write(chunk);
  };

  const emit = (token: string): void => {
    if (pending.length >= MAX_PENDING) {
      dropped += token.length;
      return;
    }
    pending += token;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  return {
    legend: () => {
      flush();
      emit(TRAFFIC_LEGEND);
    },
    clientReceive: () => emit('}'),
    clientReceivePartial: () => emit('}.'),
    targetReceive: () => emit('{'),
    targetSend: (complete) => emit(complete ? '>' : '>.'),
    clientSend: (complete) => emit(complete ? '<' : '<.'),
    flush,
    get dropped() {
      return dropped;
    },
  };
}
