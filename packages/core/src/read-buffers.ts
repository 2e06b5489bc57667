/**
 * Read buffers for target sockets, reused instead of allocated per read.
 *
 * By default Node reads every socket into a freshly allocated 64 KiB buffer. At hundreds of
 * MiB/s those buffers are freed in batches when V8 collects them, glibc trims the top of its
 * heap, and the next reads fault the same pages back in: 20,000-40,000 page faults a second
 * and two to four times the CPU per GiB (docs/benchmarks.md). Target sockets are therefore
 * dialled with `onread`, and read into buffers from here:
 *
 * - An idle or trickling socket reads into `SCRATCH`, one buffer shared by every socket. Node
 *   reads and calls back synchronously (allocate, read(2), callback), so one shared buffer is
 *   safe as long as nobody keeps it: the callback copies what it needs out of it. An idle
 *   session therefore holds no read buffer of its own (the 12 KiB per idle session budget).
 * - A read that fills its buffer means more is waiting (a framebuffer update): the socket's
 *   next reads go into pooled buffers of its own, which are handed to ws as they are (no
 *   copy) and come back to the pool when ws has written them. The first read that does not
 *   fill its buffer returns the socket to `SCRATCH`.
 *
 * `onread` works on plain TCP and unix sockets only; TLS targets keep Node's own reads.
 */
/**
 * Every read buffer has the size of the largest message we send (MAX_FRAME_PAYLOAD in
 * options.ts, which imports this module indirectly), so one read is one message.
 */
export const READ_BUFFER_SIZE = 65536;

/** Free buffers kept for reuse (4 MiB); past that, returned buffers are left to the GC. */
const MAX_FREE = 64;

/** Shared by every socket between reads; never handed out, only copied from. */
export const SCRATCH = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);

const free: Buffer[] = [];

/** A pooled buffer of READ_BUFFER_SIZE bytes, the caller's until it calls `releaseReadBuffer`. */
export function takeReadBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
}

/** Give back a buffer from `takeReadBuffer` once nothing refers to its bytes any more. */
export function releaseReadBuffer(buf: Buffer): void {
  if (free.length < MAX_FREE) free.push(buf);
}

/** How many free buffers the pool holds now (for tests and diagnostics). */
export function freeReadBuffers(): number {
  return free.length;
}

/**
 * Node asks `onread.buffer()` for the next buffer right after `onread.callback` returns,
 * without saying which socket it is for; the callback leaves its choice here.
 */
let chosen: Buffer | undefined;

/** Called from an `onread` callback, last thing: where this socket's next read goes. */
export function chooseNextReadBuffer(buf: Buffer | undefined): void {
  chosen = buf;
}

/** The `onread.buffer` function: the buffer the last callback chose, else the shared one. */
export function nextReadBuffer(): Buffer {
  const buf = chosen ?? SCRATCH;
  chosen = undefined;
  return buf;
}

/** Set by dialTarget on a socket dialled with `onread`: its bytes go to the onread callback, not 'data'. */
export const kPooledReads = Symbol('tsockify.pooledReads');
