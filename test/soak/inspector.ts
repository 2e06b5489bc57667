/**
 * The proxy's heap, read from outside through the V8 inspector: the soak starts the command
 * with NODE_OPTIONS=--inspect=127.0.0.1:0 (loopback, a random port), forces a full garbage
 * collection over the DevTools protocol (HeapProfiler.collectGarbage) and reads
 * process.memoryUsage(). tsockify itself has no debug endpoint; this needs none.
 */
import WebSocket from 'ws';

export interface HeapReading {
  /** V8 heap in use after a forced full GC, KiB. */
  heapUsedKiB: number;
  /** Memory held by Buffers and other external allocations after it, KiB. */
  externalKiB: number;
  /** process.memoryUsage().rss after it, KiB. */
  rssKiB: number;
}

export interface Inspector {
  /** Force a full GC, then read the heap. */
  readHeap(): Promise<HeapReading>;
  /** Disconnect (do this before stopping the process: node waits for a connected debugger). */
  close(): Promise<void>;
}

/** The inspector URL a process started with --inspect printed, or undefined. */
export function inspectorUrl(output: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1];
}

export async function connectInspector(url: string): Promise<Inspector> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  let nextId = 1;
  const pending = new Map<number, (msg: { result?: unknown; error?: { message: string } }) => void>();
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg);
  });
  const call = (method: string, params: Record<string, unknown> = {}): Promise<unknown> => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, (msg) => {
      pending.delete(id);
      if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
      else resolve(msg.result);
    });
    ws.send(JSON.stringify({ id, method, params }));
  });
  return {
    async readHeap() {
      await call('HeapProfiler.collectGarbage');
      const r = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true }) as { result: { value: string } };
      const m = JSON.parse(r.result.value) as { heapUsed: number; external: number; rss: number };
      return { heapUsedKiB: Math.round(m.heapUsed / 1024), externalKiB: Math.round(m.external / 1024), rssKiB: Math.round(m.rss / 1024) };
    },
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      const closed = new Promise((r) => ws.once('close', r));
      ws.close();
      await closed;
    },
  };
}
